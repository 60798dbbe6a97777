package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

func TestPID1AndHostname(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("echo $$; hostname"), nil))
	if out != "1\nhull-test\n" {
		t.Fatalf("got %q, want pid 1 and hostname hull-test", out)
	}
}

func TestNetworkNamespaceOnlyLoopback(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("ls /sys/class/net"), nil))
	if strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
		t.Fatalf("interfaces %q, want only lo", out)
	}
}

func TestExitStatusPropagates(t *testing.T) {
	e := newEnv(t)
	_, _, code := e.run(newBundle(t, sh("exit 7"), nil))
	if code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
}

// TestPrivateMountView: a mount made for the container is visible inside
// and never on the host.
func TestPrivateMountView(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, sh("grep ' /data ' /proc/self/mountinfo | wc -l; sleep 100"), func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs"})
	})
	id := e.id()
	e.mustHull("create", "--bundle", b, id)
	host, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(host), b) {
		t.Fatalf("host mount table shows the container's mounts:\n%s", host)
	}
	st := e.state(id)
	if st.Status != specs.StateCreated {
		t.Fatalf("status %q after create, want created", st.Status)
	}
	mi, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mi), " /data ") {
		t.Fatalf("container mount table lacks /data:\n%s", mi)
	}
}

func TestLifecycleCreateStartStateKillDelete(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, []string{"sleep", "100"}, nil)
	id := e.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.mustHull("create", "--bundle", b, "--pid-file", pidFile, id)
	st := e.state(id)
	pid, _ := os.ReadFile(pidFile)
	if st.Status != specs.StateCreated || strconv.Itoa(st.Pid) != string(pid) || st.Bundle != b {
		t.Fatalf("after create: %+v, pid file %q", st, pid)
	}
	if _, err := e.hull("delete", id+"-nope"); err == nil {
		t.Fatal("deleting an unknown container succeeded")
	}
	e.mustHull("start", id)
	if st := e.state(id); st.Status != specs.StateRunning {
		t.Fatalf("after start: %q", st.Status)
	}
	if _, err := e.hull("start", id); err == nil {
		t.Fatal("second start succeeded")
	}
	if _, err := e.hull("delete", id); err == nil {
		t.Fatal("delete of a running container without --force succeeded")
	}
	e.mustHull("pause", id)
	if st := e.state(id); st.Status != "paused" {
		t.Fatalf("after pause: %q", st.Status)
	}
	e.mustHull("resume", id)
	e.mustHull("kill", id, "KILL")
	waitStatus(t, e, id, specs.StateStopped)
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.mustHull("list", "--format", "json")), &list); err != nil || len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("list: %v %v", list, err)
	}
	e.mustHull("delete", id)
	if _, err := e.hull("state", id); err == nil {
		t.Fatal("state after delete succeeded")
	}
}

