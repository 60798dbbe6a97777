package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/runtime"
	"hull/internal/shim"
	"hull/internal/spec"
	"hull/internal/streams"
	"hull/internal/trace"
)

// ExecSpec is the process Exec starts, as the front end was given it.
type ExecSpec struct {
	Args []string
	// Env entries (KEY=VALUE, or KEY for this process's value) and the
	// env files' entries override the container's environment; Env's win.
	Env      []string
	EnvFiles []string
	// WorkingDir is absolute; default: the container's.
	WorkingDir string
	// User is user[:group] with names looked up in the container's own
	// /etc/passwd and /etc/group, as for `run -u`; default: the container's.
	User string
	// TTY runs the process on a pseudo-terminal: its output arrives on
	// ExecIO.Stdout, and ExecProcess.Resize sets its size.
	TTY bool
	// Rows and Cols, when set, are the terminal's size from the start:
	// the runtime sizes the pty before the process runs. A size given by
	// Resize only once the process runs comes too late for one that reads
	// it at once (busybox `stty size` on a 0x0 terminal fails with
	// "stty: standard input"; a full-screen program draws at the wrong
	// size), as podman's and docker's exec learnt.
	Rows, Cols uint16
}

// ExecIO connects an exec'd process. A nil Stdin gives it no input; a nil
// Stdout or Stderr discards that output (/dev/null).
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExecProcess is a process Exec started in a container. From Wait on (the
// front end sets its terminal up first), its input and output are copied
// until it has exited.
//
// With hull-shim (ShimPath, HullCommand) the process is the child of a
// supervisor of its own (hull-shim exec, see shim.ExecMain), not of the
// caller: should the caller die, the process runs on, the supervisor
// drains its output (nobody reads it any more, as with docker) and
// records its end (exec_die). Without, it is the caller's child, which
// must Wait to reap it: should the caller die first, its output closes
// under it (it dies of SIGPIPE when it writes) and its status is lost.
type ExecProcess struct {
	e      *Engine
	ctx    context.Context
	c      *Container
	pid    int
	tty    bool
	mu     sync.Mutex
	pidf   *os.File // a pidfd: signals go to this process, not a reused pid
	reaped bool

	// With a supervisor (hull-shim exec): it, and its control socket.
	supervisor *execShim
	ctl        *os.File

	master   *os.File   // the pty master (TTY)
	outputs  []*os.File // the read ends of the output pipes
	copy     func()     // starts copying the I/O (Wait)
	copied   chan struct{}
	ncopies  int
	waitOnce sync.Once
	code     int
}

// Exec starts a process inside every namespace and the cgroup of a
// running container. A container that is missing or not running refuses
// the exec (errdefs' NotFound and FailedPrecondition classes); a process
// that cannot be set up or started is a *StartError saying why.
func (e *Engine) Exec(ctx context.Context, ref string, s ExecSpec, pio ExecIO) (_ *ExecProcess, err error) {
	var env []string
	for _, file := range s.EnvFiles {
		kvs, err := spec.ParseEnvFile(file)
		if err != nil {
			return nil, &StartError{SetupFailed, err}
		}
		env = append(env, kvs...)
	}
	kvs, err := spec.ParseEnv(s.Env)
	if err != nil {
		return nil, &StartError{SetupFailed, err}
	}
	env = append(env, kvs...)
	if s.User != "" {
		if _, _, err := spec.ParseUser(s.User); err != nil {
			return nil, &StartError{SetupFailed, err}
		}
	}
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch c.State {
	case StateRunning:
	case StatePaused:
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is paused, unpause the container before exec (hull unpause %s)", c.Name, c.Name))
	default:
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running (it is %s; start it with hull start %s)", c.Name, c.State, c.Name))
	}
	if len(s.Args) == 0 {
		return nil, &StartError{SetupFailed, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("exec in %s: no command given", c.Name))}
	}
	// The supervisor starts while the exec is prepared: its own start
	// then costs the exec nothing.
	sup := e.startExecShim(c)
	defer func() {
		if err != nil && sup != nil {
			sup.abandon()
		}
	}()
	rc, err := e.rt.Get(c.ID)
	if err != nil {
		return nil, &StartError{SetupFailed, fmt.Errorf("exec in %s: %w", c.Name, err)}
	}
	p := *rc.Spec.Process
	p.Args = s.Args
	p.Terminal = s.TTY
	p.ConsoleSize = nil
	if s.TTY && s.Rows > 0 && s.Cols > 0 {
		p.ConsoleSize = &specs.Box{Height: uint(s.Rows), Width: uint(s.Cols)}
	}
	p.Env = overrideEnv(p.Env, env)
	if s.TTY && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm") // as docker gives a terminal
	}
	if s.WorkingDir != "" {
		if !strings.HasPrefix(s.WorkingDir, "/") {
			return nil, &StartError{SetupFailed, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory %q is invalid: it needs to be an absolute path", s.WorkingDir))}
		}
		p.Cwd = s.WorkingDir
	}
	if s.User != "" {
		u, err := spec.ResolveUser(e.rootfs(c.ID), s.User)
		if err != nil {
			return nil, &StartError{SetupFailed, fmt.Errorf("exec in %s: %w", c.Name, err)}
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	return e.startExec(ctx, c, &p, pio, sup)
}

// execShim is a hull-shim exec started for one exec, the supervisor of
// its process (see shim.ExecMain).
type execShim struct {
	ctl     *os.File
	started chan struct{} // closed once the start is done: then proc, or err
	proc    *os.Process
	err     error
	drains  []*os.File // the output pipes' read ends, for it to drain
}

// startExecShim starts hull-shim exec for an exec in c, in the background
// (its fork and exec overlap the exec's preparation); nil when there is no
// hull-shim: the process is then the caller's child.
func (e *Engine) startExecShim(c *Container) *execShim {
	if e.ShimPath == "" || e.HullCommand == nil || unix.Access(e.ShimPath, unix.X_OK) != nil {
		return nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	ctl, theirs := os.NewFile(uintptr(fds[0]), "exec-control"), os.NewFile(uintptr(fds[1]), "exec-control-shim")
	cmd := &exec.Cmd{
		Path: e.ShimPath, Args: append([]string{"hull-shim", "exec", "--"}, e.HullCommand("exec-exited", c.ID)...),
		Env: append(os.Environ(), "GOMAXPROCS=1"), Dir: "/", ExtraFiles: []*os.File{theirs},
		// Its own process group: a terminal's signals to the caller's
		// group do not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	s := &execShim{ctl: ctl, started: make(chan struct{})}
	go func() {
		defer close(s.started)
		defer theirs.Close()
		if err := cmd.Start(); err != nil {
			s.err = fmt.Errorf("start %s: %w", e.ShimPath, err)
			return
		}
		s.proc = cmd.Process
	}()
	return s
}

// reap reaps the shim once it exits, in the background.
func (s *execShim) reap() {
	go func() {
		<-s.started
		if s.proc != nil {
			s.proc.Wait()
		}
	}()
}

// StartInit hands the runtime's init command to the shim, which starts
// it as its child (runtime.Supervisor).
func (s *execShim) StartInit(cmd *exec.Cmd) error {
	if <-s.started; s.err != nil {
		return s.err
	}
	in := shim.ExecInit{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Files: len(cmd.ExtraFiles), Drains: len(s.drains), Pgid: unix.Getpgrp()}
	var files []*os.File
	for _, r := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		f, ok := r.(*os.File)
		if !ok {
			return fmt.Errorf("exec init: stdio must be files, not %T", r)
		}
		files = append(files, f)
	}
	files = append(files, cmd.ExtraFiles...)
	fds := make([]int, 0, len(files)+1+len(s.drains))
	for _, f := range files {
		// Blocking, as os/exec would leave them: a process given a
		// non-blocking stdin fails its reads (EAGAIN) while it is empty.
		fd := rawFD(f)
		if err := unix.SetNonblock(fd, false); err != nil {
			return fmt.Errorf("exec init: %w", err)
		}
		fds = append(fds, fd)
	}
	if n, ok := strings.CutPrefix(cmd.Path, "/proc/self/fd/"); ok {
		fd, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("exec init: %s: %w", cmd.Path, err)
		}
		in.Exe, fds = true, append(fds, fd)
	}
	for _, f := range s.drains {
		fds = append(fds, rawFD(f))
	}
	return shim.SendExecInit(s.ctl, in, fds)
}

// rawFD is f's descriptor, left as it is (Fd would make it blocking, and
// a blocking pipe takes no read deadline).
func rawFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(d uintptr) { fd = int(d) })
	}
	return fd
}

