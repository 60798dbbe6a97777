package engine

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/runtime"
	"hull/internal/spec"
	"hull/internal/trace"
)

// ExecOptions are `hull exec` inputs: the process to start in a running
// container and how it is connected.
type ExecOptions struct {
	Args []string
	// Env entries (KEY=VALUE) override the container's environment.
	Env        []string
	WorkingDir string // default: the container's
	// User is user[:group] with names looked up in the container's own
	// /etc/passwd and /etc/group, as for `run -u`; default: the container's.
	User string
	TTY  bool
	// Console is one end of a socketpair that receives the pty master
	// when TTY is set.
	Console *os.File
	// Stdio of the process (ignored for what the pty carries).
	Stdin, Stdout, Stderr *os.File
}

// Exec starts a process inside every namespace and the cgroup of a
// running container. The process is a child of the caller, which must
// reap it (and report its status with ExecDied). A container that is
// missing or not running refuses the exec (errdefs' NotFound and
// FailedPrecondition classes); a process that cannot be started is a
// *StartError saying why.
func (e *Engine) Exec(ctx context.Context, ref string, o ExecOptions) (int, *Container, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return 0, nil, err
	}
	switch c.State {
	case StateRunning:
	case StatePaused:
		return 0, c, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is paused, unpause the container before exec (hull unpause %s)", c.Name, c.Name))
	default:
		return 0, c, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running (it is %s; start it with hull start %s)", c.Name, c.State, c.Name))
	}
	if len(o.Args) == 0 {
		return 0, c, &StartError{SetupFailed, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("exec in %s: no command given", c.Name))}
	}
	rc, err := e.rt.Get(c.ID)
	if err != nil {
		return 0, c, &StartError{SetupFailed, fmt.Errorf("exec in %s: %w", c.Name, err)}
	}
	p := *rc.Spec.Process
	p.Args = o.Args
	p.Terminal = o.TTY
	p.ConsoleSize = nil
	p.Env = overrideEnv(p.Env, o.Env)
	if o.TTY && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm") // as docker gives a terminal
	}
	if o.WorkingDir != "" {
		if !strings.HasPrefix(o.WorkingDir, "/") {
			return 0, c, &StartError{SetupFailed, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory %q is invalid: it needs to be an absolute path", o.WorkingDir))}
		}
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		u, err := spec.ResolveUser(e.rootfs(c.ID), o.User)
		if err != nil {
			return 0, c, &StartError{SetupFailed, fmt.Errorf("exec in %s: %w", c.Name, err)}
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	cmdline := strings.Join(o.Args, " ")
	e.emit(ctx, c, "exec_create: "+cmdline, nil)
	ro := runtime.ExecOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	if o.TTY {
		ro.Console = o.Console
	}
	trace.Mark("exec: resolved")
	pid, err := e.rt.Exec(c.ID, &p, ro)
	if err != nil {
		return 0, c, &StartError{execFailure(err.Error()), err}
	}
	trace.Mark("exec: started")
	e.emit(ctx, c, "exec_start: "+cmdline, nil)
	return pid, c, nil
}

// ExecDied records the end of an exec'd process (docker's exec_die event).
func (e *Engine) ExecDied(ctx context.Context, c *Container, code int) {
	e.emit(ctx, c, "exec_die", map[string]string{"exitCode": fmt.Sprint(code)})
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
