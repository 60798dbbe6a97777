package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What a test's own cleanups left under its root, releaseRoot ends: a
// process naming the root, a mount under it.
func TestReleaseRootEndsProcessesAndMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "run", "m")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	// A process naming the root (as its argv[0]: sleep takes no other).
	cmd := &exec.Cmd{Path: "/bin/sleep", Args: []string{root, "60"}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	go cmd.Wait()
	releaseRoot(root)
	for deadline := time.Now().Add(5 * time.Second); ProcessRunning(cmd.Process.Pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the process naming the root still runs")
		}
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), " "+dir+" ") {
		t.Fatal("the mount under the root is still there")
	}
}
