package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"hull/internal/cri"
	"hull/internal/engine"
	"hull/internal/trace"
)

// apply stays as its first pod's supervisor: `hull kube apply`
// (cmd/hull/kube_apply.go) runs this command as its child, not by exec,
// with KubeApplyEnv naming a pipe (fd 3) on which the child reports its
// exit status. The child applies as always, on hull's stdin, stdout and
// stderr, except that the first pod it records it keeps for itself
// instead of starting a supervisor for it (keepPod: it opens the engine
// and arms the pod's spare monitor right then). Once the command has
// ended (finishApply) it prints its error as hull-cri would, lets go of
// hull's stdin, stdout and stderr (its stderr becomes the pod's
// supervisor.log), leaves hull's session, reports the status (hull exits
// with it), and supervises the pod exactly as `supervise DIR` would.
// Other pods of the same apply get supervisors started as always. Why:
// on the 2-core test machine a process start is 5-6 ms of processor time
// and a hull-cri start-up (the Go init of the Kubernetes and CRI
// packages, the engine's open) 25-35 ms; apply and its pod's supervisor
// were two of them, then one started beside the other (a spare
// supervisor apply handed the pod to), and all of it came before the pod
// could run (docs/kube.md "Benchmark").

// takeReport reads KubeApplyEnv: this process is apply run by hull as its
// child, reporting its exit status on the fd it names.
func (e *env) takeReport() {
	v := os.Getenv(engine.KubeApplyEnv)
	if v == "" {
		return
	}
	os.Unsetenv(engine.KubeApplyEnv)
	tuneSupervisorMemory() // supervisor_mem.go: hull set MALLOC_ARENA_MAX
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return
	}
	unix.CloseOnExec(fd) // no process this one starts holds it
	e.report = os.NewFile(uintptr(fd), "kube-apply-status")
	// A reader of apply's output gone (`| head -1`) must not end the
	// process that is to supervise the pod it recorded: with SIGPIPE
	// notified (not ignored, which what it starts would inherit), a write
	// to a broken stdout fails instead of killing it, and finishApply
	// reports the status the signal would have given.
	e.sigpipe = make(chan os.Signal, 1)
	signal.Notify(e.sigpipe, syscall.SIGPIPE)
	if pid, err := strconv.Atoi(os.Getenv(engine.KubeSpareEnv)); err == nil && pid > 0 {
		// The pod's spare monitor, which hull started beside this
		// process (kubefast.c): its ends are ours to own.
		unix.CloseOnExec(engine.KubeSpareSyncFD)
		unix.CloseOnExec(engine.KubeSpareIDFD)
		e.spare = engine.AdoptSpare(pid, engine.KubeSpareSyncFD, engine.KubeSpareIDFD, false)
	}
	os.Unsetenv(engine.KubeSpareEnv)
}

// prepareSupervision opens the engine and arms the spare monitor of the
// pod apply will keep, in the background while apply reads and checks
// its manifests (keepPod waits for it): the monitor's start-up then
// overlaps apply's instead of the sandbox's.
func (e *env) prepareSupervision() {
	e.ready = make(chan struct{})
	go func() {
		defer close(e.ready)
		srv, err := e.server()
		if err != nil {
			return
		}
		if e.spare != nil {
			srv.GiveSpare(e.spare) // started by hull (kubefast.c)
			e.spare = nil
		} else {
			e.armMonitorSpare(srv)
		}
		e.srv = srv
	}()
}

// keepPod keeps the pod in dir for this process to supervise once apply
// has ended (finishApply), when this is apply reporting to hull, without
// --wait (which waits for the pods to run: they need their supervisors
// meanwhile), and it keeps none yet; false: start a supervisor. The
// engine and the pod's spare monitor are prepareSupervision's.
func (e *env) keepPod(dir string) bool {
	if e.report == nil || !e.applying || e.kept != "" || e.ready == nil {
		return false
	}
	<-e.ready
	if e.srv == nil {
		return false // no engine: a supervisor of its own reports why
	}
	e.kept = dir
	trace.Mark("kube: pod kept to supervise")
	return true
}