// waitStatus polls state until it matches (the init is not our child).
func waitStatus(t *testing.T, e *env, id string, want specs.ContainerState) {
	t.Helper()
	for {
		if st := e.state(id); st.Status == want {
			return
		}
		if t.Context().Err() != nil {
			t.Fatalf("container %s never reached %s", id, want)
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
}

// TestReusedPidIsNotTheContainer: a pid whose start time differs from the
// recorded one is reported stopped and never signalled.
func TestReusedPidIsNotTheContainer(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, []string{"sleep", "100"}, nil)
	id := e.id()
	e.mustHull("create", "--bundle", b, id)
	p := filepath.Join(e.root, id, "state.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var c Container
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	real := c.PidStartTime
	c.PidStartTime++
	b2, _ := json.Marshal(&c)
	if err := os.WriteFile(p, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := e.state(id); st.Status != specs.StateStopped {
		t.Fatalf("status %q for a pid with another start time, want stopped", st.Status)
	}
	if _, err := e.hull("kill", id, "KILL"); err == nil {
		t.Fatal("kill signalled a pid that is not the container's")
	}
	if err := unix.Kill(c.Pid, 0); err != nil {
		t.Fatalf("the real init died: %v", err)
	}
	c.PidStartTime = real
	b2, _ = json.Marshal(&c)
	if err := os.WriteFile(p, b2, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryLimitAndOOMKill(t *testing.T) {
	e := newEnv(t)
	limit := int64(32 << 20)
	// ash keeps a command substitution in memory: 96 MiB does not fit.
	b := newBundle(t, sh("sleep 0.1; a=$(head -c 100663296 /dev/zero | tr '\\0' a); echo survived"), func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	})
	id := e.id()
	e.mustHull("create", "--bundle", b, id)
	var spec specs.Spec
	raw, _ := os.ReadFile(filepath.Join(b, "config.json"))
	_ = json.Unmarshal(raw, &spec)
	cg, err := cgroups.New(spec.Linux.CgroupsPath)
	if err != nil {
		t.Fatal(err)
	}
	if cg.Mode != cgroups.Unified {
		v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", spec.Linux.CgroupsPath, "memory.limit_in_bytes"))
		if err != nil || strings.TrimSpace(string(v)) != strconv.FormatInt(limit, 10) {
			t.Fatalf("memory.limit_in_bytes = %q (%v), want %d", v, err, limit)
		}
	}
	e.mustHull("start", id)
	waitStatus(t, e, id, specs.StateStopped)
	var ev struct {
		Data cgroups.Stats `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.mustHull("events", "--stats", id)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Data.Memory.OOMKills == 0 {
		t.Fatalf("no OOM kill reported: %+v", ev.Data.Memory)
	}
	if ev.Data.Memory.Limit != uint64(limit) {
		t.Fatalf("reported limit %d, want %d", ev.Data.Memory.Limit, limit)
	}
}

func TestCapabilitiesDropped(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status"), func(s *specs.Spec) {
		caps := []string{"CAP_KILL", "CAP_CHOWN"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}))
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(l, "0000000000000021") {
			t.Fatalf("capabilities not reduced to CHOWN|KILL: %q", out)
		}
	}
}

func TestNoNewPrivileges(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("grep NoNewPrivs /proc/self/status"), nil))
	if !strings.Contains(out, "1") {
		t.Fatalf("NoNewPrivs not set: %q", out)
	}
	out = e.mustRun(newBundle(t, sh("grep NoNewPrivs /proc/self/status"), func(s *specs.Spec) { s.Process.NoNewPrivileges = false }))
	if !strings.Contains(out, "0") {
		t.Fatalf("NoNewPrivs set although not asked: %q", out)
	}
}

func TestSeccompDeniedSyscallGetsEPERM(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("mkdir /tmp/x 2>&1; touch /tmp/y && echo touched"), func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		}
		s.Root.Readonly = false
	}))
	if !strings.Contains(out, "Operation not permitted") || !strings.Contains(out, "touched") {
		t.Fatalf("want mkdir denied with EPERM and touch allowed, got %q", out)
	}
}

func TestDefaultSeccompProfile(t *testing.T) {
	e := newEnv(t)
	// unshare needs CAP_SYS_ADMIN, which the default caps lack: the
	// profile refuses it, while ordinary work goes on.
	out := e.mustRun(newBundle(t, sh("mount -t tmpfs x /tmp 2>&1; echo ok"), func(s *specs.Spec) {
		s.Linux.Seccomp = seccompDefault(s.Process.Capabilities.Bounding)
	}))
	if !strings.Contains(out, "ok") || !strings.Contains(out, "denied") && !strings.Contains(out, "not permitted") {
		t.Fatalf("got %q", out)
	}
}

func TestReadonlyRootRejectsWrites(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("touch /newfile 2>&1; touch /tmp/also 2>&1; echo done"), nil))
	if strings.Count(out, "Read-only file system") != 2 {
		t.Fatalf("writes to a read-only root were not refused: %q", out)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, sh("cat /etc/secret; echo; ls /etc/secretdir | wc -l; echo x 2>&1 > /proc/sys/kernel/hostname; true"), func(s *specs.Spec) {
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc/secret", "/etc/secretdir")
	})
	if err := os.WriteFile(filepath.Join(b, "rootfs/etc/secret"), []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b, "rootfs/etc/secretdir/inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := e.mustRun(b)
	lines := strings.Split(out, "\n")
	if strings.Contains(out, "s3cret") || lines[1] != "0" || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("masked or read-only paths readable/writable: %q", out)
	}
}

func TestRlimitsAppliedAndClamped(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("ulimit -Sn; ulimit -Hn"), func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1000, Hard: 2000}}
	}))
	if out != "1000\n2000\n" {
		t.Fatalf("RLIMIT_NOFILE %q, want 1000/2000", out)
	}
	var host unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &host); err != nil {
		t.Fatal(err)
	}
	if hasCapSysResource() {
		t.Skip("this host may raise rlimits (CAP_SYS_RESOURCE): nothing to clamp")
	}
	stdout, stderr, code := e.run(newBundle(t, sh("ulimit -Hn"), func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: host.Max + 1000}}
	}))
	if code != 0 || strings.TrimSpace(stdout) != strconv.FormatUint(host.Max, 10) || !strings.Contains(stderr, "warning") {
		t.Fatalf("want hard limit clamped to %d with a warning; exit %d, stdout %q, stderr %q", host.Max, code, stdout, stderr)
	}
}

func TestUserNamespaceMapping(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("id -u; cat /proc/self/uid_map /proc/self/gid_map"), func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}))
	f := strings.Fields(out)
	if len(f) != 7 || f[0] != "0" || f[1] != "0" || f[2] != "100000" || f[3] != "65536" || f[5] != "100000" {
		t.Fatalf("user namespace mapping: %q", out)
	}
}

func TestHooksRunInOrderWithState(t *testing.T) {
	e := newEnv(t)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "log")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + logDir + "/" + name + ".json; echo " + name + " >> " + log}}
	}
	b := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/log", Type: "bind", Source: logDir, Options: []string{"rbind"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hook("prestart")},
			CreateRuntime:   []specs.Hook{hook("createRuntime")},
			CreateContainer: []specs.Hook{hook("createContainer")},
			// startContainer runs inside the container, after pivot_root.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer >> /log/log"}}},
			Poststart:      []specs.Hook{hook("poststart")},
			Poststop:       []specs.Hook{hook("poststop")},
		}
	})
	e.mustRun(b)
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\n"
	if string(got) != want {
		t.Fatalf("hook order:\n%s\nwant:\n%s", got, want)
	}
	var st specs.State
	raw, _ := os.ReadFile(filepath.Join(logDir, "createRuntime.json"))
	if err := json.Unmarshal(raw, &st); err != nil || st.Pid == 0 || st.Bundle != b || st.Status != specs.StateCreating {
		t.Fatalf("createRuntime state on stdin: %q (%v)", raw, err)
	}
}

func TestHookTimeoutFailsCreate(t *testing.T) {
	e := newEnv(t)
	one := 1
	b := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &one}}}
	})
	id := e.id()
	out, err := e.hull("create", "--bundle", b, id)
	if err == nil || !strings.Contains(out, "timed out") {
		t.Fatalf("create with a hanging hook: %v %q", err, out)
	}
}

// consoleSocket listens on a unix socket and returns its path and a
// channel that yields the pty master the runtime sends to it.
func consoleSocket(t *testing.T) (string, <-chan *os.File) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 1)
	go func() {
		defer close(got)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f, _ := c.(*net.UnixConn).File()
		defer f.Close()
		if m, err := RecvConsole(f); err == nil {
			got <- m
		}
	}()
	return sock, got
}

// readUntil reads from the pty master until marker appears or it closes.
func readUntil(f *os.File, marker string) string {
	buf := make([]byte, 4096)
	var out string
	for !strings.Contains(out, marker) {
		n, err := f.Read(buf)
		if err != nil {
			break
		}
		out += string(buf[:n])
	}
	return out
}

func TestTerminalThroughConsoleSocket(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, sh("tty; echo done"), func(s *specs.Spec) { s.Process.Terminal = true })
	sock, got := consoleSocket(t)
	id := e.id()
	e.mustHull("create", "--bundle", b, "--console-socket", sock, id)
	m := <-got
	if m == nil {
		t.Fatal("no pty master received")
	}
	defer m.Close()
	if !strings.HasPrefix(m.Name(), "/dev/pts/") {
		t.Fatalf("console name %q", m.Name())
	}
	e.mustHull("start", id)
	if out := readUntil(m, "done"); !strings.Contains(out, "/dev/pts/0") {
		t.Fatalf("process stdio is not the pty: %q", out)
	}
}

func TestExecWithTerminal(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	e.mustHull("run", "--detach", "--bundle", newBundle(t, []string{"sleep", "100"}, nil), id)
	sock, got := consoleSocket(t)
	e.mustHull("exec", "--detach", "--tty", "--console-socket", sock, id, "sh", "-c", "tty; echo $$; echo done")
	m := <-got
	if m == nil {
		t.Fatal("no pty master received")
	}
	defer m.Close()
	out := readUntil(m, "done")
	if !strings.Contains(out, "/dev/pts/") || strings.Contains(out, "not a tty") {
		t.Fatalf("exec'd process is not on a pty: %q", out)
	}
}

func TestExecJoinsEveryNamespace(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, []string{"sleep", "100"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	})
	id := e.id()
	e.mustHull("create", "--bundle", b, id)
	e.mustHull("start", id)
	pid := e.state(id).Pid
	names := []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"}
	script := ""
	for _, n := range names {
		script += "readlink /proc/self/ns/" + n + ";"
	}
	out := e.mustHull("exec", id, "sh", "-c", script+"hostname")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(names)+1 || lines[len(names)] != "hull-test" {
		t.Fatalf("exec output %q", out)
	}
	for i, n := range names {
		want, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if lines[i] != want {
			t.Errorf("exec %s namespace %s, container's %s", n, lines[i], want)
		}
	}
	procs := e.mustHull("ps", "--format", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(procs), &pids); err != nil || len(pids) != 1 || pids[0] != pid {
		t.Fatalf("ps after exec exited: %q", procs)
	}
}

// initExe returns what /proc/<init>/exe of a created container points to.
func initExe(t *testing.T, e *env, b string) string {
	t.Helper()
	id := e.id()
	e.mustHull("create", "--bundle", b, id)
	exe, err := os.Readlink("/proc/" + strconv.Itoa(e.state(id).Pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestInitRunsFromSealedMemfd: whenever something in the container could
// reach the init while it still runs hull (a shared or joined pid
// namespace, container code in hooks), the init is a sealed memfd copy, so
// nothing can write to the host's hull binary through /proc/<pid>/exe
// (CVE-2019-5736). A fresh pid namespace with no such hooks runs the host
// binary directly (nobody is there to see it), which is much faster.
func TestInitRunsFromSealedMemfd(t *testing.T) {
	e := newEnv(t)
	noPidNS := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.PIDNamespace })
	})
	withHook := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
	})
	for name, b := range map[string]string{"shared pid namespace": noPidNS, "startContainer hook": withHook} {
		id := e.id()
		e.mustHull("create", "--bundle", b, id)
		pid := e.state(id).Pid
		exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(exe, "/memfd:hull-init") {
			t.Fatalf("%s: init runs from %q, not a sealed memfd", name, exe)
		}
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/exe")
		if err != nil {
			t.Fatal(err)
		}
		seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
		if seals&want != want {
			t.Fatalf("%s: memfd seals %#x, want %#x", name, seals, want)
		}
		if w, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/exe", os.O_WRONLY, 0); err == nil {
			w.Close()
			t.Fatalf("%s: the init's binary is writable", name)
		}
	}
	if exe := initExe(t, e, newBundle(t, []string{"true"}, nil)); strings.HasPrefix(exe, "/memfd:") {
		t.Fatalf("fresh pid namespace without hooks: init runs from %q, want the binary itself", exe)
	}
}

// The runtime starts a container's first process from hull-init (HULL_INIT
// or next to hull) when it is there, and from hull itself otherwise; both
// set up the same container.
func TestInitBinaryAndFallback(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, []string{"sh", "-c", "echo $$"}, nil)
	self, _ := filepath.EvalSymlinks(hullBin)
	if p := os.Getenv("HULL_INIT"); p != "" {
		want, _ := filepath.EvalSymlinks(p)
		if exe := initExe(t, e, newBundle(t, []string{"true"}, nil)); exe != want {
			t.Errorf("with HULL_INIT=%s the init runs from %q", p, exe)
		}
		if out := e.mustRun(b); out != "1\n" {
			t.Errorf("through hull-init: %q", out)
		}
	}
	t.Setenv("HULL_INIT", filepath.Join(t.TempDir(), "missing"))
	if exe := initExe(t, e, newBundle(t, []string{"true"}, nil)); exe != self {
		t.Errorf("without hull-init the init runs from %q, want %s", exe, self)
	}
	if out := e.mustRun(b); out != "1\n" {
		t.Errorf("through hull itself: %q", out)
	}
}

// TestNoFdLeak: an fd the caller leaks into hull does not reach the
// container; --preserve-fds passes exactly the ones asked for.
func TestNoFdLeak(t *testing.T) {
	e := newEnv(t)
	leak, err := os.Open("/etc/hostname")
	if err != nil {
		leak, _ = os.Open("/")
	}
	defer leak.Close()
	for _, tc := range []struct {
		preserve string
		want     string
	}{{"0", "0 1 2"}, {"1", "0 1 2 3"}} {
		b := newBundle(t, sh("cd /proc/self/fd && echo *"), nil)
		cmd := exec.Command(hullBin, "oci", "--root", e.root, "run", "--preserve-fds", tc.preserve, "--bundle", b, e.id())
		cmd.ExtraFiles = []*os.File{leak}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		// The shell's glob itself opens one more fd for the directory.
		got := strings.Fields(string(out))
		if strings.Join(got[:len(got)-1], " ") != tc.want {
			t.Errorf("preserve-fds %s: container fds %q, want %s plus the glob's", tc.preserve, out, tc.want)
		}
	}
}

// TestSymlinkedMountDestinationStaysInRootfs: a symlink in the image
// pointing at a host path cannot redirect a mount out of the rootfs
// (CVE-2019-16884 class); and nothing but procfs may cover /proc paths.
func TestSymlinkedMountDestinationStaysInRootfs(t *testing.T) {
	e := newEnv(t)
	hostDir := t.TempDir()
	b := newBundle(t, sh("grep -c ' "+hostDir+" ' /proc/self/mountinfo"), func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"})
	})
	if err := os.Symlink(hostDir, filepath.Join(b, "rootfs/evil")); err != nil {
		t.Fatal(err)
	}
	out := e.mustRun(b)
	if strings.TrimSpace(out) != "1" {
		t.Fatalf("the mount through /evil -> %s did not land inside the rootfs: %q", hostDir, out)
	}
	if _, err := os.Stat(filepath.Join(b, "rootfs", hostDir)); err != nil {
		t.Fatalf("mount point not created inside the rootfs: %v", err)
	}
	b2 := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/self/attr", Type: "bind", Source: "/tmp", Options: []string{"bind"}})
	})
	_, stderr, code := e.run(b2)
	if code == 0 || !strings.Contains(stderr, "/proc") {
		t.Fatalf("bind over /proc/self/attr was accepted (exit %d): %s", code, stderr)
	}
}

// TestCwdMustBeInsideContainer: a missing cwd fails create, as does one
// that is not a directory.
func TestCwdMustBeInsideContainer(t *testing.T) {
	e := newEnv(t)
	_, stderr, code := e.run(newBundle(t, []string{"true"}, func(s *specs.Spec) { s.Process.Cwd = "/nonexistent" }))
	if code == 0 || !strings.Contains(stderr, "cwd") {
		t.Fatalf("missing cwd accepted (exit %d): %s", code, stderr)
	}
	out := e.mustRun(newBundle(t, []string{"pwd"}, func(s *specs.Spec) { s.Process.Cwd = "/tmp/../etc" }))
	if out != "/etc\n" {
		t.Fatalf("cwd %q", out)
	}
}

// TestCgroupNamespaceRootedAtContainer: with a cgroup namespace the
// process sees its own cgroup as the root, and /sys/fs/cgroup shows the
// container's cgroups, with the memory limit in place.
func TestCgroupNamespaceRootedAtContainer(t *testing.T) {
	e := newEnv(t)
	limit := int64(64 << 20)
	out := e.mustRun(newBundle(t, sh("cat /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; true"), func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasSuffix(l, ":/") {
			t.Fatalf("cgroup not rooted at the container: %q in\n%s", l, out)
		}
	}
	if lines[len(lines)-1] != strconv.FormatInt(limit, 10) {
		t.Fatalf("memory limit seen inside: %q", lines[len(lines)-1])
	}
}

func TestSpecAndFeaturesCommands(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(hullBin, "oci", "spec", "--bundle", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spec: %v: %s", err, out)
	}
	s, err := LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "rootfs" || len(s.Linux.Namespaces) == 0 || len(s.Linux.MaskedPaths) == 0 {
		t.Fatalf("default spec: %+v", s)
	}
	if out, err := exec.Command(hullBin, "oci", "spec", "--bundle", dir).CombinedOutput(); err == nil {
		t.Fatalf("spec overwrote an existing config.json: %s", out)
	}
	out, err := exec.Command(hullBin, "oci", "features").Output()
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Hooks []string `json:"hooks"`
		Linux struct {
			Namespaces []string `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(out, &f); err != nil || len(f.Hooks) != 6 || !slices.Contains(f.Linux.Namespaces, "time") {
		t.Fatalf("features: %v %s", err, out)
	}
}

func TestSysctlsOnlyInOwnNamespaces(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun(newBundle(t, sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname"), func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Domainname = "example.test"
		s.Linux.ReadonlyPaths = nil
	}))
	if out != "1\nexample.test\n" {
		t.Fatalf("sysctl/domainname inside: %q", out)
	}
	// kernel.* outside the ipc/uts sets is host-wide: refused.
	_, stderr, code := e.run(newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"kernel.panic": "1"}
	}))
	if code == 0 || !strings.Contains(stderr, "kernel.panic") {
		t.Fatalf("host-wide sysctl accepted (exit %d): %s", code, stderr)
	}
}

func TestInvalidSpecRejectedAtCreate(t *testing.T) {
	e := newEnv(t)
	for name, mutate := range map[string]func(*specs.Spec){
		"capability": func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NOPE")
		},
		"rlimit": func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOPE", Soft: 1, Hard: 1}} },
		"namespace": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "nope"})
		},
	} {
		id := e.id()
		out, err := e.hull("create", "--bundle", newBundle(t, []string{"true"}, mutate), id)
		if err == nil || !strings.Contains(strings.ToLower(out), "nope") {
			t.Errorf("%s: create accepted an unknown value (%v): %s", name, err, out)
		}
		if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
			t.Errorf("%s: failed create left state behind", name)
		}
	}
}

