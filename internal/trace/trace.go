// Package trace prints where time goes, for performance work: with
// HULL_TRACE=1 each Mark writes "hull[pid] 15:04:05.000000 +12.3ms label"
// to stderr (or to the file HULL_TRACE names): the wall clock, to line up
// processes, and the time since the process started. Off, a Mark
// costs one branch.
package trace

import (
	"fmt"
	"os"
	"time"
)

var (
	start = time.Now()
	out   *os.File
)

func init() {
	switch v := os.Getenv("HULL_TRACE"); v {
	case "":
	case "1":
		out = os.Stderr
	default:
		out, _ = os.OpenFile(v, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	}
}

// Mark records that label was reached.
func Mark(label string) {
	if out == nil {
		return
	}
	now := time.Now()
	fmt.Fprintf(out, "hull[%d] %s +%.1fms %s\n", os.Getpid(), now.Format("15:04:05.000000"), float64(now.Sub(start).Microseconds())/1000, label)
}
