package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// volume create -o: the local driver's tmpfs and bind volumes, as docker.
func TestVolumeCreateOptions(t *testing.T) {
	root, fx := containerEnv(t)
	t.Cleanup(func() { // never leave a mount under the test's root
		out, _, _ := hull(t, root, "volume", "ls", "-q")
		for _, v := range strings.Fields(out) {
			hull(t, root, "volume", "rm", "-f", v)
		}
	})

	// A tmpfs of 1 MiB, shared by the containers that use it.
	if out := mustHull(t, root, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,mode=1777", "scratch"); out != "scratch\n" {
		t.Fatalf("volume create: %q", out)
	}
	if out := mustHull(t, root, "volume", "inspect", "-f", "{{.Options.type}} {{.Options.device}} {{.Options.o}}", "scratch"); out != "tmpfs tmpfs size=1m,mode=1777\n" {
		t.Errorf("volume inspect Options: %q", out)
	}
	out := mustHull(t, root, "run", "--rm", "-v", "scratch:/data", fx.Busybox.Ref, "sh", "-c",
		"grep ' /data ' /proc/mounts | cut -d' ' -f3; echo kept > /data/f; dd if=/dev/zero of=/data/big bs=1k count=2048 2>&1 | grep -o 'No space left'")
	if out != "tmpfs\nNo space left\n" {
		t.Errorf("container on the tmpfs volume: %q", out)
	}
	if out := mustHull(t, root, "run", "--rm", "-v", "scratch:/data", fx.Busybox.Ref, "cat", "/data/f"); out != "kept\n" {
		t.Errorf("the next container sees %q", out)
	}
	mp := strings.TrimSpace(mustHull(t, root, "volume", "inspect", "-f", "{{.Mountpoint}}", "scratch"))
	mustHull(t, root, "volume", "rm", "scratch")
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), mp) {
		t.Errorf("volume rm left its tmpfs mounted at %s", mp)
	}

	// A bind of a host directory: the containers use the directory
	// itself, and removing the volume leaves it alone.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("from the host\n"), 0o644)
	mustHull(t, root, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+host, "hostdir")
	if out := mustHull(t, root, "run", "--rm", "-v", "hostdir:/data", fx.Busybox.Ref, "sh", "-c", "cat /data/hello; echo back > /data/new"); out != "from the host\n" {
		t.Errorf("container on the bind volume: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(b) != "back\n" {
		t.Errorf("the container's write is not in the host directory: %q %v", b, err)
	}
	mustHull(t, root, "volume", "rm", "hostdir")
	if _, err := os.Stat(filepath.Join(host, "hello")); err != nil {
		t.Errorf("volume rm touched the bind's host directory: %v", err)
	}

	// Bad options say what is wrong, and make no volume.
	for _, c := range []struct {
		opts []string
		want string
	}{
		{[]string{"-o", "type=tmpfs"}, `missing required option: "device"`},
		{[]string{"-o", "device=tmpfs"}, `missing required option: "type"`},
		{[]string{"-o", "color=red"}, `invalid option: "color"`},
		{[]string{"-o", "type=none", "-o", "device=" + host}, "needs o=bind"},
		{[]string{"-o", "type=none", "-o", "o=bind", "-o", "device=/no/such/dir"}, "not a directory"},
		{[]string{"-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=lots"}, "mount tmpfs"},
	} {
		_, _, err := hull(t, root, append(append([]string{"volume", "create"}, c.opts...), "bad")...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("volume create %v: %v, want %q", c.opts, err, c.want)
		}
	}
	if out := mustHull(t, root, "volume", "ls", "-q"); out != "" {
		t.Errorf("a refused volume was made: %q", out)
	}
}
