// Package monitor is the per-container supervisor. `hull run` and
// `hull start` start one monitor process per container (a re-exec of hull
// in its own session, so it outlives the command). The monitor:
//
//  1. creates the container with the runtime, holding its stdio (pipes, or
//     the pty master received over the console socket), or restores it
//     from a checkpoint (Config.Restore: CRIU's restored init is its child
//     as a created one is, on new pipes),
//  2. starts it and reports the start (ReportOK, or the error; see
//     report.go) to the command that spawned it, which may then return
//     (detached) or attach,
//  3. copies output into the CRI-format log and to attached clients, and
//     attached clients' input into the container,
//  4. reaps the init (its child: the runtime creates it with CLONE_PARENT,
//     or, born into a cgroup2 directory, hands it over as the monitor is
//     its child subreaper), records exit code, signal, OOM kill and
//     finish time,
//  5. applies the restart policy with exponential backoff, and
//  6. cleans up the runtime's state and exits.
//
// State goes through a Recorder (the engine's database), so the monitor
// knows nothing of how it is stored.
package monitor

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/runtime"
	"hull/internal/shim"
	"hull/internal/streams"
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
	// ClientGone, if set, reports whether the command that waits to
	// attach (WaitAttach) has gone. Killed before it attached, it never
	// will: the container is then not started, at once, rather than after
	// the 30 s a slow client is given (docker, too, never starts a
	// container whose client died before the start).
	ClientGone func() bool

	// Shim, if set, is the small supervisor a detached container is handed
	// over to once it runs (see handOver); Resume is what a monitor that a
	// shim exec'd back into gets: the exit the shim saw, and the attach
	// listener it kept (ListenerFD).
	Shim       *Shim
	Resume     *Exit
	ListenerFD int

	Restart     RestartPolicy
	BackoffBase time.Duration // default 10s, doubling
	BackoffMax  time.Duration // default 5m
	// RestartCount is how many restarts happened before this monitor.
	RestartCount int
	// EnsureBundle, if set, is called before a run that reads the
	// bundle's config.json, to make it again if it is missing.
	EnsureBundle func() error
	// Prepared, if set, is what was made ahead for this container (a
	// spare monitor's): its log and attach listener serve every run, the
	// rest is for the first run only (later runs read config.json and
	// make their own). Run owns it and closes what it does not use.
	Prepared *Prepared
	// Network, if set, connects the container's network namespace, that
	// of its first process pid, to its networks: after each run's create,
	// before its process starts. An error fails the run at the "network"
	// stage. (Disconnecting is the Recorder's, in Exited.)
	Network func(pid int) error
	// Restore, if set, makes the first run restore the container from a
	// checkpoint (runtime.Restore, with the bundle and new stdio pipes
	// filled in here) instead of creating and starting its process;
	// restarts after it start the process afresh. Nothing prepared
	// ahead is used for it.
	Restore *runtime.RestoreOptions
}

// Early is a container's first process started ahead by its monitor
// (runtime.Early), with the pipes of its output.
type Early struct {
	rt         *runtime.Early
	out, err   *os.File // read ends
	outW, errW *os.File // write ends, kept for a create that does not take rt
}

// StartEarly starts container id's first process ahead, with its output
// into pipes and its input from /dev/null, in the cgroups at cgroupsPath
// and, with newNetNS, a network namespace made meanwhile (see
// runtime.Early). A monitor supervising a container with a terminal
// or an open stdin does not use it.
func StartEarly(rt *runtime.Runtime, id, cgroupsPath string, newNetNS bool) (*Early, error) {
	return startEarly(func(o runtime.EarlyOptions) (*runtime.Early, error) {
		o.CgroupsPath, o.NewNetNS = cgroupsPath, newNetNS
		return rt.StartEarly(id, o)
	})
}

