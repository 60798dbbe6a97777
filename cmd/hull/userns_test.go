package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// usernsEnv is containerEnv with the root's directories open to the
// mapped root (0711), as /run/hull and /var/lib/hull are: t.TempDir's
// are 0700, and the container's root looks its rootfs up by path.
func usernsEnv(t *testing.T) (string, string) {
	t.Helper()
	root, fx := containerEnv(t)
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o711); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(root), root, filepath.Join(root, "run")} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return root, fx.Busybox.Ref
}

func TestRunUIDMap(t *testing.T) {
	root, img := usernsEnv(t)
	// The mapping shows in the container, its root writes its rootfs
	// and /tmp, and what it writes is the mapped host id's on disk.
	out := runOut(t, root, "--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", img,
		"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; touch /made /tmp/t && ls -ln /etc/passwd /made | awk '{print $3, $4}'; id -u")
	f := strings.Fields(out)
	want := []string{"0", "100000", "65536", "0", "200000", "65536", "0", "0", "0", "0", "0"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("uid_map, gid_map, owners, id -u: got %q, want %q", f, want)
	}

	mustHull(t, root, "run", "--name", "mapped", "--uidmap", "0:100000:65536", img, "sh", "-c", "echo hi > /etc/new-file && mkdir /etc/d")
	merged := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", "mapped"))
	_ = merged
	upper := upperDirOf(t, root, "mapped")
	for _, p := range []string{"etc/new-file", "etc/d", "etc"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(upper, p), &st); err != nil {
			t.Fatalf("upper layer: %v", err)
		}
		if st.Uid != 100000 || st.Gid != 100000 {
			t.Errorf("upper layer %s: owned by %d:%d, want the mapped root 100000:100000", p, st.Uid, st.Gid)
		}
	}
	got := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.HostConfig.UsernsMode}} {{json .HostConfig.IDMappings}}", "mapped"))
	if want := `private {"UidMap":["0:100000:65536"],"GidMap":["0:100000:65536"]}`; got != want {
		t.Errorf("inspect: %s, want %s", got, want)
	}

	// A named volume is the container's root's; /etc/hosts too.
	out = runOut(t, root, "--uidmap", "0:100000:65536", "-v", "uvol:/data", img,
		"sh", "-c", "echo x > /data/f && echo 1.2.3.4 extra >> /etc/hosts && ls -ln /data/f | awk '{print $3}'")
	if out != "0" {
		t.Errorf("volume file owner in the container: %q, want 0", out)
	}
	mp := strings.TrimSpace(mustHull(t, root, "volume", "inspect", "-f", "{{.Mountpoint}}", "uvol"))
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mp, "f"), &st); err != nil || st.Uid != 0 {
		t.Errorf("volume file on the host: uid %d (%v), want 0 (an idmapped mount keeps the host's ids)", st.Uid, err)
	}

	// The host's network namespace (owned by the host's user namespace)
	// with a user namespace of the container's own: sysfs is the host's.
	if out := runOut(t, root, "--uidmap", "0:100000:65536", "--network", "host", img, "sh", "-c", "cat /proc/self/uid_map; ls /sys/class/net | grep -c lo"); strings.Join(strings.Fields(out), " ") != "0 100000 65536 1" {
		t.Errorf("--network host in a user namespace: %q", out)
	}

	// cp into its filesystem: the files are its root's (the mapped host
	// ids in the writable layer); into its volume: the host's ids.
	src := filepath.Join(t.TempDir(), "copied")
	if err := os.WriteFile(src, []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustHull(t, root, "cp", src, "mapped:/etc/copied")
	var cst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(upper, "etc", "copied"), &cst); err != nil || cst.Uid != 100000 || cst.Gid != 100000 {
		t.Errorf("cp into the container's filesystem: owned by %d:%d (%v), want its root 100000:100000", cst.Uid, cst.Gid, err)
	}

	// Stopped and started again, it has its filesystems again.
	mustHull(t, root, "run", "-d", "--name", "again", "--uidmap", "0:100000:65536", "-v", "uvol:/data", img, "sleep", "300")
	mustHull(t, root, "stop", "-t", "1", "again")
	mustHull(t, root, "start", "again")
	if out := strings.TrimSpace(mustHull(t, root, "exec", "again", "sh", "-c", "cat /data/f; touch /again && echo ok")); out != "x\nok" {
		t.Errorf("after a restart: %q, want the volume's file and a writable rootfs", out)
	}

	// Removed, they leave no mount and no directory of their mappings.
	mustHull(t, root, "rm", "-f", "again", "mapped")
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), filepath.Join(root, "run", "userns-")) {
		t.Errorf("mounts left under the mapped directories:\n%s", data)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "run", "userns-*")); len(left) > 0 {
		t.Errorf("mapped directories left: %v", left)
	}

	runFails(t, root, "invalid --uidmap", "--uidmap", "0:100000", img, "true")
	runFails(t, root, "mapped twice", "--uidmap", "0:100000:10", "--uidmap", "5:200000:10", img, "true")
	runFails(t, root, "not supported", "--userns", "auto", img, "true")
	runFails(t, root, "conflicting options", "--userns", "host", "--uidmap", "0:1:1", img, "true")
}

// upperDirOf is the writable layer of container name (from the overlay's
// mount options).
func upperDirOf(t *testing.T, root, name string) string {
	t.Helper()
	merged := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", name))
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == merged {
			for _, o := range strings.Split(f[len(f)-1], ",") {
				if v, ok := strings.CutPrefix(o, "upperdir="); ok {
					return v
				}
			}
		}
	}
	t.Fatalf("no overlay mounted on %s", merged)
	return ""
}

func TestPodUserNamespace(t *testing.T) {
	root, img := usernsEnv(t)
	mustHull(t, root, "pod", "create", "--name", "upod", "--share", "net,ipc,uts,pid", "--uidmap", "0:300000:65536")
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "upod") })
	mustHull(t, root, "run", "-d", "--name", "sleeper", "--pod", "upod", img, "sleep", "300")
	// The second container is in the pod's user namespace and in its
	// other namespaces, which that user namespace owns: its root may set
	// the shared host name (CAP_SYS_ADMIN over the UTS namespace).
	out := runOut(t, root, "--pod", "upod", "--cap-add", "SYS_ADMIN", img, "sh", "-c",
		"cat /proc/self/uid_map; readlink /proc/self/ns/user; readlink /proc/self/ns/net; hostname podhost 2>&1 && hostname; ps -o pid,comm | grep -c sleep")
	f := strings.Fields(out)
	if len(f) != 7 || strings.Join(f[:3], " ") != "0 300000 65536" || f[5] != "podhost" || f[6] != "1" {
		t.Fatalf("in the pod: %q, want the mapping 0 300000 65536, the user and net namespaces, host name podhost and the pod's sleep", f)
	}
	sleeper := strings.Fields(mustHull(t, root, "exec", "sleeper", "sh", "-c", "readlink /proc/self/ns/user; readlink /proc/self/ns/net"))
	if len(sleeper) != 2 || sleeper[0] != f[3] || sleeper[1] != f[4] {
		t.Errorf("the pod's containers are in different namespaces: %q and %q", sleeper, f[3:5])
	}
	if got := strings.TrimSpace(mustHull(t, root, "exec", "sleeper", "hostname")); got != "podhost" {
		t.Errorf("host name in the pod's other container: %q, want podhost", got)
	}
	runFails(t, root, "drop --uidmap", "--pod", "upod", "--uidmap", "0:1:1", img, "true")
}
