// Command hull-init is the first process of every container hull starts,
// in one of two roles:
//
//   - The runtime starts it (instead of re-executing the much larger hull)
//     to set a new container up: its C constructor enters the namespaces,
//     then InitMain builds the root filesystem, drops privileges and execs
//     the user's program. It starts in a fraction of hull's time.
//   - `hull run --init` bind-mounts it at /sbin/hull-init as PID 1: it
//     starts the real command, forwards every signal it receives to it,
//     reaps every zombie (orphans are re-parented to PID 1, and most
//     programs never wait for them), and exits with the command's status.
//
// It is built static (hack/build-init.sh) so it runs in any image.
//
//   - `hull-init --pause` holds a pod's shared PID namespace as its PID 1
//     (internal/engine/podpid.go): it reaps what is re-parented to it and
//     exits on SIGTERM or SIGINT.
//
//     hull-init -- COMMAND [ARG...]
//     hull-init --pause
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	_ "hull/internal/hugeheap"
	hullrt "hull/internal/runtime"
)

func main() {
	if hullrt.IsInit() {
		hullrt.InitMain()
	}
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--pause" {
		pause()
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "hull-init: usage: hull-init -- COMMAND [ARG...]")
		os.Exit(125)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "hull-init: %v\n", err)
		os.Exit(127)
	}
	child, err := os.StartProcess(path, args, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}, Env: os.Environ()})
	if err != nil {
		fmt.Fprintf(os.Stderr, "hull-init: start %s: %v\n", args[0], err)
		os.Exit(126)
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGCHLD {
				if code, done := reap(child.Pid); done {
					os.Exit(code)
				}
				continue
			}
			if s == syscall.SIGURG { // the Go runtime's own preemption signal
				continue
			}
			child.Signal(s)
		}
	}
}

// reap collects every exited child; it reports the main child's status
// once that one has exited.
func reap(main int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != main {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

// pause is a PID namespace's first process with nothing to run: it reaps
// orphans until told to end.
func pause() {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap(-1)
	}
}