// abandon lets the shim go when the exec failed: it reaps what there is
// and exits.
func (s *execShim) abandon() {
	s.ctl.Close()
	s.reap()
}

// startExec wires the process's stdio (pipes, or a pty whose master it
// receives) and starts it.
func (e *Engine) startExec(ctx context.Context, c *Container, p *specs.Process, pio ExecIO, sup *execShim) (x *ExecProcess, err error) {
	x = &ExecProcess{e: e, ctx: context.WithoutCancel(ctx), c: c, tty: p.Terminal, copied: make(chan struct{}, 2)}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, &StartError{SetupFailed, err}
	}
	// The process's ends, closed once it has them; ours, closed on failure.
	theirs := []*os.File{devnull}
	var ours []*os.File
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
		if err != nil {
			for _, f := range ours {
				f.Close()
			}
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err != nil {
			return nil, nil, &StartError{SetupFailed, fmt.Errorf("exec in %s: %w", c.Name, err)}
		}
		return r, w, nil
	}
	ro := runtime.ExecOptions{Stdin: devnull, Stdout: devnull, Stderr: devnull}
	var peer, inW *os.File
	if p.Terminal {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, &StartError{SetupFailed, fmt.Errorf("console socketpair: %w", err)}
		}
		ro.Console = os.NewFile(uintptr(fds[0]), "console")
		peer = os.NewFile(uintptr(fds[1]), "console-peer")
		theirs = append(theirs, ro.Console, peer)
	} else {
		for _, o := range []struct {
			w   io.Writer
			end **os.File
		}{{pio.Stdout, &ro.Stdout}, {pio.Stderr, &ro.Stderr}} {
			if o.w == nil {
				continue
			}
			r, w, err := pipe()
			if err != nil {
				return nil, err
			}
			*o.end = w
			theirs, ours = append(theirs, w), append(ours, r)
			x.outputs = append(x.outputs, r)
		}
		if pio.Stdin != nil {
			r, w, err := pipe()
			if err != nil {
				return nil, err
			}
			ro.Stdin, inW = r, w
			theirs, ours = append(theirs, r), append(ours, w)
		}
	}
	if sup != nil {
		sup.drains = x.outputs
		ro.Supervisor = sup
		x.supervisor, x.ctl = sup, sup.ctl
	}
	cmdline := strings.Join(p.Args, " ")
	e.emit(ctx, c, "exec_create: "+cmdline, nil)
	trace.Mark("exec: resolved")
	x.pid, err = e.rt.Exec(c.ID, p, ro)
	if err != nil {
		return nil, &StartError{execFailure(err.Error()), err}
	}
	trace.Mark("exec: started")
	// Our child, or the shim's that reports it to us before reaping it
	// (not before it has the pid): the pidfd names it for sure.
	if fd, err := unix.PidfdOpen(x.pid, 0); err == nil {
		x.pidf = os.NewFile(uintptr(fd), "pidfd")
	}
	if p.Terminal {
		ro.Console.Close()
		if x.master, err = runtime.RecvConsole(peer); err != nil {
			if x.ctl != nil {
				shim.SendExecPid(x.ctl, x.pid, nil)
			}
			x.Kill(unix.SIGKILL)
			x.reap()
			return nil, &StartError{SetupFailed, err}
		}
	}
	if x.ctl != nil {
		if err := shim.SendExecPid(x.ctl, x.pid, x.master); err != nil {
			x.Kill(unix.SIGKILL)
			x.reap()
			return nil, &StartError{SetupFailed, fmt.Errorf("exec in %s: tell the supervisor: %w", c.Name, err)}
		}
	}
	x.copy = func() {
		if x.tty {
			if pio.Stdin != nil {
				go io.Copy(x.master, pio.Stdin)
			}
			out := pio.Stdout
			if out == nil {
				out = io.Discard
			}
			x.ncopies = 1
			go func() {
				io.Copy(out, x.master) // ends with EIO once the last slave closes
				x.copied <- struct{}{}
			}()
			return
		}
		if inW != nil {
			go func() {
				io.Copy(inW, pio.Stdin)
				inW.Close()
			}()
		}
		i := 0
		for _, w := range []io.Writer{pio.Stdout, pio.Stderr} {
			if w == nil {
				continue
			}
			r := x.outputs[i]
			i++
			x.ncopies++
			go func() {
				streams.CopyBuffered(w, r)
				x.copied <- struct{}{}
			}()
		}
	}
	e.emit(ctx, c, "exec_start: "+cmdline, nil)
	return x, nil
}