func TestKillAllSignalsEveryProcess(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, sh("sleep 100 & sleep 100 & wait"), func(s *specs.Spec) {
		// Without its own pid namespace, killing the init would leave
		// the sleeps running: only --all reaches them.
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.PIDNamespace })
	})
	id := e.id()
	e.mustHull("run", "--detach", "--bundle", b, id)
	for {
		var pids []int
		_ = json.Unmarshal([]byte(e.mustHull("ps", "--format", "json", id)), &pids)
		if len(pids) == 3 {
			break
		}
		if t.Context().Err() != nil {
			t.Fatal("processes never appeared")
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil)
	}
	e.mustHull("kill", "--all", id, "KILL")
	waitStatus(t, e, id, specs.StateStopped)
	for {
		var pids []int
		_ = json.Unmarshal([]byte(e.mustHull("ps", "--format", "json", id)), &pids)
		if len(pids) == 0 {
			break
		}
		if t.Context().Err() != nil {
			t.Fatalf("processes left after kill --all: %v", pids)
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil)
	}
}

// TestJoinNamespacesByPathAndTimeNamespace: a second container joins the
// first one's network and UTS namespaces by path, and gets a time
// namespace of its own with a boot-time offset.
func TestJoinNamespacesByPathAndTimeNamespace(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("no time namespaces on this kernel")
	}
	e := newEnv(t)
	first := e.id()
	e.mustHull("run", "--detach", "--bundle", newBundle(t, []string{"sleep", "100"}, nil), first)
	pid := strconv.Itoa(e.state(first).Pid)
	b := newBundle(t, sh("readlink /proc/self/ns/net; hostname; cut -d. -f1 /proc/uptime"), func(s *specs.Spec) {
		s.Hostname = ""
		for i, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.NetworkNamespace:
				s.Linux.Namespaces[i].Path = "/proc/" + pid + "/ns/net"
			case specs.UTSNamespace:
				s.Linux.Namespaces[i].Path = "/proc/" + pid + "/ns/uts"
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
	})
	out := strings.Fields(e.mustRun(b))
	want, err := os.Readlink("/proc/" + pid + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0] != want || out[1] != "hull-test" {
		t.Fatalf("joined namespaces: got %q, want net %s and hostname hull-test", out, want)
	}
	up, _ := strconv.Atoi(out[2])
	if up < 1000000 {
		t.Fatalf("uptime %d inside, want the 1000000 s boot-time offset applied", up)
	}
}

