package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ps -ef's columns come from /proc.
func TestProcTopReadsProc(t *testing.T) {
	top := procTop([]int{os.Getpid(), 1 << 30})
	if strings.Join(top.Titles, " ") != "UID PID PPID C STIME TTY TIME CMD" {
		t.Errorf("titles %q", top.Titles)
	}
	if len(top.Processes) != 1 {
		t.Fatalf("rows %q; want this process's only (the other pid does not exist)", top.Processes)
	}
	row := top.Processes[0]
	if row[0] != "root" || row[1] != strconv.Itoa(os.Getpid()) || row[2] != strconv.Itoa(os.Getppid()) ||
		!strings.Contains(row[7], filepath.Base(os.Args[0])) {
		t.Errorf("row %q", row)
	}
}

// With ps options, the host's ps rows of the container's pids are kept,
// split as docker does.
func TestFilterPsOutput(t *testing.T) {
	out := []byte("  PID COMMAND\n    1 sleep 1000\n    2 other\n   10 sh -c true\n")
	top, err := filterPsOutput(out, []int{1, 10})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"1", "sleep 1000"}, {"10", "sh -c true"}}
	if strings.Join(top.Titles, ",") != "PID,COMMAND" || len(top.Processes) != 2 ||
		strings.Join(top.Processes[0], ",") != strings.Join(want[0], ",") || strings.Join(top.Processes[1], ",") != strings.Join(want[1], ",") {
		t.Errorf("top %+v; want %q", top, want)
	}
	if _, err := filterPsOutput([]byte("COMMAND\nsleep\n"), []int{1}); !errors.Is(err, errNoPIDColumn) {
		t.Errorf("no PID column: %v", err)
	}
}

// Top and Stats need a running container.
func TestTopAndStatsOfAContainerNotRunning(t *testing.T) {
	e, c := createdTestContainer(t, "idle")
	ctx := context.Background()
	if _, err := e.Top(ctx, c.Name, nil); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("top: %v", err)
	}
	if _, err := e.Stats(ctx, c.Name); err == nil {
		t.Error("stats of a created container succeeded")
	}
	if _, err := e.Stats(ctx, "nosuch"); !IsNotFound(err) {
		t.Errorf("stats of a missing container: %v", err)
	}
}

// The host's counters that stats divide by are read.
func TestHostCounters(t *testing.T) {
	if hostCPUNanos() == 0 || onlineCPUs() < 1 || hostMemory() == 0 {
		t.Errorf("host CPU %d ns, %d CPUs, memory %d", hostCPUNanos(), onlineCPUs(), hostMemory())
	}
	f := filepath.Join(t.TempDir(), "memory.stat")
	os.WriteFile(f, []byte("cache 5\ninactive_file 4096\nactive_file 1\n"), 0o600)
	if n := statKey(f, "inactive_file"); n != 4096 {
		t.Errorf("statKey: %d", n)
	}
}