// Pid is the process's host pid.
func (x *ExecProcess) Pid() int { return x.pid }

// Wait reaps the process, waits for its output to be copied, records its
// end (exec_die) and returns its status, shell style (128+signal for a
// signal). Signals this process receives are not forwarded, as with
// docker exec: a terminal's interrupt reaches the process through the pty.
func (x *ExecProcess) Wait() int {
	x.waitOnce.Do(func() {
		x.copy()
		x.code = x.reap()
		if x.tty {
			select {
			case <-x.copied:
			case <-time.After(2 * time.Second): // a background process keeps the pty
			}
			x.master.Close()
		} else {
			// A process the command left in the background may hold the
			// pipes open: take what is buffered, then stop reading.
			streams.EndReadsBy(time.Now().Add(time.Second), x.outputs...)
			for range x.ncopies {
				<-x.copied
			}
			for _, r := range x.outputs {
				r.Close()
			}
		}
		x.e.emit(x.ctx, x.c, "exec_die", map[string]string{"exitCode": fmt.Sprint(x.code)})
	})
	return x.code
}

// Release gives the process up instead of Wait: nothing copies its I/O
// (give it none) and
// it is reaped in the background while this process lives, without
// recording its end (exec -d).
func (x *ExecProcess) Release() {
	if x.ctl != nil {
		// The supervisor takes over, and records the end.
		x.ctl.Close()
		x.supervisor.reap()
		return
	}
	go x.reap()
}