// A create killed half-way (here while its createRuntime hook runs, after
// the cgroups exist and the init waits) leaves a state directory without
// state.json. The next create of that id reclaims it instead of failing
// with "already exists" forever; while a create runs, its directory is
// left alone.
func TestInterruptedCreateIsReclaimed(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	marker := filepath.Join(t.TempDir(), "hook-pid")
	b := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo $$ > " + marker + "; exec sleep 60"}}}}
	})
	cmd := exec.Command(hullBin, "oci", "--root", e.root, "create", "--bundle", b, id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var hook int
	for hook == 0 && t.Context().Err() == nil {
		b, _ := os.ReadFile(marker)
		hook, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil)
	}
	t.Cleanup(func() { unix.Kill(hook, unix.SIGKILL) })

	// While that create runs, its id is taken and its directory kept.
	if out, err := e.hull("create", "--bundle", b, id); err == nil || !strings.Contains(out, "already exists") {
		t.Fatalf("second create while the first runs: %v %s", err, out)
	}
	if out, err := e.hull("delete", "--force", id); err == nil || !strings.Contains(out, "being created") {
		t.Fatalf("delete while create runs: %v %s", err, out)
	}

	cmd.Process.Kill()
	cmd.Wait()
	unix.Kill(hook, unix.SIGKILL)
	var rec Container
	raw, err := os.ReadFile(filepath.Join(e.root, id, creatingFile))
	if err != nil || json.Unmarshal(raw, &rec) != nil {
		t.Fatalf("the killed create left no %s: %v", creatingFile, err)
	}
	cg, err := cgroups.Load(rec.CgroupPath, rec.CgroupCreated)
	if err != nil || !cg.Exists() {
		t.Fatalf("the killed create's cgroup %s should still exist: %v", rec.CgroupPath, err)
	}

	b2 := newBundle(t, []string{"sleep", "100"}, nil)
	out := e.mustHull("create", "--bundle", b2, id)
	if !strings.Contains(out, "interrupted create") {
		t.Errorf("reclaiming says nothing: %q", out)
	}
	if st := e.state(id); st.Status != specs.StateCreated {
		t.Fatalf("after reclaiming, create gave %q", st.Status)
	}
	e.mustHull("delete", "--force", id)
	if cg.Exists() {
		t.Errorf("cgroup %s is left after delete", rec.CgroupPath)
	}
}

