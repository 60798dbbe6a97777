package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"hull/internal/perm"
)

// reachableRoot makes the test's hull root reachable by other users, as
// /var/lib/hull is (t.TempDir is 0700, which would hide every mistake), and
// returns it.
func reachableRoot(t *testing.T, root string) string {
	t.Helper()
	for d := root; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// asNobody runs a host command as uid/gid 65534.
func asNobody(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// Nothing a container or an image leaves under hull's roots is reachable by
// another local user: a setuid binary a container wrote into a named volume
// (CVE-2021-41091's class), an image mounted for inspection, the database
// with every container's environment, the image store.
func TestNothingUnderTheRootsIsReachableByOthers(t *testing.T) {
	root, fx := containerEnv(t)
	reachableRoot(t, root)
	run := filepath.Join(root, "run")

	mustHull(t, root, "run", "--rm", "-v", "v3:/v", fx.Busybox.Ref, "sh", "-c", "cp /bin/busybox /v/x && chmod 4755 /v/x")
	helper := filepath.Join(root, "volumes", "v3", "_data", "x")
	if st, err := os.Stat(helper); err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("the container's setuid copy in the volume: %v %v", st, err)
	}
	if out, err := asNobody(helper, "id", "-u").CombinedOutput(); err == nil {
		t.Errorf("uid 65534 ran the container's setuid binary from the volume: %s", out)
	}
	mustHull(t, root, "run", "-d", "--name", "secret", "-e", "SECRET_TOKEN=hunter2", fx.Busybox.Ref, "sleep", "60")
	// What else leaves files under the roots: exec, cp both ways, logs,
	// a restart, a tmpfs, a --rm run, save and load, an anonymous volume.
	mustHull(t, root, "exec", "secret", "sh", "-c", "echo from-exec > /tmp/f")
	host := filepath.Join(t.TempDir(), "f")
	mustHull(t, root, "cp", "secret:/tmp/f", host)
	mustHull(t, root, "cp", host, "secret:/tmp/g")
	mustHull(t, root, "logs", "secret")
	mustHull(t, root, "restart", "-t", "0", "secret")
	mustHull(t, root, "run", "--rm", "--tmpfs", "/scratch", "-v", "/anon", fx.Busybox.Ref, "sh", "-c", "echo x > /scratch/x; echo y > /anon/y")
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	mustHull(t, root, "save", "-o", archive, fx.Busybox.Ref)
	mustHull(t, root, "load", "-i", archive)
	target := strings.TrimSpace(mustHull(t, root, "image", "mount", fx.Busybox.Ref))
	t.Cleanup(func() { hull(t, root, "image", "unmount", fx.Busybox.Ref) })
	if out, err := asNobody(filepath.Join(target, "bin", "busybox"), "true").CombinedOutput(); err == nil {
		t.Errorf("uid 65534 ran a binary of the mounted image: %s", out)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == target {
			if !strings.Contains(f[5], "nosuid") || !strings.Contains(f[5], "nodev") {
				t.Errorf("image mount options %s, want nosuid,nodev", f[5])
			}
		}
	}
	if out, err := asNobody("cat", filepath.Join(root, "hull.db")).CombinedOutput(); err == nil || strings.Contains(string(out), "hunter2") {
		t.Errorf("uid 65534 read hull.db (%d bytes)", len(out))
	}
	exposed, err := perm.Exposed(root, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exposed {
		t.Error(e)
	}
}

// An older hull's wide directories and database are made private when a
// newer one opens the root.
func TestWideRootIsTightened(t *testing.T) {
	root, fx := containerEnv(t)
	reachableRoot(t, root)
	mustHull(t, root, "run", "--rm", "-v", "v1:/v", fx.Busybox.Ref, "true")
	for _, p := range []string{"volumes", "images", "containers", "hull.db"} {
		if err := os.Chmod(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustHull(t, root, "run", "--rm", "-v", "v1:/v", fx.Busybox.Ref, "true")
	exposed, err := perm.Exposed(root, filepath.Join(root, "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exposed {
		t.Error(e)
	}
}
