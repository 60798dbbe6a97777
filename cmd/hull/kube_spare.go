package main

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"hull/internal/engine"
)

// kubeSpareWriter holds the pipe's write end until the exec: unreachable,
// its finalizer could close the fd the environment names.
var kubeSpareWriter *os.File

// startKubeSpare starts, for `hull kube apply`, a spare pod supervisor
// before hull execs hull-cri for apply itself: a copy of that hull-cri
// command (argv, the same flags) with KubeSpareEnv=read, detached, which
// parses them as apply does and then, instead of applying, readies a
// supervisor and waits for a pod directory on its fd 3
// (internal/kube/spare.go). Its start-up (the Kubernetes packages' Go
// init, the engine) thus overlaps apply's instead of following it. It
// returns the environment entry that passes the pipe's write end across
// the exec, or "" when this is not apply or the spare could not start
// (apply then starts its supervisors itself, as always).
func startKubeSpare(argv, env []string) string {
	if !slices.Contains(argv, "apply") { // (a copy of another command exits at once)
		return ""
	}
	r, w, err := os.Pipe()
	if err != nil {
		return ""
	}
	defer r.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(env, engine.KubeSpareEnv+"="+engine.KubeSpareRead)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{r} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return ""
	}
	cmd.Process.Release()
	// The write end survives the exec (and only it: hull-cri sets it
	// close-on-exec again at once).
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETFD, 0); err != nil {
		w.Close()
		return ""
	}
	kubeSpareWriter = w
	return engine.KubeSpareEnv + "=" + strconv.Itoa(int(w.Fd()))
}
