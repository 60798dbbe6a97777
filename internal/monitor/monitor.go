// Package monitor is the per-container supervisor. `hull run` and
// `hull start` start one monitor process per container (a re-exec of hull
// in its own session, so it outlives the command). The monitor:
//
//  1. creates the container with the runtime, holding its stdio (pipes, or
//     the pty master received over the console socket),
//  2. starts it and reports "started" (or the error) to the command that
//     spawned it, which may then return (detached) or attach,
//  3. copies output into the CRI-format log and to attached clients, and
//     attached clients' input into the container,
//  4. reaps the init (a direct child: the runtime creates it with
//     CLONE_PARENT), records exit code, signal, OOM kill and finish time,
//  5. applies the restart policy with exponential backoff, and
//  6. cleans up the runtime's state and exits.
//
// State goes through a Recorder (the engine's database), so the monitor
// knows nothing of how it is stored.
package monitor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/runtime"
	"hull/internal/trace"
)

// RestartPolicy is docker's --restart.
type RestartPolicy struct {
	Name       string // "no", "on-failure", "always", "unless-stopped"
	MaxRetries int    // on-failure:N; 0 = unlimited
}

// Config is what one monitor supervises.
type Config struct {
	ID          string
	Bundle      string
	RuntimeRoot string

	LogPath     string
	LogMaxSize  int64
	LogMaxFiles int

	TTY   bool
	Stdin bool // keep stdin open (-i)

	// AttachSocket is where clients attach; with WaitAttach the container
	// starts only once the first client is attached (foreground run), so
	// no output is missed.
	AttachSocket string
	WaitAttach   bool
	// OnListen is called once the attach socket accepts clients.
	OnListen func()

	Restart     RestartPolicy
	BackoffBase time.Duration // default 10s, doubling
	BackoffMax  time.Duration // default 5m
	// RestartCount is how many restarts happened before this monitor.
	RestartCount int
}

// Exit is how one run of the container ended.
type Exit struct {
	Code      int
	Signal    int // the signal that killed it, 0 if it exited
	OOMKilled bool
	// Stage and Error describe a failure to create or start: the process
	// never ran ("create", "start").
	Stage string
	Error string
	At    time.Time
	// MemoryPeak and MemoryLimit (bytes) are read before the cgroup goes.
	MemoryPeak, MemoryLimit uint64
}

// Recorder stores what the monitor learns.
type Recorder interface {
	Started(pid int, pidStart uint64, restartCount int) error
	Exited(e Exit) error
	Restarting(count int, delay time.Duration) error
	// StopRequested reports that a user stopped the container: no restart.
	StopRequested() bool
	// Done is called once, after the last exit (auto-remove happens here).
	Done(e Exit)
}

// Run supervises the container until it exits for good. ready is called
// once: with nil when the first start succeeded, or with the error.
func Run(cfg Config, rt *runtime.Runtime, rec Recorder, ready func(error)) error {
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	logw, err := OpenLog(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles)
	if err != nil {
		ready(err)
		return err
	}
	defer logw.Close()
	h := newHub()
	m := &mon{cfg: cfg, rt: rt, rec: rec, log: logw, hub: h}
	if cfg.AttachSocket != "" {
		ln, err := m.listen()
		if err != nil {
			ready(err)
			return err
		}
		defer ln.Close()
		defer os.Remove(cfg.AttachSocket)
		if cfg.OnListen != nil {
			cfg.OnListen()
		}
	}
	if cfg.WaitAttach {
		select {
		case <-h.first:
		case <-time.After(30 * time.Second):
			err := errors.New("no client attached within 30s")
			ready(err)
			return err
		}
	}
	restarts := cfg.RestartCount
	readyOnce := sync.OnceFunc(func() { ready(nil) })
	var last Exit
	for attempt := 0; ; attempt++ {
		last = m.runOnce(restarts, func(err error) {
			if attempt == 0 {
				if err != nil {
					ready(err)
				} else {
					readyOnce()
				}
			}
		})
		rec.Exited(last)
		if !m.shouldRestart(last, restarts) {
			break
		}
		delay := cfg.BackoffBase << min(restarts, 30)
		if delay > cfg.BackoffMax || delay <= 0 {
			delay = cfg.BackoffMax
		}
		restarts++
		rec.Restarting(restarts, delay)
		deadline := time.Now().Add(delay)
		for time.Now().Before(deadline) && !rec.StopRequested() {
			time.Sleep(min(100*time.Millisecond, time.Until(deadline)))
		}
		if rec.StopRequested() {
			break
		}
	}
	var status [4]byte
	code := last.Code
	status[0], status[1], status[2], status[3] = byte(code>>24), byte(code>>16), byte(code>>8), byte(code)
	// Done first (it removes an auto-remove container), so a client that
	// sees the exit finds the container already gone, as with docker --rm.
	rec.Done(last)
	trace.Mark("monitor: done")
	h.broadcast(FrameExit, status[:])
	h.closeAll()
	return nil
}

func (m *mon) shouldRestart(e Exit, restarts int) bool {
	if m.rec.StopRequested() || e.Stage != "" {
		return false
	}
	switch m.cfg.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return e.Code != 0 && (m.cfg.Restart.MaxRetries == 0 || restarts < m.cfg.Restart.MaxRetries)
	}
	return false
}

type mon struct {
	cfg Config
	rt  *runtime.Runtime
	rec Recorder
	log *LogWriter
	hub *hub

	mu     sync.Mutex
	input  io.WriteCloser // the container's stdin or pty master, while running
	master *os.File
}

