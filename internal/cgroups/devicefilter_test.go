package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestDeviceFilterEnforced attaches a compiled device program to a cgroup
// v2 directory (the unified hierarchy, on hybrid hosts too: the kernel
// runs v2 device programs alongside v1's device controller) and checks a
// process in it may open /dev/null and /dev/zero but not /dev/full.
func TestDeviceFilterEnforced(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	root := "/sys/fs/cgroup"
	switch DetectMode() {
	case Hybrid:
		root = "/sys/fs/cgroup/unified"
	case Unified:
	default:
		t.Skip("no cgroup v2 hierarchy")
	}
	dir := filepath.Join(root, fmt.Sprintf("hull-devtest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	i := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "r"},
	}
	if err := AttachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "read x; for d in null zero full; do if head -c1 /dev/$d >/dev/null 2>&1; then echo $d:ok; else echo $d:denied; fi; done; echo > /dev/zero && echo zero-write:ok || echo zero-write:denied")
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	_, _ = stdin.Write([]byte("go\n"))
	_ = cmd.Wait()
	got := out.String()
	// /dev/null is opened by the shell's redirection itself, so it is
	// both the allowed case and needed for the others.
	for _, want := range []string{"zero:ok", "full:denied", "zero-write:denied"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %s, got:\n%s", want, got)
		}
	}
}

func TestDeviceFilterRejectsBadRules(t *testing.T) {
	if _, err := DeviceFilter([]specs.LinuxDeviceCgroup{{Type: "x"}}); err == nil {
		t.Fatal("bad type accepted")
	}
	if _, err := DeviceFilter([]specs.LinuxDeviceCgroup{{Access: "rwx"}}); err == nil {
		t.Fatal("bad access accepted")
	}
}