// reap waits for the process to end: for its supervisor's report, or
// for the process itself, a child of this one.
func (x *ExecProcess) reap() int {
	defer func() {
		x.mu.Lock()
		x.reaped = true
		if x.pidf != nil {
			x.pidf.Close()
		}
		x.mu.Unlock()
	}()
	if x.ctl != nil {
		code, ok := shim.ExecExit(x.ctl)
		x.ctl.Close()
		x.supervisor.reap()
		if !ok {
			return 255 // the supervisor died
		}
		return code
	}
	return shim.Reap(x.pid).Code
}

// Resize sets the size of the process's terminal.
func (x *ExecProcess) Resize(rows, cols uint16) error {
	if x.master == nil {
		return fmt.Errorf("exec in %s: the process has no terminal to resize", x.c.Name)
	}
	return unix.IoctlSetWinsize(int(x.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// Kill sends the process a signal.
func (x *ExecProcess) Kill(sig unix.Signal) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.reaped:
		return fmt.Errorf("exec in %s: process %d has exited", x.c.Name, x.pid)
	case x.pidf != nil:
		return unix.PidfdSendSignal(int(x.pidf.Fd()), sig, nil, 0)
	}
	return unix.Kill(x.pid, sig) // no pidfds (Linux < 5.3); unreaped, the pid is still ours
}

// ExecExited records the end of a process exec'd in container id that
// its caller did not see end: hull-shim exec's report (exec_die).
func (e *Engine) ExecExited(ctx context.Context, id string, code int) error {
	c, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	e.emit(ctx, c, "exec_die", map[string]string{"exitCode": fmt.Sprint(code)})
	return nil
}

// execFailure reads the runtime's report of a failed exec: a missing
// command, or one that cannot run (docker's statuses 127 and 126).
func execFailure(msg string) StartReason {
	switch {
	case strings.Contains(msg, "chdir"):
		return CommandNotExecutable
	case strings.Contains(msg, "not found"), strings.Contains(msg, "no such file"):
		return CommandNotFound
	}
	return CommandNotExecutable
}

// overrideEnv applies KEY=VALUE entries over env (a later key wins).
func overrideEnv(env, over []string) []string {
	out := append([]string{}, env...)
	for _, kv := range over {
		key, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if k, _, _ := strings.Cut(old, "="); k == key {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}