// listen serves attach clients: their input goes to the running
// container, output reaches them through the hub.
func (m *mon) listen() (net.Listener, error) {
	os.Remove(m.cfg.AttachSocket)
	short, release, err := sockPath(m.cfg.AttachSocket)
	if err != nil {
		return nil, fmt.Errorf("attach socket %s: %w", m.cfg.AttachSocket, err)
	}
	defer release()
	ln, err := net.Listen("unix", short)
	if err != nil {
		return nil, fmt.Errorf("attach socket %s: %w", m.cfg.AttachSocket, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.hub.add(c)
			go m.serveClient(c)
		}
	}()
	return ln, nil
}

func (m *mon) serveClient(c net.Conn) {
	defer m.hub.remove(c)
	for {
		kind, data, err := ReadFrame(c)
		if err != nil {
			return
		}
		m.mu.Lock()
		in, master := m.input, m.master
		m.mu.Unlock()
		switch kind {
		case FrameStdin:
			if in != nil {
				in.Write(data)
			}
		case FrameStdinClose:
			if in != nil && master == nil {
				in.Close()
			}
		case FrameResize:
			if master != nil && len(data) == 4 {
				ws := &unix.Winsize{Row: uint16(data[0])<<8 | uint16(data[1]), Col: uint16(data[2])<<8 | uint16(data[3])}
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
	}
}

// runOnce creates, starts and reaps the container once.
func (m *mon) runOnce(restarts int, started func(error)) Exit {
	fail := func(stage string, err error) Exit {
		started(err)
		return Exit{Code: 125, Stage: stage, Error: err.Error(), At: time.Now()}
	}
	_ = m.rt.Delete(m.cfg.ID, true) // leftovers of a previous run
	opts := runtime.CreateOptions{Bundle: m.cfg.Bundle}
	var closeAfterCreate []io.Closer
	var outputs sync.WaitGroup
	var consolePeer *os.File
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail("create", err)
	}
	defer devnull.Close()
	if m.cfg.TTY {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail("create", fmt.Errorf("console socketpair: %w", err))
		}
		opts.Console = os.NewFile(uintptr(fds[0]), "console")
		consolePeer = os.NewFile(uintptr(fds[1]), "console-peer")
		defer opts.Console.Close()
		defer consolePeer.Close()
		opts.Stdin, opts.Stdout, opts.Stderr = devnull, devnull, devnull
	} else {
		outR, outW, err := os.Pipe()
		if err != nil {
			return fail("create", err)
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return fail("create", err)
		}
		opts.Stdout, opts.Stderr, opts.Stdin = outW, errW, devnull
		closeAfterCreate = append(closeAfterCreate, outW, errW)
		if m.cfg.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return fail("create", err)
			}
			opts.Stdin = inR
			closeAfterCreate = append(closeAfterCreate, inR)
			m.setInput(inW, nil)
		}
		outputs.Add(2)
		go func() { defer outputs.Done(); m.log.copyStream("stdout", outR, m.tee(FrameStdout)); outR.Close() }()
		go func() { defer outputs.Done(); m.log.copyStream("stderr", errR, m.tee(FrameStderr)); errR.Close() }()
	}
	trace.Mark("monitor: runtime create")
	c, err := m.rt.Create(m.cfg.ID, opts)
	trace.Mark("monitor: runtime created")
	for _, cl := range closeAfterCreate {
		cl.Close()
	}
	if err != nil {
		m.closeInput()
		outputs.Wait()
		return fail("create", err)
	}
	if consolePeer != nil {
		master, err := runtime.RecvConsole(consolePeer)
		if err != nil {
			m.rt.Delete(m.cfg.ID, true)
			return fail("create", err)
		}
		m.setInput(master, master)
		outputs.Add(1)
		go func() { defer outputs.Done(); m.log.copyStream("stdout", master, m.tee(FrameStdout)) }()
	}
	var baseline uint64
	if st, err := m.rt.Stats(m.cfg.ID); err == nil {
		baseline = st.Memory.OOMKills
	}
	if err := m.rt.Start(m.cfg.ID); err != nil {
		m.rt.Delete(m.cfg.ID, true)
		m.closeInput()
		outputs.Wait()
		return fail("start", err)
	}
	trace.Mark("monitor: started")
	m.rec.Started(c.Pid, c.PidStartTime, restarts)
	started(nil)

	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(c.Pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	trace.Mark("monitor: reaped")
	exit := Exit{At: time.Now()}
	switch {
	case ws.Exited():
		exit.Code = ws.ExitStatus()
	case ws.Signaled():
		exit.Signal = int(ws.Signal())
		exit.Code = 128 + exit.Signal
	}
	if st, err := m.rt.Stats(m.cfg.ID); err == nil {
		exit.OOMKilled = st.Memory.OOMKills > baseline
		exit.MemoryPeak, exit.MemoryLimit = st.Memory.Peak, st.Memory.Limit
	}
	// Leftover processes (a daemonized child) die with the container; then
	// the output pipes reach EOF.
	m.rt.Delete(m.cfg.ID, true)
	m.closeInput()
	waitTimeout(&outputs, 2*time.Second)
	trace.Mark("monitor: cleaned up")
	return exit
}

func (m *mon) setInput(w io.WriteCloser, master *os.File) {
	m.mu.Lock()
	m.input, m.master = w, master
	m.mu.Unlock()
}

func (m *mon) closeInput() {
	m.mu.Lock()
	in, master := m.input, m.master
	m.input, m.master = nil, nil
	m.mu.Unlock()
	if in != nil && master == nil {
		in.Close()
	}
	if master != nil {
		master.Close()
	}
}

func (m *mon) tee(kind byte) func([]byte) {
	return func(b []byte) { m.hub.broadcast(kind, b) }
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