// startEarly starts a first process ahead with start, given its stdio.
func startEarly(start func(runtime.EarlyOptions) (*runtime.Early, error)) (*Early, error) {
	e := &Early{}
	var err error
	if e.out, e.outW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if e.err, e.errW, err = os.Pipe(); err != nil {
		e.Close()
		return nil, err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		e.Close()
		return nil, err
	}
	defer null.Close()
	e.rt, err = start(runtime.EarlyOptions{Stdin: null, Stdout: e.outW, Stderr: e.errW})
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// SetLimits gives the early process's cgroups the limits of the spec its
// container will be created with (runtime.Early.SetLimits).
func (e *Early) SetLimits(spec *specs.Spec) error { return e.rt.SetLimits(spec) }

// Close ends what no create took.
func (e *Early) Close() {
	if e.rt != nil {
		e.rt.Close()
	}
	for _, f := range []*os.File{e.out, e.err, e.outW, e.errW} {
		if f != nil {
			f.Close()
		}
	}
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
	// Done is called once, after the last exit (auto-remove happens
	// here). It may return slow work (deleting files) to run once the
	// clients have their answer.
	Done(e Exit) (after func())
}

// PolicyReader is a Recorder that reads the restart policy again at each
// exit: `hull update --restart` changes it while the container runs.
type PolicyReader interface {
	RestartPolicy() (RestartPolicy, bool)
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
	// What was prepared is this run's to take or close; the log and the
	// listener now, the rest in the first runOnce.
	prep := cfg.Prepared
	cfg.Prepared = nil
	defer prep.Close()
	prep.Keep(cfg.ID)
	m := &mon{cfg: cfg, rt: rt, rec: rec, prep: prep}
	if prep != nil {
		m.log, prep.Log = prep.Log, nil
	}
	var err error
	if m.log == nil {
		if m.log, err = streams.OpenLog(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles); err != nil {
			ready(err)
			return err
		}
	}
	defer m.log.Close()
	var ahead *streams.Server // the listener opened ahead, if any
	if prep != nil {
		ahead, prep.Server = prep.Server, nil
	}
	switch {
	case cfg.Resume != nil && cfg.ListenerFD > 0:
		if m.srv, err = shim.InheritListener(cfg.ListenerFD); err != nil {
			ahead.Close()
			return fmt.Errorf("resume: %w", err)
		}
	case cfg.AttachSocket != "":
		if m.srv = ahead; m.srv == nil {
			if m.srv, err = streams.Listen(cfg.AttachSocket); err != nil {
				ready(err)
				return err
			}
		}
		// A container that will be handed over to the shim is served
		// by the shim: clients queue until it accepts.
		if cfg.Shim == nil || cfg.WaitAttach {
			m.srv.Accept()
		}
		if cfg.OnListen != nil {
			cfg.OnListen()
		}
	}
	if ahead != m.srv {
		ahead.Close() // opened ahead for nothing
	}
	if m.srv != nil {
		defer m.srv.Close()
		defer os.Remove(cfg.AttachSocket)
	}
	restarts := cfg.RestartCount
	readyOnce := sync.OnceFunc(func() { ready(nil) })
	var last Exit
	for attempt := 0; ; attempt++ {
		if attempt == 0 && cfg.Resume != nil {
			// The shim reaped the container; what is left of it (stray
			// processes, cgroups, runtime state) goes as after runOnce.
			last = *cfg.Resume
			trace.Mark("monitor: resumed")
			m.rt.Delete(cfg.ID, true)
		} else {
			last = m.runOnce(restarts, func(err error) {
				if attempt == 0 {
					if err != nil {
						ready(err)
					} else {
						readyOnce()
					}
				}
			})
		}
		rec.Exited(last)
		trace.Mark("monitor: exit recorded")
		if err := m.startErr; err != nil {
			// A start that failed is reported once it is recorded: who
			// looks right after its run failed (hull why) finds it so.
			m.startErr = nil
			if attempt == 0 {
				ready(err)
			}
		}
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
	// Done first (it removes an auto-remove container), so a client that
	// sees the exit finds the container already gone, as with docker --rm.
	after := rec.Done(last)
	m.waitDeleted()
	trace.Mark("monitor: done")
	if m.srv != nil {
		m.srv.Exit(last.Code)
	}
	if after != nil {
		after()
	}
	return nil
}

func (m *mon) shouldRestart(e Exit, restarts int) bool {
	if m.rec.StopRequested() || e.Stage != "" {
		return false
	}
	policy := m.cfg.Restart
	if pr, ok := m.rec.(PolicyReader); ok {
		if p, ok := pr.RestartPolicy(); ok {
			policy = p
		}
	}
	switch policy.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return e.Code != 0 && (policy.MaxRetries == 0 || restarts < policy.MaxRetries)
	}
	return false
}

type mon struct {
	cfg Config
	rt  *runtime.Runtime
	rec Recorder
	// prep is what was prepared for the first run (Config.Prepared),
	// taken by it; Run closes what is left.
	prep *Prepared
	log  *streams.LogWriter
	srv  *streams.Server // nil without an attach socket
	// deleting, if set, closes when the last run's runtime removal ends.
	deleting chan struct{}
	// startErr is why the last run failed to start (its Exit has the
	// stage), for Run to report.
	startErr error
}

// waitAttached waits, with WaitAttach, for the first client: the container
// is created meanwhile, and starts once no output can be missed.
func (m *mon) waitAttached() error {
	if !m.cfg.WaitAttach {
		return nil
	}
	timeout := time.After(30 * time.Second)
	var tick <-chan time.Time
	if m.cfg.ClientGone != nil {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-m.srv.FirstAttached():
			return nil
		case <-timeout:
			return errors.New("no client attached within 30s")
		case <-tick:
			if m.cfg.ClientGone() {
				return errors.New("the command that started it exited before it attached; the container was not started")
			}
		}
	}
}