// finishApply ends apply run by hull as its child (see above): err, the
// command's outcome, is printed and reported as hull's exit status, then
// the pod kept, if any, is supervised until it is deleted or finished.
func (e *env) finishApply(err error) error {
	code := 0
	if err != nil && !errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintln(e.stderr, "error:", err) // as cmd/hull-cri
		code = 1
	}
	select {
	case <-e.sigpipe:
		code = 128 + int(syscall.SIGPIPE) // as the shell shows a process it ended
	default:
		if e.outBroken.Load() {
			code = 128 + int(syscall.SIGPIPE)
		}
	}
	e.detach()
	fmt.Fprintf(e.report, "%d\n", code)
	e.report.Close()
	if e.ready != nil {
		<-e.ready
	}
	if e.spare != nil {
		e.spare.Close() // hull's, not given to a server (--wait, no engine)
	}
	if e.kept == "" {
		if e.srv != nil {
			e.srv.CloseSpares() // armed for a pod that did not come
		}
		return nil
	}
	defer e.srv.Close()
	defer e.srv.CloseSpares()
	err = Supervise(context.Background(), e.srv, e.kept, e.cfg.KubeCgroupRoot(), e.log, e.reconcileDeployments)
	if err != nil && !errors.Is(err, context.Canceled) {
		e.log.Error("supervisor", "pod", filepath.Base(e.kept), "err", err)
	}
	return nil // hull has exited: nobody reads a status
}

// detach lets go of what this process shares with hull and the user's
// shell before hull exits: stdin and stdout become /dev/null, stderr the
// kept pod's supervisor.log (or /dev/null), so that nobody reading hull's
// output waits for this process; it leaves the shell's session and
// process group, and its working directory.
func (e *env) detach() {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer null.Close()
	unix.Dup3(int(null.Fd()), 0, 0)
	unix.Dup3(int(null.Fd()), 1, 0)
	errTo := null
	if e.kept != "" {
		if f, err := os.OpenFile(filepath.Join(e.kept, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			defer f.Close()
			errTo = f
		}
	}
	unix.Dup3(int(errTo.Fd()), 2, 0)
	unix.Setsid()
	os.Chdir("/")
}

// applierOf reports whether pid is apply supervising the pod in dir
// (supervisorPID: its command line is apply's): its initial environment
// has KubeApplyEnv and its stderr is the pod's supervisor.log.
func applierOf(pid int, dir string) bool {
	p := "/proc/" + strconv.Itoa(pid)
	env, err := os.ReadFile(p + "/environ")
	if err != nil || !strings.Contains("\x00"+string(env), "\x00"+engine.KubeApplyEnv+"=") {
		return false
	}
	stderr, err := os.Readlink(p + "/fd/2")
	return err == nil && stderr == filepath.Join(dir, "supervisor.log")
}

// armMonitorSpare gives the CRI server of a new pod's supervisor a spare
// monitor that starts its container's process as the spec arrives
// (engine NewSpare, `hull monitor - --early-on-spec`, handed to srv with
// cri GiveSpare, as one of hull-cri's pool): its process start and
// database open happen while the supervisor makes the sandbox;
// CreateContainer binds it to the pod's first container and sends it the
// spec, and it starts the container's process in the pod's namespaces
// while the creation ends; StartContainer hands it the container (that
// was the largest part of apply to Running left, docs/kube.md
// "Benchmark"). The server's own rules close a bound spare whose
// container is removed or whose sandbox goes. A pod that never creates a
// container (a pull failing) keeps it waiting until the supervisor exits
// (it reads end-of-file then, and ends). A supervisor restarted for a pod
// that has run (its kubelet.json there) gets none; later containers
// (restarts, the other containers) start `hull monitor ID`.
func (e *env) armMonitorSpare(srv *cri.Server) {
	if e.eng == nil || e.eng.MonitorCommand == nil {
		return
	}
	srv.GiveSpare(e.eng.NewSpare(false))
}
