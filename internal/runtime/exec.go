package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions are the knobs of `exec` beyond the process itself.
type ExecOptions struct {
	ConsoleSocket string
	Console       *os.File
	PidFile       string
	PreserveFDs   int
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
	// Supervisor, if set, starts the init binary instead of Exec, as its
	// own child: the exec'd process is then the supervisor's child, not
	// the caller's.
	Supervisor Supervisor
}

// Supervisor starts the init binary of an exec (hull-shim exec does, for
// the engine). StartInit gets the command as Exec would start it (its
// path may be /proc/self/fd/N, a descriptor of the caller's), starts it
// as the supervisor's child and reaps it, and the process it forks.
type Supervisor interface {
	StartInit(cmd *exec.Cmd) error
}

// namespaceOrder is the order namespaces are joined in (the nsenter
// constructor moves the user namespace first anyway).
var namespaceOrder = []string{"user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt"}

// Exec starts p inside every namespace and the cgroup of a running
// container and returns its host pid once execve has succeeded. The
// process is a child of the calling process, which should wait for it.
func (r *Runtime) Exec(id string, p *specs.Process, o ExecOptions) (int, error) {
	c, err := r.load(id)
	if err != nil {
		return 0, err
	}
	if st := c.Status(); st != specs.StateRunning && st != specs.StateCreated {
		// FailedPrecondition: the CRI's code for it (kubelet's probes exec
		// into a container that is ending; the engine's record may still
		// say running).
		return 0, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s: cannot exec in a %s container", id, st))
	}
	if p == nil || len(p.Args) == 0 {
		return 0, fmt.Errorf("container %s: exec needs a command", id)
	}
	cg, err := c.Cgroup()
	if err != nil {
		return 0, err
	}
	sp := &spawn{r: r, cgroup: cg, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr, preserve: o.PreserveFDs, keepSync: true, selfJoin: c.Spec == nil || selfJoinOK(c.Spec), via: o.Supervisor}
	pidStr := strconv.Itoa(c.Pid)
	for _, ns := range namespaceOrder {
		theirs := "/proc/" + pidStr + "/ns/" + ns
		var a, b unix.Stat_t
		if err := unix.Stat(theirs, &a); err != nil {
			if ns == "time" || ns == "cgroup" {
				continue // kernel without it
			}
			return 0, fmt.Errorf("container %s: %s namespace: %w", id, ns, err)
		}
		if err := unix.Stat("/proc/self/ns/"+ns, &b); err == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			continue // shared with the host: nothing to join
		}
		sp.join = append(sp.join, ns+"="+theirs)
	}
	spec := *c.Spec
	spec.Process = p
	ic := &initConfig{Exec: true, ID: id, Spec: &spec, Rootfs: c.Rootfs, Bundle: c.Bundle, ConsoleFD: -1}
	if ic.Seccomp, err = r.compileSeccomp(&spec); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	ic.Spec = initSpec(&spec, ic.Seccomp != nil)
	ic.Rlimits = r.clampRlimits(p.Rlimits)
	if p.Terminal {
		console := o.Console
		if console == nil {
			if o.ConsoleSocket == "" {
				return 0, fmt.Errorf("container %s: a terminal needs --console-socket", id)
			}
			if console, err = dialConsole(o.ConsoleSocket); err != nil {
				return 0, fmt.Errorf("container %s: %w", id, err)
			}
			defer console.Close()
		}
		sp.files = append(sp.files, console)
		ic.ConsoleFD = 3 + o.PreserveFDs + 1
	}
	sp.init = ic
	// A process forked into the container that then fails (the
	// container dying under the exec, most often) is ended and reaped
	// here: left a zombie, it would hold the teardown of the container's
	// pid namespace, so the container's death, until this process exits.
	// (A supervisor reaps its own.)
	abandon := func() {
		if sp.pid > 0 && sp.via == nil {
			_ = unix.Kill(sp.pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(sp.pid, &ws, 0, nil)
		}
	}
	if err := sp.run(); err != nil {
		abandon()
		return 0, fmt.Errorf("container %s: exec: %w", id, err)
	}
	defer sp.sync.Close()
	// The sync socket closes on a successful execve (it is close-on-exec
	// by then); anything else is the error.
	var m syncMsg
	buf := make([]byte, 1<<16)
	if err := readMsg(sp.sync, buf, &m); err == nil {
		abandon() // it exits after reporting
		return 0, fmt.Errorf("container %s: exec: %s", id, m.Error)
	} else if !errors.Is(err, io.EOF) {
		abandon()
		return 0, fmt.Errorf("container %s: exec: %w", id, err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, sp.pid); err != nil {
			return sp.pid, err
		}
	}
	return sp.pid, nil
}
