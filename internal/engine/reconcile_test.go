package engine

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"hull/internal/monitor"
)

// A command that read a container as running, then found its monitor
// gone, must not take the monitor's normal end for a crash: the monitor
// recorded the exit before it exited, and that record stands.
func TestReconcileKeepsAnExitRecordedMeanwhile(t *testing.T) {
	e, c := createdTestContainer(t, "brief")
	ctx := context.Background()
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
	e, c := createdTestContainer(t, "starting")
	ctx := context.Background()
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

// The monitor records itself when it records the start; the command's
// own record of the monitor, which may come after a short container's
// whole run, only fills in a claim and never brings back a monitor that
// has finished (a wait would then wait for ever).
func TestLateMonitorRecordUndoesNothing(t *testing.T) {
	e, c := createdTestContainer(t, "short")
	ctx := context.Background()
	self := os.Getpid()
	read := func() *Container {
		t.Helper()
		got, err := e.lookup(ctx, e.db, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// The claim: the command's record fills it in.
	e.update(ctx, c.ID, map[string]any{"state": StateRunning, "pid": 0, "monitor_pid": 0})
	e.recordMonitor(ctx, c.ID, self)
	if got := read(); got.MonitorPid != self || got.MonitorStart != procStart(self) {
		t.Fatalf("during the claim: monitor %d (%d), want %d", got.MonitorPid, got.MonitorStart, self)
	}

	// The monitor started the container, recorded itself, ran it to its
	// end and finished; then the command's record comes.
	e.update(ctx, c.ID, map[string]any{"state": StateRunning, "pid": 0, "monitor_pid": 0, "monitor_start": 0})
	rec := &recorder{e: e, c: c}
	if err := rec.Started(4242, 1, 0); err != nil {
		t.Fatal(err)
	}
	if got := read(); got.MonitorPid != self || got.MonitorStart != procStart(self) || got.BootID == "" {
		t.Fatalf("after Started: monitor %d (%d), boot %q; want this process, as the monitor", got.MonitorPid, got.MonitorStart, got.BootID)
	}
	if err := rec.Exited(monitor.Exit{Code: 0, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rec.Done(monitor.Exit{})
	e.recordMonitor(ctx, c.ID, self)
	if got := read(); got.MonitorPid != 0 || got.State != StateExited {
		t.Fatalf("a late record after the monitor finished: state %s, monitor %d; want exited with no monitor", got.State, got.MonitorPid)
	}
}

// A stop that comes between an exit the monitor recorded and the restart
// it had decided on returns only once the monitor has seen the stop: the
// container is then stopped for good, not restarting.
func TestStopWaitsForARestartDecided(t *testing.T) {
	e, c := createdTestContainer(t, "loop")
	ctx := context.Background()
	// This process stands for the monitor: it has recorded the exit.
	self := os.Getpid()
	e.update(ctx, c.ID, map[string]any{"state": StateExited, "monitor_pid": self, "monitor_start": procStart(self)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(30 * time.Millisecond)
		e.update(ctx, c.ID, map[string]any{"state": StateRestarting})
		for {
			var stop bool
			e.db.QueryRow(`SELECT stop_requested FROM containers WHERE id = ?`, c.ID).Scan(&stop)
			if stop {
				e.update(ctx, c.ID, map[string]any{"state": StateExited, "monitor_pid": 0, "monitor_start": 0})
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	got, err := e.Stop(ctx, c.Name, time.Second)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateExited || !got.settled() {
		t.Fatalf("stop returned %s with monitor %d; want exited, with the monitor done", got.State, got.MonitorPid)
	}
}

// createdTestContainer records a created container, named name, in a
// fresh engine.
func createdTestContainer(t *testing.T, name string) (*Engine, *Container) {
	t.Helper()
	e := openTestEngine(t)
	c := &Container{ID: "0123456789ab", Name: name, Image: "busybox", Created: time.Now(), State: StateCreated, Stage: StageCreate}
	if err := e.insert(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return e, c
}

// wait of an --rm container whose exit and removal both fall between two
// of wait's reads returns the exit code, from its die event, not the 0 of
// the running record it read last.
func TestWaitForARemovedContainerReadsItsExit(t *testing.T) {
	e, c := createdTestContainer(t, "brief")
	ctx := context.Background()
	self, start := self()
	if err := e.update(ctx, c.ID, map[string]any{"state": StateRunning, "pid": self, "pid_start": start,
		"monitor_pid": self, "monitor_start": start}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := e.Wait(ctx, c.Name)
		done <- result{code, err}
	}()
	time.Sleep(50 * time.Millisecond) // wait has read the running record
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		e.emitIn(ctx, tx, c, "die", map[string]string{"exitCode": "7"})
		_, err := tx.Exec(`DELETE FROM containers WHERE id = ?`, c.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.code != 7 {
		t.Fatalf("wait: %d %v, want 7", r.code, r.err)
	}
}

// A created container without its bundle (config.json) is at work while
// the process its record names as creator (Create's claim) lives, and was
// abandoned once that process is gone; its bundle, once written, settles
// it whoever wrote it. No lock file or directory is needed for it.
func TestCreationAbandonedFollowsItsCreator(t *testing.T) {
	e, c := createdTestContainer(t, "creating")
	c.ClaimPid, c.ClaimStart = self()
	if e.creationAbandoned(c) {
		t.Error("a creation whose creator (this process) lives was taken for abandoned")
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	c.ClaimPid, c.ClaimStart = gone.Process.Pid, 1
	if !e.creationAbandoned(c) {
		t.Error("a creation whose creator has exited was not taken for abandoned")
	}
	if err := os.MkdirAll(e.persistDir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.persistDir(c.ID), "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.creationAbandoned(c) {
		t.Error("a creation whose config.json is written was taken for abandoned")
	}
}

// RemoveIntended answers before its claim, keeps the container pending
// (RemovalPending) until its goroutine ends, and calls done once per
// call, a second call for the same container too; a removal another
// live process has claimed is left to it (done gets nil).
func TestRemoveIntendedCallsDoneOnce(t *testing.T) {
	e, c := createdTestContainer(t, "intended")
	ctx := context.Background()
	owner := exec.Command("sleep", "60") // another process's removal
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
	if err := e.update(ctx, c.ID, map[string]any{"state": StateRemoving, "claim_pid": owner.Process.Pid, "claim_start": procStart(owner.Process.Pid)}); err != nil {
		t.Fatal(err)
	}
	calls := make(chan error, 2)
	done := func(err error) { calls <- err }
	if err := e.RemoveIntended(ctx, c, true, done); err != nil {
		t.Fatal(err)
	}
	if !e.RemovalPending(c.ID) {
		t.Error("the removal is not pending after RemoveIntended answered")
	}
	if err := e.RemoveIntended(ctx, c, true, done); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-calls:
			if err != nil {
				t.Errorf("done(%v); want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("done was not called for each RemoveIntended")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); e.RemovalPending(c.ID); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the removal is still pending after it ended")
		}
	}
	if got, err := e.Get(ctx, c.ID); err != nil || got.ClaimPid != owner.Process.Pid {
		t.Errorf("the container after: %+v, %v; want it left to its owner, %d", got, err, owner.Process.Pid)
	}
}
