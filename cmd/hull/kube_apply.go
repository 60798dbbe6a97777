package main

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"hull/internal/engine"
)

// runKubeApply runs `hull-cri kube` for `hull kube apply` as a child
// instead of by exec: argv is the command line the exec would have had.
// The child applies on hull's stdin, stdout and stderr, reports its exit
// status on a pipe (its fd 3, named by KubeApplyEnv), lets go of hull's
// files and session, and stays as the supervisor of the first pod it
// recorded (internal/kube/applier.go): the pod's supervisor is then no
// second hull-cri start-up. hull exits with the status reported; if the
// child ends without one (killed), with the child's own. ok is false when
// the child could not be started (hull then execs it, as for the other
// commands).
func runKubeApply(argv, env []string) (code int, ok bool) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, false
	}
	defer r.Close()
	// MALLOC_ARENA_MAX as for every supervisor (internal/kube
	// supervisorEnv): glibc reads it once, at the start; the child drops
	// it for what it starts.
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: append(env, engine.KubeApplyEnv+"=3", "MALLOC_ARENA_MAX=1"),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: []*os.File{w}}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, false
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	if code, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
		cmd.Process.Release() // it goes on, detached
		return code, true
	}
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return cmd.ProcessState.ExitCode(), true
}

// isKubeApply reports whether the arguments of `hull kube` are apply's:
// the first word that is neither a flag nor the value of one (hull's
// global flags given before `kube` come first in args, then the
// namespace's).
func isKubeApply(args []string) bool {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--config" || a == "--root" || a == "--run-root" || a == "--log-level" || a == "-n" || a == "--namespace":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a == "apply"
		}
	}
	return false
}