// An init killed while create waits for it (here during its
// createContainer hook) fails the create at once with an error; it used
// to wait forever, holding the other end of its own sync socket.
func TestInitKilledDuringCreateFailsCreate(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	dir := t.TempDir()
	b := newBundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + dir + "/state.tmp; mv " + dir + "/state.tmp " + dir + "/state.json; exec sleep 60"}}}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hullBin, "oci", "--root", e.root, "create", "--bundle", b, id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var st specs.State
	for st.Pid == 0 && ctx.Err() == nil {
		raw, _ := os.ReadFile(filepath.Join(dir, "state.json"))
		json.Unmarshal(raw, &st)
		time.Sleep(5 * time.Millisecond)
	}
	if st.Pid <= 1 || st.Pid == os.Getpid() {
		t.Fatalf("the hook was given pid %d, not the init's pid on the host", st.Pid)
	}
	if err := unix.Kill(st.Pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill init %d: %v", st.Pid, err)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatal("create still waits for an init that was killed")
	}
	if err == nil || !strings.Contains(out.String(), "init exited") {
		t.Fatalf("create after its init was killed: %v\n%s", err, out.String())
	}
}

// The process runs with exactly the spec's uid, gid and additional gids
// (real, effective and saved alike).
func TestUserAndGroups(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status"), func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 7}}
	})
	out := e.mustRun(b)
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.Join(strings.Fields(v), " ")
	}
	if fields["Uid"] != "1000 1000 1000 1000" || fields["Gid"] != "1001 1001 1001 1001" || fields["Groups"] != "5 7" {
		t.Errorf("credentials in the container: %q", out)
	}
}

