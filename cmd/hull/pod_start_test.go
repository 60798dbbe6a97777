package main

import (
	"strings"
	"testing"
)

// hull start of a container whose pod is stopped starts the pod first,
// as podman does (README: "starting the pod if it is stopped"); only the
// CRI refuses that (a sandbox that is not ready takes no start).
func TestStartContainerStartsItsStoppedPod(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pod", "create", "--name", "sp")
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "sp") })
	mustHull(t, root, "create", "--pod", "sp", "--name", "late", fx.Busybox.Ref, "sleep", "300")
	mustHull(t, root, "pod", "start", "sp")
	mustHull(t, root, "pod", "stop", "-t", "0", "sp")
	if st := strings.TrimSpace(mustHull(t, root, "pod", "inspect", "-f", "{{.State}}", "sp")); st != "Exited" {
		t.Fatalf("pod after stop: %s", st)
	}
	mustHull(t, root, "start", "late")
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "late")); st != "running" {
		t.Errorf("late after start: %s, want running", st)
	}
	if st := strings.TrimSpace(mustHull(t, root, "pod", "inspect", "-f", "{{.State}}", "sp")); st != "Running" {
		t.Errorf("pod after starting its container: %s, want Running", st)
	}
	mustHull(t, root, "pod", "rm", "-f", "sp")
}