// waitDeleted waits for the last run's runtime removal, if any is going
// on: before the container runs again (same id) and before the exit is
// announced (a client then finds nothing of it left).
func (m *mon) waitDeleted() {
	if m.deleting != nil {
		<-m.deleting
		m.deleting = nil
	}
}

// StageNetwork is the Exit.Stage of a run whose networking failed (see
// Config.Network).
const StageNetwork = "network"

// runOnce creates, starts and reaps the container once.
func (m *mon) runOnce(restarts int, started func(error)) Exit {
	fail := func(stage string, err error) Exit {
		m.startErr = err // reported once the exit is recorded (see Run)
		return Exit{Code: 125, Stage: stage, Error: err.Error(), At: time.Now()}
	}
	m.waitDeleted()
	if r := m.cfg.Restore; r != nil {
		m.cfg.Restore = nil // a restart starts the process afresh
		m.prep.Close()      // a spare's process, namespaces: not for a restore
		m.prep = nil
		return m.restoreOnce(*r, restarts, started)
	}
	// What was prepared is for the first run only; a restart starts
	// afresh. runtime.Create takes prep and closes it in any case; a
	// return before Create closes it here, with the early process's pipes.
	ahead := m.prep.takeNetwork()
	defer func() { ahead.close() }()
	prep, early := m.prep.forCreate()
	m.prep = nil
	defer func() {
		if prep != nil {
			prep.Close()
			if early != nil {
				early.Close()
			}
		}
	}()
	if early != nil && (m.cfg.TTY || m.cfg.Stdin) {
		early.Close()
		early, prep.Early = nil, nil
	}
	if (prep == nil || prep.Spec == nil) && m.cfg.EnsureBundle != nil {
		if err := m.cfg.EnsureBundle(); err != nil {
			return fail("create", err)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail("create", err)
	}
	defer devnull.Close()
	if early == nil {
		_ = m.rt.Delete(m.cfg.ID, true) // leftovers of a previous run
	}
	opts := runtime.CreateOptions{Bundle: m.cfg.Bundle, Prepared: prep}
	var io stdio
	var closeAfterCreate []*os.File
	var consolePeer *os.File
	switch {
	case early != nil:
		// Create takes the early process (prep.Early), or starts one on
		// these pipes; io owns the read ends.
		opts.Stdin, opts.Stdout, opts.Stderr = devnull, early.outW, early.errW
		io.out, io.err = early.out, early.err
		closeAfterCreate = append(closeAfterCreate, early.outW, early.errW)
	case m.cfg.TTY:
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail("create", fmt.Errorf("console socketpair: %w", err))
		}
		opts.Console = os.NewFile(uintptr(fds[0]), "console")
		consolePeer = os.NewFile(uintptr(fds[1]), "console-peer")
		defer opts.Console.Close()
		defer consolePeer.Close()
		opts.Stdin, opts.Stdout, opts.Stderr = devnull, devnull, devnull
	default:
		var outW, errW *os.File
		if io.out, outW, err = os.Pipe(); err != nil {
			return fail("create", err)
		}
		if io.err, errW, err = os.Pipe(); err != nil {
			return fail("create", err)
		}
		opts.Stdout, opts.Stderr, opts.Stdin = outW, errW, devnull
		closeAfterCreate = append(closeAfterCreate, outW, errW)
		if m.cfg.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return fail("create", err)
			}
			opts.Stdin, io.in = inR, inW
			closeAfterCreate = append(closeAfterCreate, inR)
		}
	}
	trace.Mark("monitor: runtime create")
	c, err := m.rt.Create(m.cfg.ID, opts)
	prep = nil // Create's now
	trace.Mark("monitor: runtime created")
	for _, f := range closeAfterCreate {
		f.Close()
	}
	if err != nil {
		io.close()
		return fail("create", err)
	}
	if consolePeer != nil {
		if io.master, err = runtime.RecvConsole(consolePeer); err != nil {
			m.rt.Delete(m.cfg.ID, true)
			return fail("create", err)
		}
	}
	if m.cfg.Network != nil {
		err, used := ahead.use(c.Pid)
		ahead = nil
		if !used {
			err = m.cfg.Network(c.Pid)
		}
		if err != nil {
			m.rt.Delete(m.cfg.ID, true)
			io.close()
			return fail(StageNetwork, err)
		}
		trace.Mark("monitor: network attached")
	}
	if err := m.waitAttached(); err != nil {
		m.rt.Delete(m.cfg.ID, true)
		io.close()
		return fail("start", err)
	}
	// OOM kills are counted per cgroup: those before the start are not
	// this run's.
	var baseline uint64
	cg, _ := c.Cgroup()
	if cg != nil {
		baseline, _ = cg.OOMKills()
	}
	if err := m.rt.StartContainer(c); err != nil {
		m.rt.Delete(m.cfg.ID, true)
		io.close()
		return fail("start", err)
	}
	trace.Mark("monitor: started")
	return m.supervise(c, cg, baseline, &io, restarts, started)
}

