package engine

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"hull/internal/monitor"
	"hull/internal/shim"
)

// dieEvents counts container id's die and oom events.
func dieEvents(t *testing.T, e *Engine, id string) (die, oom int) {
	t.Helper()
	if err := e.db.QueryRow(`SELECT count(*) FILTER (WHERE action = 'die'), count(*) FILTER (WHERE action = 'oom') FROM events WHERE id = ?`, id).Scan(&die, &oom); err != nil {
		t.Fatal(err)
	}
	return die, oom
}

// An exit is recorded once: the monitor a shim execs back into records
// the exit the stopper recorded already from the exit file, and that
// changes nothing (the code, the finish time, the events); a stopper
// coming after the monitor changes nothing either.
func TestAnExitIsRecordedOnce(t *testing.T) {
	e, c := createdTestContainer(t, "once")
	ctx := context.Background()
	run := func(pid int) {
		if err := e.update(ctx, c.ID, map[string]any{"state": StateRunning, "pid": pid, "started": time.Now().UnixNano()}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	x := monitor.Exit{Code: 137, Signal: 9, OOMKilled: true, At: at, MemoryPeak: 1 << 20}
	rec := &recorder{e: e, c: c}

	// The stopper first, then the monitor.
	run(4242)
	if ok, err := rec.exited(x, 4242); err != nil || !ok {
		t.Fatalf("the stopper's record: %v, %v; want it recorded", ok, err)
	}
	later := x
	later.Code, later.OOMKilled = 1, false // a monitor reading otherwise must not change it
	if err := rec.Exited(later); err != nil {
		t.Fatal(err)
	}
	got, err := e.lookup(ctx, e.db, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateExited || got.ExitCode != 137 || !got.OOMKilled || got.Pid != 0 || !got.Finished.Equal(time.Unix(0, at.UnixNano())) {
		t.Fatalf("after both records: state %s, exit %d, oom %v, pid %d, finished %v; want the first: exited, 137, oom, 0, %v",
			got.State, got.ExitCode, got.OOMKilled, got.Pid, got.Finished, at)
	}
	if die, oom := dieEvents(t, e, c.ID); die != 1 || oom != 1 {
		t.Fatalf("%d die and %d oom events; want one of each", die, oom)
	}

	// The next run: the monitor first, then a stopper late with the same
	// exit file.
	run(4343)
	y := monitor.Exit{Code: 7, At: time.Now()}
	if err := rec.Exited(y); err != nil {
		t.Fatal(err)
	}
	if ok, err := rec.exited(monitor.Exit{Code: 99, At: y.At}, 4343); err != nil || ok {
		t.Fatalf("a stopper after the monitor: %v, %v; want nothing recorded", ok, err)
	}
	if got, _ := e.lookup(ctx, e.db, c.ID); got.ExitCode != 7 {
		t.Fatalf("exit %d; want the monitor's 7", got.ExitCode)
	}
	if die, _ := dieEvents(t, e, c.ID); die != 2 {
		t.Fatalf("%d die events after two runs; want 2", die)
	}
}

// Stop returns once the container's shim has left the exit in its exit
// file, recorded by the stop itself with the code and the OOM kill, while
// the monitor (the shim's exec back into hull) has not recorded anything.
func TestStopRecordsTheShimsExit(t *testing.T) {
	e, c := createdTestContainer(t, "stopped")
	ctx := context.Background()
	// The container's process, and this test process as its monitor.
	proc := exec.Command("sleep", "60")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer proc.Process.Kill()
	pid := proc.Process.Pid
	self, start := self()
	if err := e.update(ctx, c.ID, map[string]any{"state": StateRunning, "stage": StageRunning, "pid": pid, "pid_start": procStart(pid),
		"started": time.Now().Add(-time.Second).UnixNano(), "monitor_pid": self, "monitor_start": start}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.runDir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	// An exit file of an earlier run of the same pid is not this one's.
	shim.WriteExit(e.exitFile(c.ID), shim.Exit{Code: 3, Pid: pid, At: time.Now().Add(-time.Hour).UnixNano()})
	// The shim: the process ends (here by the test, as the stop signal
	// would have no runtime state to find), is reaped, and its exit
	// written.
	go func() {
		time.Sleep(100 * time.Millisecond)
		proc.Process.Signal(syscall.SIGTERM)
		proc.Wait()
		time.Sleep(20 * time.Millisecond)
		shim.WriteExit(e.exitFile(c.ID), shim.Exit{Code: 137, Signal: 9, OOMKilled: true, Pid: pid, At: time.Now().UnixNano(), MemoryPeak: 5 << 20})
	}()
	begin := time.Now()
	got, err := e.Stop(ctx, c.Name, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("stop took %v: it waited for the monitor, not for the exit file", took)
	}
	if got.State != StateExited || got.ExitCode != 137 || !got.OOMKilled || got.MemoryPeak != 5<<20 {
		t.Fatalf("stop returned state %s, exit %d, oom %v, peak %d; want exited, 137, oom, the shim's peak", got.State, got.ExitCode, got.OOMKilled, got.MemoryPeak)
	}
	if die, oom := dieEvents(t, e, c.ID); die != 1 || oom != 1 {
		t.Fatalf("%d die and %d oom events; want one of each", die, oom)
	}
}

// The removal claim in one statement (claimRemoval) takes what nothing
// stands in the way of, and leaves the rest to removeClaim's transaction
// and its messages: a running container without force, a removal under
// way by a live owner.
func TestRemoveClaimInOneStatement(t *testing.T) {
	e, c := createdTestContainer(t, "claimed")
	ctx := context.Background()
	if err := e.claimRemoval(ctx, c.ID, false, true); err != nil {
		t.Fatalf("claim of a created container: %v", err)
	}
	got, err := e.lookup(ctx, e.db, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := self(); got.State != StateRemoving || got.Name != ".removing-"+c.ID || got.ClaimPid != pid || !got.StopRequested {
		t.Fatalf("after the claim: state %s, name %q, claimer %d, stop %v", got.State, got.Name, got.ClaimPid, got.StopRequested)
	}
	// Removed by a live owner (this process): not again.
	if err := e.claimRemoval(ctx, c.ID, true, true); err == nil {
		t.Fatal("a second claim of a container being removed succeeded")
	}
	if _, err := e.removeClaimOf(ctx, got, c.ID, true, true); err == nil || !strings.Contains(err.Error(), "already in progress") {
		t.Fatalf("removeClaimOf of a container being removed: %v; want the removal in progress named", err)
	}

	e2, r := createdTestContainer(t, "running")
	if err := e2.update(ctx, r.ID, map[string]any{"state": StateRunning, "pid": 4242}); err != nil {
		t.Fatal(err)
	}
	r.State, r.Pid = StateRunning, 4242
	if err := e2.claimRemoval(ctx, r.ID, false, false); err == nil {
		t.Fatal("claim of a running container without force succeeded")
	}
	if _, err := e2.removeClaimOf(ctx, r, r.ID, false, false); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("removeClaimOf of a running container without force: %v; want it refused", err)
	}
	if err := e2.claimRemoval(ctx, r.ID, true, false); err != nil {
		t.Fatalf("claim of a running container with force: %v", err)
	}
}
