package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hull/internal/testenv"
)

// TestContainerCheckpointExport checkpoints a running container with
// `hull container checkpoint --export`: -R leaves it running with its
// counter going on; without it the container stops and shows as exited
// with code 0. Both archives hold the whole layout. The container has
// a bind mount with a file open on it.
func TestContainerCheckpointExport(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	// A bind mount (external to CRIU, by its destination) with a file
	// the container holds open.
	data := t.TempDir()
	mustHull(t, root, "run", "-d", "--name", "ck", "-v", data+":/data", fx.Busybox.Ref, "sh", "-c",
		"echo hi > /new; exec 3>>/data/out; i=0; while true; do i=$((i+1)); echo $i; echo $i >&3; sleep 0.1; done")
	dir := t.TempDir()
	archive := filepath.Join(dir, "ck.tar")
	out := mustHull(t, root, "container", "checkpoint", "-R", "--export", archive, "ck")
	id := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.Id}}", "ck"))
	if strings.TrimSpace(out) != id {
		t.Errorf("checkpoint printed %q; want the container's ID %s", out, id)
	}
	members := testenv.TarMembers(t, archive)
	for _, want := range []string{"checkpoint/inventory.img", "checkpoint/dump.log", "spec.dump", "config.dump", "rootfs-diff.tar"} {
		if _, ok := members[want]; !ok {
			t.Errorf("archive lacks %s", want)
		}
	}
	var rec struct {
		ID, Name string
		Version  int
	}
	if err := json.Unmarshal(members["config.dump"], &rec); err != nil || rec.ID != id || rec.Name != "ck" || rec.Version != 1 {
		t.Errorf("config.dump = %+v (%v)", rec, err)
	}
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "ck")); st != "running" {
		t.Fatalf("after checkpoint -R the container is %s, not running", st)
	}
	before := strings.Count(mustHull(t, root, "logs", "ck"), "\n")
	time.Sleep(500 * time.Millisecond)
	if after := strings.Count(mustHull(t, root, "logs", "ck"), "\n"); after <= before {
		t.Errorf("the counter stopped after checkpoint -R (%d lines, then %d)", before, after)
	}

	// Without -R the checkpoint stops it, shown as podman shows it.
	second := filepath.Join(dir, "ck2.tar")
	mustHull(t, root, "container", "checkpoint", "-e", second, "ck")
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ck")); st != "exited 0" {
		t.Errorf("after checkpoint the container is %q; want exited 0", st)
	}
	if _, ok := testenv.TarMembers(t, second)["checkpoint/inventory.img"]; !ok {
		t.Errorf("the second archive lacks its images")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("the export directory holds %d files; want the two archives only", len(ents))
	}

	// Without --export the archive is the container's own.
	mustHull(t, root, "run", "-d", "--name", "own", fx.Busybox.Ref, "sleep", "60")
	own := strings.TrimSpace(mustHull(t, root, "container", "checkpoint", "own"))
	if _, ok := testenv.TarMembers(t, filepath.Join(root, "containers", own, "checkpoint.tar"))["config.dump"]; !ok {
		t.Errorf("checkpoint without --export: no archive in the container's directory")
	}

	// A stopped container cannot be checkpointed.
	_, _, err := hull(t, root, "container", "checkpoint", "-e", filepath.Join(dir, "x.tar"), "ck")
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("checkpoint of a stopped container: %v; want it refused as not running", err)
	}
}

// A `hull container checkpoint` killed midway (no hull-cri runs after it
// to recover) leaves the container frozen and CRIU's work files beside
// the archive: `hull system check` names it and --repair thaws it, ends
// CRIU and removes the files, as hull-cri's start does.
func TestKilledCheckpointIsRepaired(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	for _, mark := range []string{"checkpoint: frozen", "checkpoint: criu started", "checkpoint: dumped"} {
		t.Run(strings.ReplaceAll(mark, " ", ""), func(t *testing.T) {
			mustHull(t, root, "run", "-d", "--name", "kc", fx.Busybox.Ref, "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done")
			defer mustHull(t, root, "rm", "-f", "kc")
			dir := t.TempDir()
			killedAt(t, root, mark, "container", "checkpoint", "-R", "-e", filepath.Join(dir, "kc.tar"), "kc")
			out, _, err := hull(t, root, "system", "check")
			if err == nil || !strings.Contains(out, "checkpoint was killed midway") {
				t.Fatalf("system check after a checkpoint killed at %q does not name it:\n%s", mark, out)
			}
			mustHull(t, root, "system", "check", "--repair")
			if out, _, _ := hull(t, root, "system", "check"); strings.Contains(out, "checkpoint was killed midway") {
				t.Errorf("after --repair system check still reports:\n%s", out)
			}
			// Running again: its output moves on, and its cgroup is thawed.
			before := mustHull(t, root, "logs", "kc")
			time.Sleep(300 * time.Millisecond)
			if after := mustHull(t, root, "logs", "kc"); len(after) <= len(before) {
				t.Errorf("killed at %q and repaired, the container writes nothing more", mark)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("killed at %q and repaired, the archive's directory still holds %d entries", mark, len(ents))
			}
			// And a checkpoint works again.
			mustHull(t, root, "container", "checkpoint", "-R", "-e", filepath.Join(dir, "again.tar"), "kc")
		})
	}
}