// The container's first process is born in (or joins before it forks)
// every hierarchy's container cgroup, v1 and cgroup2 alike, with and
// without a user namespace.
func TestInitInEveryCgroup(t *testing.T) {
	e := newEnv(t)
	for _, userns := range []bool{false, true} {
		id := e.id()
		b := newBundle(t, []string{"true"}, func(s *specs.Spec) {
			if userns {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			}
		})
		spec, err := LoadSpec(b)
		if err != nil {
			t.Fatal(err)
		}
		want := cgroups.ContainerPath(spec.Linux.CgroupsPath, id)
		e.mustHull("create", "--bundle", b, id)
		pid := e.state(id).Pid
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[2] != want {
				t.Errorf("userns=%v: init %d is in %q, not the container's cgroup", userns, pid, line)
			}
		}
		e.mustHull("delete", "--force", id)
	}
}

// Two forced deletes at once (a user's and a monitor's) both succeed, and
// neither mistakes the other's half-removed directory for an interrupted
// create (TestDeleteNeverLeavesAHalfRemovedState checks why).
func TestConcurrentDeletes(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		id := e.id()
		e.mustHull("create", "--bundle", newBundle(t, []string{"sleep", "100"}, nil), id)
		outs := make(chan string, 2)
		for range 2 {
			go func() {
				out, err := e.hull("delete", "--force", id)
				if err != nil {
					out += err.Error()
				}
				outs <- out
			}()
		}
		for range 2 {
			if out := <-outs; out != "" {
				t.Errorf("concurrent delete: %q", out)
			}
		}
	}
}

