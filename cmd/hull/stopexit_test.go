package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A stop records the container's exit itself, from the exit file its
// hull-shim leaves, without waiting for the monitor the shim execs back
// into (engine/stopexit.go). Here that monitor is killed as it resumes
// (HULL_FAULT), so what inspect, ps, why and the events show is the
// stop's own record: the code the container exited with, and an OOM kill
// as 137 with OOMKilled. Before, the stop waited for that monitor, and
// its death left the exit unknown (255).
func TestStopRecordsTheExitItself(t *testing.T) {
	root, fx := containerEnv(t)
	run := func(args ...string) {
		t.Helper()
		cmd := hullProc(root, append([]string{"run", "-d"}, args...)...)
		cmd.Env = append(cmd.Env, "HULL_FAULT=monitor: resumed")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("--name", "seven", fx.Busybox.Ref, "sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done")
	run("--name", "hog", "-m", "32m", fx.Busybox.Ref, "sh", "-c", "trap 'exec tail /dev/zero' TERM; echo ready; while true; do sleep 0.1; done")
	for _, name := range []string{"seven", "hog"} {
		waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", name), "ready") })
	}
	if out := strings.Fields(mustHull(t, root, "stop", "seven", "hog")); len(out) != 2 {
		t.Fatalf("stop printed %q", out)
	}
	var doc []struct {
		Name  string
		State struct {
			Status    string
			ExitCode  int
			OOMKilled bool
			Error     string
		}
	}
	if err := json.Unmarshal([]byte(mustHull(t, root, "inspect", "seven", "hog")), &doc); err != nil || len(doc) != 2 {
		t.Fatalf("inspect: %v %+v", err, doc)
	}
	for i, want := range []struct {
		code int
		oom  bool
	}{{7, false}, {137, true}} {
		s := doc[i].State
		if s.Status != "exited" || s.ExitCode != want.code || s.OOMKilled != want.oom || s.Error != "" {
			t.Errorf("%s after stop: %+v; want exited, code %d, OOMKilled %v, no error", doc[i].Name, s, want.code, want.oom)
		}
	}
	if out := mustHull(t, root, "ps", "-a", "--filter", "name=hog", "--format", "{{.Status}}"); !strings.Contains(out, "Exited (137) OOMKilled") {
		t.Errorf("ps -a STATUS of hog lacks the OOM kill: %q", out)
	}
	if out := mustHull(t, root, "why", "hog"); !strings.Contains(out, "OOM killer") {
		t.Errorf("why hog:\n%s", out)
	}
	out := mustHull(t, root, "events", "--since", "1h", "--until", "0s", "--filter", "event=die", "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")
	if got := strings.Fields(out); len(got) != 4 || !strings.Contains(out, "seven 7") || !strings.Contains(out, "hog 137") {
		t.Errorf("die events:\n%s\nwant one for each, with its code", out)
	}
}
