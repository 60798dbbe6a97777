package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"hull/internal/testenv"
)

// system check finds what a killed command, a crash or a hand in the
// store leaves, --repair puts it right, and a second check finds nothing.
func TestSystemCheckFindsAndRepairs(t *testing.T) {
	root, fx := containerEnv(t)
	run := filepath.Join(root, "run")
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	if out := mustHull(t, root, "system", "check"); !strings.Contains(out, "no inconsistencies found") {
		t.Fatalf("check of a fresh root:\n%s", out)
	}
	// A removal and a creation killed half way.
	mustHull(t, root, "run", "-d", "--name", "half-removed", fx.Busybox.Ref, "sleep", "300")
	killedAt(t, root, "rm: killed", "rm", "-f", "half-removed")
	killedAt(t, root, "create: rootfs mounted", "create", "--name", "half-created", fx.Busybox.Ref, "true")
	// Leftovers of a container with no record: its directories, and a
	// mount on its root filesystem.
	ghost := strings.Repeat("ab", 32)
	for _, d := range []string{filepath.Join(root, "containers", ghost), filepath.Join(run, "containers", ghost, "rootfs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "containers", ghost, "container.log"), []byte("last words\n"), 0o600)
	if err := syscall.Mount("tmpfs", filepath.Join(run, "containers", ghost, "rootfs"), "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(filepath.Join(run, "containers", ghost, "rootfs"), syscall.MNT_DETACH) })
	// A blob no image references, and a directory made wide.
	os.WriteFile(filepath.Join(root, "images", "blobs", "sha256", strings.Repeat("0", 64)), []byte("x"), 0o444)
	mustHull(t, root, "volume", "create", "vol")
	os.Chmod(filepath.Join(root, "volumes"), 0o755)

	out, _, err := hull(t, root, "system", "check")
	if exitStatus(err) == 0 && err == nil {
		t.Errorf("check with inconsistencies succeeded")
	}
	for _, want := range []string{"container half-removed", "container half-created", filepath.Join(root, "containers", ghost),
		filepath.Join(run, "containers", ghost), filepath.Join(run, "containers", ghost, "rootfs"), "1 blobs", filepath.Join(root, "volumes") + ": mode 0755"} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not report %q:\n%s", want, out)
		}
	}
	out = mustHull(t, root, "system", "check", "--repair")
	if strings.Contains(out, "repair failed") {
		t.Errorf("repair:\n%s", out)
	}
	if out := mustHull(t, root, "system", "check"); !strings.Contains(out, "no inconsistencies found") {
		t.Errorf("check after --repair:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(root, "lost+found", "containers", ghost, "container.log")); string(b) != "last words\n" {
		t.Errorf("the unrecorded container's log in lost+found: %q %v", b, err)
	}
	if isMountPoint(filepath.Join(run, "containers", ghost, "rootfs")) {
		t.Errorf("the unrecorded container's mount is still there")
	}
	if out := mustHull(t, root, "ps", "-aq"); out != "" {
		t.Errorf("containers after the repair: %q", out)
	}
	mustHull(t, root, "run", "--rm", "--name", "half-removed", fx.Busybox.Ref, "true")

	// --verify: a blob whose content was changed on disk.
	layer := filepath.Join(root, "images", "blobs", "sha256", strings.TrimPrefix(fx.Busybox.ConfigDigest, "sha256:"))
	os.Chmod(layer, 0o644)
	if err := os.WriteFile(layer, []byte("{}"), 0o444); err != nil {
		t.Fatal(err)
	}
	if out := mustHull(t, root, "system", "check"); !strings.Contains(out, "no inconsistencies found") {
		t.Errorf("check without --verify hashes nothing, yet:\n%s", out)
	}
	out, _, _ = hull(t, root, "system", "check", "--verify", "--repair")
	if !strings.Contains(out, "blob "+fx.Busybox.ConfigDigest+": its content does not match its digest (repaired") {
		t.Errorf("check --verify --repair:\n%s", out)
	}
	if out, _, err := hull(t, root, "system", "check"); err == nil || !strings.Contains(out, "pull it again") {
		t.Errorf("check after the corrupt blob was deleted: %v\n%s", err, out)
	}
}

// A database lost (emptied) beside its images and a running container:
// hull refuses to start on it; system check --repair keeps it aside,
// stops the container nobody can know again (its log goes to
// lost+found) and records the images again from the store, which run.
func TestDamagedDatabaseIsRebuilt(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "live", fx.Busybox.Ref, "sh", "-c", "echo before; sleep 300")
	live := inspectOne(t, root, "live")
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "live"), "before") })
	for _, f := range []string{"hull.db-wal", "hull.db-shm"} {
		os.Remove(filepath.Join(root, f))
	}
	if err := os.WriteFile(filepath.Join(root, "hull.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := hull(t, root, "ps"); err == nil || !strings.Contains(err.Error(), "system check --repair") {
		t.Fatalf("ps on an emptied database: %v", err)
	}
	out := mustHull(t, root, "system", "check", "--repair")
	for _, want := range []string{"kept as", "container " + live.ID + ": stopped", "image " + fx.Busybox.Ref + ": recorded again"} {
		if !strings.Contains(out, want) {
			t.Errorf("repair does not say %q:\n%s", want, out)
		}
	}
	waitFor(t, func() bool { return !testenv.ProcessRunning(live.State.Pid) })
	if b, _ := os.ReadFile(filepath.Join(root, "lost+found", "containers", live.ID, "container.log")); !strings.Contains(string(b), "before") {
		t.Errorf("the lost container's log: %q", b)
	}
	if out := mustHull(t, root, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != fx.Busybox.Ref {
		t.Errorf("images after the rebuild: %q", out)
	}
	if out := mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "echo", "works"); out != "works\n" {
		t.Errorf("run after the rebuild: %q", out)
	}
	if out := mustHull(t, root, "system", "check"); !strings.Contains(out, "no inconsistencies found") {
		t.Errorf("check after the rebuild:\n%s", out)
	}
}