// A delete moves the state directory away before emptying it, so no other
// command ever sees the container's directory without its state.json (an
// interrupted create, to them) — not even when the removal fails half-way,
// as an immutable file here makes it.
func TestDeleteNeverLeavesAHalfRemovedState(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	e.mustHull("create", "--bundle", newBundle(t, []string{"sleep", "100"}, nil), id)
	pinned := filepath.Join(e.root, id, "pinned")
	if err := os.WriteFile(pinned, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := setImmutable(pinned, true); err != nil {
		t.Skipf("cannot make a file immutable here: %v", err)
	}
	t.Cleanup(func() {
		matches, _ := filepath.Glob(filepath.Join(e.root, "."+id+".deleting-*", "pinned"))
		for _, m := range append(matches, pinned) {
			setImmutable(m, false)
			os.RemoveAll(filepath.Dir(m))
		}
	})
	if out, err := e.hull("delete", "--force", id); err == nil {
		t.Fatalf("delete with an immutable file in the state succeeded: %s", out)
	}
	if _, err := os.Lstat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
		t.Fatalf("the half-removed state is still at the container's directory: %v", err)
	}
	if out, _ := e.hull("state", id); !strings.Contains(out, "does not exist") {
		t.Errorf("state after the failed delete: %s", out)
	}
}

// setImmutable sets or clears a file's immutable attribute (chattr +i).
func setImmutable(path string, on bool) error {
	const immutable = 0x00000010 // FS_IMMUTABLE_FL
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= immutable
	} else {
		flags &^= immutable
	}
	return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags))
}
