// Package trace marks the stages a hull process passes through, for two
// uses:
//
//   - performance work: with HULL_TRACE=1 each Mark writes "hull[pid]
//     15:04:05.000000 +12.3ms label" to stderr (or to the file HULL_TRACE
//     names): the wall clock, to line up processes, and the time since the
//     process started;
//   - fault injection: with HULL_FAULT=label the process that reaches the
//     mark label kills itself with SIGKILL there, as a crash, an OOM kill or
//     an impatient user would, so that tests (test/faults) can check that
//     the next command recovers from exactly that point. The variable
//     passes to the processes hull starts (monitors, shims), so a mark of
//     a monitor is reached the same way.
//
// Off, a Mark costs one branch.
package trace

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

var (
	start = time.Now()
	out   *os.File
	fault = os.Getenv("HULL_FAULT")
	on    = fault != ""
)

func init() {
	switch v := os.Getenv("HULL_TRACE"); v {
	case "":
	case "1":
		out = os.Stderr
	default:
		out, _ = os.OpenFile(v, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	on = on || out != nil
}

// On says whether marks are recorded (or a fault awaited): a caller that
// builds a label at some cost builds it only then.
func On() bool { return on }

// Mark records that label was reached.
func Mark(label string) {
	if !on {
		return
	}
	if out != nil {
		now := time.Now()
		fmt.Fprintf(out, "hull[%d] %s +%.1fms %s\n", os.Getpid(), now.Format("15:04:05.000000"), float64(now.Sub(start).Microseconds())/1000, label)
	}
	if label == fault {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
