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

// A stop, kill or rm that finds a start under way (claimed, no process
// recorded yet) acts once the process is recorded, not on the empty
// claim; a start that never records one is waited for only so long.
func TestGetStartedWaitsForTheProcess(t *testing.T) {
	e := openTestEngine(t)
	ctx := context.Background()
	c := &Container{ID: "0123456789ab", Name: "starting", Image: "busybox", Created: time.Now(), State: StateCreated, Stage: StageCreate}
	if err := e.insert(ctx, c); err != nil {
		t.Fatal(err)
	}
	claim := map[string]any{"state": StateRunning, "pid": 0, "started": time.Now().UnixNano()}
	if err := e.update(ctx, c.ID, claim); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		e.update(ctx, c.ID, map[string]any{"pid": 4242, "stage": StageRunning})
	}()
	got, err := e.getStarted(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pid != 4242 {
		t.Fatalf("getStarted returned pid %d during a start; want the process the start recorded (4242)", got.Pid)
	}

	defer func(d time.Duration) { startSettle = d }(startSettle)
	startSettle = 20 * time.Millisecond
	if err := e.update(ctx, c.ID, claim); err != nil {
		t.Fatal(err)
	}
	got, err = e.getStarted(ctx, c.Name)
	if err != nil || got.State != StateRunning || got.Pid != 0 {
		t.Fatalf("a start that records nothing: got %+v, %v; want the claim as found", got, err)
	}
}