// supervise is a run once its process runs: it records the start, hands
// the container over to the shim (detached) or serves it, reaps it and
// cleans up after it.
func (m *mon) supervise(c *runtime.Container, cg *cgroups.Manager, baseline uint64, io *stdio, restarts int, started func(error)) Exit {
	// A detached container is handed to the shim once it runs; its
	// output then stays in the pipes until the shim reads it.
	handOver := m.cfg.Shim != nil && !m.cfg.WaitAttach
	m.rec.Started(c.Pid, c.PidStartTime, restarts)
	started(nil)
	if handOver {
		// Clients the exec would drop are left in the socket's backlog
		// for the shim. handOver returns only if the exec failed;
		// supervise (and serve) here then.
		if m.srv != nil {
			m.srv.Hold()
		}
		m.handOver(c, baseline, io)
		if m.srv != nil {
			m.srv.Accept()
		}
	}
	outputs := m.copyOutput(io)

	exit := FromShim(shim.Reap(c.Pid))
	trace.Mark("monitor: reaped")
	if cg != nil {
		if mem, err := cg.Memory(); err == nil {
			exit.OOMKilled = mem.OOMKills > baseline
			exit.MemoryPeak, exit.MemoryLimit = mem.Peak, mem.Limit
		}
	}
	trace.Mark("monitor: stats")
	// Leftover processes (a daemonized child) die with the container; then
	// the output pipes reach EOF. (The container from Create: its state
	// need not be read back.) With a pid namespace of its own there are
	// none left (the kernel ends them with the init), so the removal (ten
	// cgroup directories here, half a millisecond) goes on while the exit
	// is recorded; waitDeleted joins it.
	if c.SharedPidNS {
		m.rt.DeleteContainer(c, true)
	} else {
		done := make(chan struct{})
		m.deleting = done
		go func() { m.rt.DeleteContainer(c, true); close(done) }()
	}
	trace.Mark("monitor: rt deleted")
	if m.srv != nil {
		m.srv.CloseInput()
	} else {
		io.closeInput()
	}
	streams.AwaitOutputs(outputs, io.out, io.err, io.master)
	trace.Mark("monitor: cleaned up")
	return exit
}

