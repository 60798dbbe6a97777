// Command hull-shim supervises a running detached container on behalf of
// hull's monitor, (hull-shim exec) a process exec'd in a container, and
// (hull-shim health) paces a container's health checks; see package
// hull/internal/shim. It is built static
// (CGO_ENABLED=0) and small, so a running container costs little memory.
package main

import (
	"fmt"
	"os"
	"runtime"

	"hull/internal/shim"
)

// The shim execs hull again from its main goroutine (to record the exit).
// Locked to the main thread, the exec comes from the thread group leader:
// an exec from another thread shows the leader to /proc as a zombie for a
// moment, which hull's other commands could take for a dead monitor.
func init() { runtime.LockOSThread() }

func main() {
	run := shim.Main
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		os.Args, run = os.Args[1:], shim.ExecMain
	}
	if len(os.Args) > 1 && os.Args[1] == "health" {
		os.Args, run = os.Args[1:], shim.HealthMain
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hull-shim:", err)
		os.Exit(1)
	}
}
