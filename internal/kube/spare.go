package kube

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"hull/internal/cri"
	"hull/internal/engine"
	"hull/internal/trace"
)

// The spare supervisor: `hull kube apply` (cmd/hull/kube_spare.go)
// starts a copy of its hull-cri command, with KubeSpareEnv=read, beside
// the exec of hull-cri for apply, so that a supervisor's start-up (the Go
// init of the Kubernetes and CRI packages, the engine's open: most of the
// time from apply to a running container on a loaded machine) happens
// while apply starts, decodes, checks and records. The copy parses the
// same flags (so it has apply's roots and configuration), then, instead of
// applying, readies the CRI server and waits on its fd 3. apply hands it
// the directory of the first pod it records, one line; the spare then
// supervises that pod exactly as a supervisor apply started would. At EOF
// without a line (apply made no pod, or failed) it exits. Any other pod,
// or a spare that is gone, gets a supervisor started as before
// (env.startSupervisor).

// errSpareDone ends a spare's command line without running its command.
var errSpareDone = errors.New("spare supervisor done")

// spareFD is the fd the spare reads its pod directory on.
const spareFD = 3

// takeSpare reads KubeSpareEnv: this process is the spare, or apply with
// the spare's pipe, which it makes close-on-exec again so no supervisor
// apply starts holds it open.
func (e *env) takeSpare() {
	v := os.Getenv(engine.KubeSpareEnv)
	if v == "" {
		return
	}
	os.Unsetenv(engine.KubeSpareEnv)
	if v == engine.KubeSpareRead {
		e.isSpare = true
		return
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return
	}
	unix.CloseOnExec(fd)
	e.spare = os.NewFile(uintptr(fd), "kube-spare")
}

// handToSpare gives the pod in dir to the spare supervisor, if there is
// one still waiting; false: start a supervisor.
func (e *env) handToSpare(dir string) bool {
	if e.spare == nil {
		return false
	}
	_, err := e.spare.WriteString(dir + "\n")
	e.spare.Close()
	e.spare = nil
	if err != nil {
		return false // it is gone (EPIPE)
	}
	trace.Mark("kube: pod handed to the spare supervisor")
	return true
}

// runSpare is the spare's command, in place of cmd (its flags parsed):
// for apply, superviseSpare; for any other command, nothing.
func (e *env) runSpare(cmd *cobra.Command) error {
	if cmd.Name() == "apply" {
		e.spareErr = e.superviseSpare()
	}
	return errSpareDone
}

// superviseSpare is the spare's body: ready the CRI server, wait for a
// pod directory on fd 3, and supervise it with its stderr in the pod's
// supervisor.log, as startSupervisor would have.
func (e *env) superviseSpare() error {
	in := os.NewFile(spareFD, "kube-spare")
	defer in.Close()
	srv, err := e.server()
	if err != nil {
		return err
	}
	e.armMonitorSpare(srv)
	trace.Mark("kube: spare supervisor ready")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil {
		return nil // apply made no pod: not needed
	}
	dir := strings.TrimSuffix(line, "\n")
	if !filepath.IsAbs(dir) {
		return errors.New("spare supervisor: not a pod directory: " + dir)
	}
	if f, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		unix.Dup3(int(f.Fd()), 2, 0)
		f.Close()
	}
	err = Supervise(context.Background(), srv, dir, e.cfg.KubeCgroupRoot(), e.log, e.reconcileDeployments)
	if err != nil && !errors.Is(err, context.Canceled) {
		e.log.Error("supervisor", "pod", filepath.Base(dir), "err", err)
	}
	return err
}

// spareOf reports whether pid is a spare supervisor that took the pod in
// dir (supervisorPID: a spare's command line is apply's): its initial
// environment marks it a spare and its stderr is the pod's
// supervisor.log.
func spareOf(pid int, dir string) bool {
	p := "/proc/" + strconv.Itoa(pid)
	env, err := os.ReadFile(p + "/environ")
	if err != nil || !strings.Contains("\x00"+string(env), "\x00"+engine.KubeSpareEnv+"="+engine.KubeSpareRead+"\x00") {
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
	srv.GiveSpare(e.eng.NewSpare())
}
