package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"hull/internal/testenv"
)

// inspectOne reads the fields the recovery tests look at.
type inspected struct {
	State struct {
		Status   string
		Pid      int
		ExitCode int
		Error    string
	}
	HullLifecycle struct{ MonitorPid int }
}

func inspectOne(t *testing.T, root, name string) inspected {
	t.Helper()
	var doc []inspected
	if err := json.Unmarshal([]byte(mustHull(t, root, "inspect", name)), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return doc[0]
}

// killedAt runs hull with HULL_FAULT=mark: the hull process that reaches
// the mark kills itself there with SIGKILL.
func killedAt(t *testing.T, root, mark string, args ...string) {
	t.Helper()
	cmd := hullProc(root, args...)
	cmd.Env = append(cmd.Env, "HULL_FAULT="+mark)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("hull %s with HULL_FAULT=%q: %v, want it killed at the mark: %s", strings.Join(args, " "), mark, err, out)
	}
}

// An rm -f killed part way leaves no container "Removal In Progress" for
// ever, nor one running unsupervised: the next command sees the remover
// dead, stops what is left and records the container dead, and rm (no -f
// needed) and the prunes finish the removal; the name is free again.
func TestKilledRemovalIsTakenOver(t *testing.T) {
	root, fx := containerEnv(t)
	for _, mark := range []string{"rm: claimed", "rm: killed", "cleanup: unmounted", "cleanup: set aside"} {
		t.Run(strings.ReplaceAll(mark, " ", ""), func(t *testing.T) {
			mustHull(t, root, "run", "-d", "--name", "rk", fx.Busybox.Ref, "sleep", "300")
			before := inspectOne(t, root, "rk")
			killedAt(t, root, mark, "rm", "-f", "rk")
			if out := mustHull(t, root, "ps", "-a", "--filter", "name=rk", "--format", "{{.Status}}"); strings.TrimSpace(out) != "Dead" {
				t.Errorf("ps after rm -f was killed at %q: %q, want Dead", mark, out)
			}
			waitFor(t, func() bool {
				return !testenv.ProcessRunning(before.State.Pid) && !testenv.ProcessRunning(before.HullLifecycle.MonitorPid)
			})
			if out := mustHull(t, root, "why", "rk"); !strings.Contains(out, "killed while removing") || !strings.Contains(out, "hull rm rk") {
				t.Errorf("why:\n%s", out)
			}
			mustHull(t, root, "rm", "rk")
			if out := mustHull(t, root, "ps", "-aq"); out != "" {
				t.Fatalf("after rm: %q", out)
			}
		})
	}
	// A prune finishes one too.
	mustHull(t, root, "run", "-d", "--name", "rk", fx.Busybox.Ref, "sleep", "300")
	killedAt(t, root, "rm: claimed", "rm", "-f", "rk")
	mustHull(t, root, "container", "prune", "-f")
	if out := mustHull(t, root, "ps", "-aq"); out != "" {
		t.Fatalf("after prune: %q", out)
	}
}

// A start whose command was killed after its claim, before any monitor
// took the container, is not left "running" with no process for 30 s: once
// its owner is seen dead (and the short grace for a monitor it handed the
// container to has passed), it is recorded as failed, and starts again.
func TestKilledStartIsTakenOver(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "create", "--name", "ks", fx.Busybox.Ref, "sleep", "300")
	killedAt(t, root, "start: claimed", "start", "ks")
	waitFor(t, func() bool { return inspectOne(t, root, "ks").State.Status == "exited" })
	if got := inspectOne(t, root, "ks"); !strings.Contains(got.State.Error, "killed while starting") {
		t.Errorf("after the start was killed: %+v", got.State)
	}
	mustHull(t, root, "start", "ks")
	if got := inspectOne(t, root, "ks"); got.State.Status != "running" {
		t.Errorf("started again: %+v", got.State)
	}
}

// Monitor and container both killed: the exit code is unknown, not the 0
// of the record's start; docker says 255, and why names the monitor.
func TestMonitorAndContainerKilledExitUnknown(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "both", fx.Busybox.Ref, "sleep", "300")
	got := inspectOne(t, root, "both")
	syscall.Kill(got.HullLifecycle.MonitorPid, syscall.SIGKILL)
	syscall.Kill(got.State.Pid, syscall.SIGKILL)
	waitFor(t, func() bool {
		return syscall.Kill(got.HullLifecycle.MonitorPid, 0) != nil && !testenv.ProcessRunning(got.State.Pid)
	})
	if out := mustHull(t, root, "ps", "-a", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (255)") {
		t.Errorf("ps: %q, want Exited (255)", out)
	}
	if out := mustHull(t, root, "why", "both"); !strings.Contains(out, "monitor") || !strings.Contains(out, "died") {
		t.Errorf("why:\n%s", out)
	}
}
