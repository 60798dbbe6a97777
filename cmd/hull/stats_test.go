package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// stats --format takes docker's fields, its table headers and {{json .}}.
func TestStatsFormatFields(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "s1", "-m", "64m", fx.Busybox.Ref, "sleep", "1000")
	id := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.ID}}", "s1"))

	out := mustHull(t, root, "stats", "--no-stream", "--format",
		"table {{.Container}}\t{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}", "s1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := regexp.MustCompile(`^CONTAINER +CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`)
	if len(lines) != 2 || !header.MatchString(lines[0]) {
		t.Fatalf("stats table:\n%s", out)
	}
	row := regexp.MustCompile(`^s1 +` + id[:12] + ` +s1 +[0-9.]+% +[0-9.]+[KMG]?i?B / 64MiB +[0-9.]+% +[0-9.]+[kMG]?B / [0-9.]+[kMG]?B +[0-9.]+[kMG]?B / [0-9.]+[kMG]?B +1$`)
	if !row.MatchString(lines[1]) {
		t.Errorf("stats row: %q", lines[1])
	}

	var doc map[string]string
	if err := json.Unmarshal([]byte(mustHull(t, root, "stats", "--no-stream", "--format", "{{json .}}", "s1")), &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Container": "s1", "Name": "s1", "ID": id[:12], "PIDs": "1"} {
		if doc[k] != want {
			t.Errorf("{{json .}} %s = %q, want %q (%v)", k, doc[k], want, doc)
		}
	}
	for _, k := range []string{"CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO"} {
		if doc[k] == "" {
			t.Errorf("{{json .}} lacks %s: %v", k, doc)
		}
	}

	// --format table is the default table; --no-trunc the full ID; with
	// no container named, {{.Container}} is the full ID (docker's).
	if out := mustHull(t, root, "stats", "--no-stream", "--format", "table"); !strings.HasPrefix(out, "CONTAINER ID   NAME ") {
		t.Errorf("stats --format table:\n%s", out)
	}
	if out := mustHull(t, root, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", "s1"); out != id+"\n" {
		t.Errorf("stats --no-trunc: %q", out)
	}
	if out := mustHull(t, root, "stats", "--no-stream", "--format", "{{.Container}}"); out != id+"\n" {
		t.Errorf("stats {{.Container}} without names: %q", out)
	}
	if _, _, err := hull(t, root, "stats", "--no-stream", "--format", "{{.Nope}}", "s1"); err == nil {
		t.Error("stats --format {{.Nope}} succeeded")
	}
}
