package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestContainerPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/abc",
		"/a/b":                  "/a/b",
		"rel/x":                 "/rel/x",
		"machine.slice:hull:ab": "/machine.slice/hull-ab.scope",
		"/../../etc":            "/etc",
	} {
		if got := ContainerPath(in, "abc"); got != want {
			t.Errorf("ContainerPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnitConversions(t *testing.T) {
	if SharesToWeight(1024) != 39 || SharesToWeight(2) != 1 || SharesToWeight(262144) != 10000 {
		t.Fatalf("shares->weight: %d %d %d", SharesToWeight(1024), SharesToWeight(2), SharesToWeight(262144))
	}
	if BlkioWeightToIOWeight(10) != 1 || BlkioWeightToIOWeight(1000) != 10000 {
		t.Fatal("blkio weight conversion")
	}
	if r := DeviceRule(specs.LinuxDeviceCgroup{Access: "rwm"}); r != "a *:* rwm" {
		t.Fatalf("deny-all rule %q", r)
	}
	maj, min := int64(1), int64(3)
	if r := DeviceRule(specs.LinuxDeviceCgroup{Type: "c", Major: &maj, Minor: &min, Access: "rw"}); r != "c 1:3 rw" {
		t.Fatalf("rule %q", r)
	}
}

// TestManagerLifecycle creates a real cgroup, limits it, moves a process
// in, reads stats, freezes and thaws it, kills it and removes the cgroup,
// leaving nothing behind (also when the test fails).
func TestManagerLifecycle(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if DetectMode() == Unavailable {
		t.Skip("no cgroups")
	}
	path := fmt.Sprintf("/hull-cgtest/%d", os.Getpid())
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Thaw()
		_ = m.Signal(unix.SIGKILL)
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
		for _, mt := range m.Mounts() {
			if _, err := os.Stat(mt.Dir); err == nil {
				t.Errorf("%s left behind", mt.Dir)
			}
		}
	})
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	limit, pids, shares, quota, period := int64(64<<20), int64(50), uint64(512), int64(50000), uint64(100000)
	if err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit, Reservation: &limit},
		Pids:   &specs.LinuxPids{Limit: &pids},
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period, Cpus: "0"},
	}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, err := m.Procs()
	if err != nil || !slices.Contains(procs, cmd.Process.Pid) {
		t.Fatalf("procs %v (%v), want %d", procs, err, cmd.Process.Pid)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Limit != uint64(limit) || st.Pids.Current != 1 || st.Pids.Limit != uint64(pids) {
		t.Fatalf("stats %+v", st)
	}
	// Memory reads the memory counters alone, the same as Stats.
	if mem, err := m.Memory(); err != nil || mem.Limit != st.Memory.Limit || mem.OOMKills != st.Memory.OOMKills {
		t.Fatalf("Memory() = %+v, %v; Stats().Memory = %+v", mem, err, st.Memory)
	}
	if m.Mode != Unified {
		b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", path, "cpu.cfs_quota_us"))
		if strings.TrimSpace(string(b)) != "50000" {
			t.Fatalf("cpu.cfs_quota_us = %q", b)
		}
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if !m.Frozen() {
		t.Fatal("not frozen after Freeze")
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if m.Frozen() {
		t.Fatal("frozen after Thaw")
	}
	if err := m.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// TestDestroyKeepsSharedParent: removing one container leaves a parent
// cgroup that another container still uses.
func TestDestroyKeepsSharedParent(t *testing.T) {
	if os.Getuid() != 0 || DetectMode() == Unavailable {
		t.Skip("needs root and cgroups")
	}
	parent := fmt.Sprintf("/hull-cgtest-shared-%d", os.Getpid())
	a, err := New(parent + "/a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(parent + "/b")
	t.Cleanup(func() { _ = b.Destroy(); _ = a.Destroy() })
	if err := a.Create(); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	if !b.Exists() {
		t.Fatal("destroying a removed its sibling's parent")
	}
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	// a made the parent and left it to b, which did not make it: it
	// stays (empty) rather than being removed by someone who did not
	// create it. The test made it, so the test removes it.
	for _, mt := range b.Mounts() {
		if err := unix.Rmdir(filepath.Dir(mt.Dir)); err != nil {
			t.Errorf("remove parent %s: %v", filepath.Dir(mt.Dir), err)
		}
	}
}

// TestCreateFillsAnEmptyCpuset: a v1 cpuset parent another process made
// and has not filled yet is filled before the leaf inherits from it, so
// the leaf accepts processes.
func TestCreateFillsAnEmptyCpuset(t *testing.T) {
	m, cpuset := unfilledCpusetParent(t, "cpuset")
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cpuset, "leaf", "cpuset.cpus"))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatalf("leaf cpuset.cpus %q, %v: want the parent's CPUs", b, err)
	}
}

// TestOOMKillNotified: a process exceeding the memory limit is killed and
// the kill reaches the caller through NotifyOOM and Stats.
func TestOOMKillNotified(t *testing.T) {
	if os.Getuid() != 0 || DetectMode() == Unavailable {
		t.Skip("needs root and cgroups")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs busybox")
	}
	m, err := New(fmt.Sprintf("/hull-cgtest-oom/%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Signal(unix.SIGKILL)
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	limit := int64(16 << 20)
	swap := limit
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	if m.Mode != Unified {
		r.Memory.Swap = &swap
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	n, err := m.NotifyOOM()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// The shell waits for a line so it is in the cgroup before it
	// allocates 64 MiB.
	cmd := exec.Command("/bin/busybox", "sh", "-c", "read x; a=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-n.C; !ok {
		t.Fatal("no OOM event notified")
	}
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the shell was not OOM-killed: %v", cmd.ProcessState)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.OOMKills == 0 {
		t.Fatalf("stats report no OOM kill: %+v", st.Memory)
	}
	if n, err := m.OOMKills(); err != nil || n != st.Memory.OOMKills {
		t.Fatalf("OOMKills %d, %v; Stats says %d", n, err, st.Memory.OOMKills)
	}
}

// Block I/O is summed over devices from v1's throttle counters and v2's
// io.stat, as docker reads them.
func TestBlockIOCounters(t *testing.T) {
	dir := t.TempDir()
	v1 := "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n8:0 Total 12288\n8:16 Read 100\n8:16 Write 0\nTotal 12388\n"
	if err := os.WriteFile(filepath.Join(dir, "blkio.throttle.io_service_bytes_recursive"), []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ioServiceBytesV1(dir); got != (BlockIOStats{Read: 4196, Write: 8192}) {
		t.Errorf("v1: %+v", got)
	}
	v2 := "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"
	path := filepath.Join(dir, "io.stat")
	if err := os.WriteFile(path, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ioStatV2(path); got != (BlockIOStats{Read: 1025, Write: 2048}) {
		t.Errorf("v2: %+v", got)
	}
	if got := ioStatV2(filepath.Join(dir, "missing")); got != (BlockIOStats{}) {
		t.Errorf("missing io.stat: %+v", got)
	}
}

// TestDestroyRemovesNestedCgroups: cgroups a container made below its own
// (with a cgroup namespace, or a systemd inside) go with it.
func TestDestroyRemovesNestedCgroups(t *testing.T) {
	if os.Getuid() != 0 || DetectMode() == Unavailable {
		t.Skip("needs root and cgroups")
	}
	path := fmt.Sprintf("/hull-cgtest-nested-%d", os.Getpid())
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, mt := range m.Mounts() {
			os.Remove(filepath.Join(mt.Dir, "inner", "deeper"))
			os.Remove(filepath.Join(mt.Dir, "inner"))
			os.Remove(mt.Dir)
		}
	})
	for _, mt := range m.Mounts() {
		if err := os.MkdirAll(filepath.Join(mt.Dir, "inner", "deeper"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, mt := range m.Mounts() {
		if _, err := os.Stat(mt.Dir); err == nil {
			t.Errorf("%s left behind", mt.Dir)
		}
	}
}
