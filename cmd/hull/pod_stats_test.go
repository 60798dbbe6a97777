package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// pod stats lists each container of the running pods with podman's
// columns; --format reads podman's field names; a stopped pod shows only
// with -a. pod logs merges the containers' output in time order, each line
// prefixed with its container's short ID (its name with --names), one
// container's alone with -c and no prefix, and --tail counts per container.
func TestPodStatsAndLogs(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pod", "create", "--name", "ps1")
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "ps1") })
	a := strings.TrimSpace(mustHull(t, root, "run", "-d", "--pod", "ps1", "--name", "a", fx.Busybox.Ref, "sh", "-c", "echo a1; sleep 0.3; echo a2; sleep 1000"))
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "a"), "a2") })
	b := strings.TrimSpace(mustHull(t, root, "run", "-d", "--pod", "ps1", "--name", "b", fx.Busybox.Ref, "sh", "-c", "echo b1 >&2; sleep 1000"))
	waitFor(t, func() bool { _, e, _ := hull(t, root, "logs", "b"); return strings.Contains(e, "b1") })

	out := mustHull(t, root, "pod", "stats", "--no-stream")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "POD") || !strings.Contains(lines[0], "MEM USAGE/ LIMIT") || !strings.Contains(lines[0], "PIDS") {
		t.Fatalf("pod stats --no-stream:\n%s", out)
	}
	if !strings.Contains(out, a[:12]) || !strings.Contains(out, b[:12]) {
		t.Errorf("pod stats does not list both containers:\n%s", out)
	}
	out = mustHull(t, root, "pod", "stats", "--no-stream", "--format", "json", "ps1")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var row struct{ Pod, CID, Name, PIDS string }
		if err := json.Unmarshal([]byte(l), &row); err != nil || row.PIDS != "1" || len(row.Pod) != 12 || row.CID != a[:12] && row.CID != b[:12] {
			t.Errorf("pod stats --format json line %q: %+v (%v)", l, row, err)
		}
	}
	out = mustHull(t, root, "pod", "stats", "--no-stream", "--format", "{{.Name}}", "ps1")
	if got := strings.Fields(out); len(got) != 2 || !(got[0] == "a" && got[1] == "b" || got[0] == "b" && got[1] == "a") {
		t.Errorf("pod stats --format {{.Name}}: %q", out)
	}

	stdout, stderr, err := hull(t, root, "pod", "logs", "ps1")
	if err != nil {
		t.Fatalf("pod logs: %v", err)
	}
	if want := a[:12] + " a1\n" + a[:12] + " a2\n"; stdout != want {
		t.Errorf("pod logs stdout = %q, want %q", stdout, want)
	}
	if want := b[:12] + " b1\n"; stderr != want {
		t.Errorf("pod logs stderr = %q, want %q", stderr, want)
	}
	if out := mustHull(t, root, "pod", "logs", "--names", "--tail", "1", "ps1"); out != "a a2\n" {
		t.Errorf("pod logs --names --tail 1 stdout = %q", out)
	}
	if out := mustHull(t, root, "pod", "logs", "-c", "a", "ps1"); out != "a1\na2\n" {
		t.Errorf("pod logs -c a = %q", out)
	}
	if _, _, err := hull(t, root, "pod", "logs", "-c", "nosuch", "ps1"); err == nil || !strings.Contains(err.Error(), "No such container: nosuch") {
		t.Errorf("pod logs -c nosuch: %v", err)
	}

	mustHull(t, root, "pod", "stop", "-t", "0", "ps1")
	if out := mustHull(t, root, "pod", "stats", "--no-stream", "--format", "{{.Name}}"); strings.TrimSpace(out) != "" {
		t.Errorf("pod stats lists a stopped pod's containers without -a: %q", out)
	}
	if out := mustHull(t, root, "pod", "logs", "-f", "-c", "a", "ps1"); out != "a1\na2\n" {
		t.Errorf("pod logs -f of a stopped pod = %q", out)
	}
	if out := mustHull(t, root, "pod", "stats", "-a", "--no-stream", "--format", "{{.Name}} {{.PIDS}}"); !strings.Contains(out, "a 0") {
		t.Errorf("pod stats -a of a stopped pod: %q", out)
	}
}