// FromShim converts the exit report of hull-shim (and of shim.Reap).
func FromShim(x shim.Exit) Exit {
	return Exit{Code: x.Code, Signal: x.Signal, OOMKilled: x.OOMKilled, At: time.Unix(0, x.At),
		MemoryPeak: x.MemoryPeak, MemoryLimit: x.MemoryLimit}
}

// stdio is the monitor's side of a container's standard streams: output
// pipes (or the pty master) and, with -i, the input pipe.
type stdio struct {
	out, err *os.File // nil with a terminal
	master   *os.File // the pty master, with a terminal
	in       *os.File // the stdin pipe's write end, with -i
}

func (s *stdio) close() {
	for _, f := range []*os.File{s.out, s.err, s.master, s.in} {
		if f != nil {
			f.Close()
		}
	}
}

func (s *stdio) closeInput() {
	if s.in != nil {
		s.in.Close()
	}
	if s.master != nil {
		s.master.Close()
	}
}

// copyOutput logs the container's output and passes it to attached
// clients, and routes the clients' input to the container. The channel
// closes once the output has ended.
func (m *mon) copyOutput(io *stdio) <-chan struct{} {
	return streams.Pump(m.log, m.srv, io.out, io.err, io.master, io.in)
}

// StageRestore is the Exit.Stage of a run whose restore from a
// checkpoint failed (see Config.Restore): its process never ran.
const StageRestore = "restore"

// restoreOnce is runOnce for a container restored from a checkpoint: its
// processes come from CRIU (runtime.Restore) as the monitor's children,
// with new pipes in place of the dumped stdio, and are then supervised
// like any run.
func (m *mon) restoreOnce(o runtime.RestoreOptions, restarts int, started func(error)) Exit {
	fail := func(err error) Exit {
		m.startErr = err
		return Exit{Code: 125, Stage: StageRestore, Error: err.Error(), At: time.Now()}
	}
	_ = m.rt.Delete(m.cfg.ID, true) // leftovers of a previous run
	var io stdio
	var outW, errW, inR *os.File
	var err error
	if io.out, outW, err = os.Pipe(); err != nil {
		return fail(err)
	}
	if io.err, errW, err = os.Pipe(); err != nil {
		io.close()
		outW.Close()
		return fail(err)
	}
	closeEnds := []*os.File{outW, errW}
	if m.cfg.Stdin {
		if inR, io.in, err = os.Pipe(); err != nil {
			io.close()
			outW.Close()
			errW.Close()
			return fail(err)
		}
		closeEnds = append(closeEnds, inR)
	}
	if err := m.waitAttached(); err != nil {
		io.close()
		for _, f := range closeEnds {
			f.Close()
		}
		return fail(err)
	}
	o.Bundle = m.cfg.Bundle
	o.Stdio = [3]*os.File{inR, outW, errW}
	trace.Mark("monitor: runtime restore")
	c, err := m.rt.Restore(m.cfg.ID, o)
	for _, f := range closeEnds {
		f.Close()
	}
	if err != nil {
		io.close()
		return fail(err)
	}
	trace.Mark("monitor: restored")
	if m.cfg.Network != nil && !o.ExternalNetNS {
		err := m.cfg.Network(c.Pid)
		if err == nil && o.FreshNetNS {
			err = m.rt.Continue(c) // stopped until connected
		}
		if err != nil {
			m.rt.DeleteContainer(c, true)
			shim.Reap(c.Pid)
			io.close()
			return fail(err)
		}
	} else if o.FreshNetNS {
		if err := m.rt.Continue(c); err != nil {
			m.rt.DeleteContainer(c, true)
			shim.Reap(c.Pid)
			io.close()
			return fail(err)
		}
	}
	var baseline uint64
	cg, _ := c.Cgroup()
	if cg != nil {
		baseline, _ = cg.OOMKills()
	}
	return m.supervise(c, cg, baseline, &io, restarts, started)
}
