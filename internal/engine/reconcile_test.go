package engine

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// A command that read a container as running, then found its monitor
// gone, must not take the monitor's normal end for a crash: the monitor
// recorded the exit before it exited, and that record stands.
func TestReconcileKeepsAnExitRecordedMeanwhile(t *testing.T) {
	e := openTestEngine(t)
	ctx := context.Background()
	c := &Container{ID: "0123456789ab", Name: "brief", Image: "busybox", Created: time.Now(), State: StateCreated, Stage: StageCreate}
	if err := e.insert(ctx, c); err != nil {
		t.Fatal(err)
	}
	// A pid that has surely exited: a child we reaped.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	// What the command read: running, supervised by that monitor.
	stale := *c
	stale.State, stale.MonitorPid, stale.MonitorStart, stale.Pid = StateRunning, gone.Process.Pid, 12345, 0
	// What the monitor recorded before exiting.
	if err := e.update(ctx, c.ID, map[string]any{"state": StateExited, "exit_code": 5, "monitor_pid": 0, "monitor_start": 0}); err != nil {
		t.Fatal(err)
	}
	got, err := e.reconcile(ctx, &stale)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateExited || got.ExitCode != 5 || got.Error != "" {
		t.Fatalf("after reconcile: state %s, exit %d, error %q; want the monitor's exit 5 and no error", got.State, got.ExitCode, got.Error)
	}
}
