package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

// startEarly starts an early init for id with the cgroups path of bundle's
// spec and its output to out.
func startEarly(t *testing.T, r *Runtime, id, bundle string, out *os.File, netns bool) *Early {
	t.Helper()
	spec, err := LoadSpec(bundle)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.StartEarly(id, EarlyOptions{CgroupsPath: spec.Linux.CgroupsPath, Stdout: out, Stderr: out, NewNetNS: netns})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runTaking creates id from bundle (with spec, if not nil) with early,
// runs it to its end and returns its pid, exit status and output.
func runTaking(t *testing.T, r *Runtime, id, bundle string, spec *specs.Spec, early *Early, out *os.File) (int, unix.WaitStatus, string) {
	t.Helper()
	c, err := r.Create(id, CreateOptions{Bundle: bundle, Prepared: &Prepared{Spec: spec, Early: early}, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := r.Start(id); err != nil {
		t.Fatalf("start: %v", err)
	}
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(c.Pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	if err := r.Delete(id, true); err != nil {
		t.Errorf("delete: %v", err)
	}
	b, _ := os.ReadFile(out.Name())
	return c.Pid, ws, string(b)
}

// A container takes the process started for it early: the same pid runs
// the program, with the spec's cgroups and namespaces; a spec the early
// process does not suit (a memory limit) gets a process of its own, and
// the early one and all it made are gone.
func TestCreateTakesEarlyInit(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	script := sh(`echo "pid $$"; echo "host $(hostname)"; readlink /proc/self/ns/net`)
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		netns  bool
		takes  bool
	}{
		{"plain", nil, false, true},
		{"network namespace made meanwhile", nil, true, true},
		{"memory limit", func(s *specs.Spec) {
			limit := int64(64 << 20)
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, script, tc.mutate)
			out, err := os.Create(filepath.Join(b, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			id := e.id()
			early := startEarly(t, r, id, b, out, tc.netns)
			earlyPid := early.sp.pid
			pid, ws, got := runTaking(t, r, id, b, nil, early, out)
			if !ws.Exited() || ws.ExitStatus() != 0 || !strings.Contains(got, "pid 1\n") || !strings.Contains(got, "host hull-test\n") {
				t.Fatalf("container ended with %v:\n%s", ws, got)
			}
			if took := pid == earlyPid; took != tc.takes {
				t.Fatalf("took the early process: %v, want %v", took, tc.takes)
			}
			if host, _ := os.Readlink("/proc/self/ns/net"); strings.Contains(got, host) {
				t.Errorf("the container is in the host's network namespace %s:\n%s", host, got)
			}
			if !tc.takes {
				if err := unix.Kill(earlyPid, 0); err == nil {
					t.Errorf("the early process %d was not ended", earlyPid)
				}
			}
		})
	}
}

// An early process no container takes goes with everything it made.
func TestEarlyCloseLeavesNothing(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root}
	b := newBundle(t, []string{"true"}, nil)
	id := e.id()
	early := startEarly(t, r, id, b, nil, false)
	pid := early.sp.pid
	spec, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := cgroups.New(cgroups.ContainerPath(spec.Linux.CgroupsPath, id))
	if err != nil {
		t.Fatal(err)
	}
	if !cg.Exists() {
		t.Fatal("the early process has no cgroup")
	}
	early.Close()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("process %d is still there", pid)
	}
	if cg.Exists() {
		t.Errorf("cgroup %s is still there", cg.Path)
	}
	if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
		t.Errorf("state directory of %s is still there", id)
	}
}

// An early process whose start fails after its cgroups were made (the
// pod's namespace it joins is gone: a pod stopped while its spare started
// the process) returns the error and leaves nothing: no state directory,
// no cgroup. It used to close the nil Early its failure returned, and the
// spare monitor died of the nil dereference, leaving both.
func TestEarlyStartFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root}
	id := e.id()
	gone := filepath.Join(t.TempDir(), "net") // a pinned namespace, unpinned
	cgPath := "/hull-test-" + id
	cg, err := cgroups.New(cgroups.ContainerPath(cgPath, id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cg.Kill(); cg.Destroy() }) // even if StartEarly panics
	early, err := r.StartEarly(id, EarlyOptions{CgroupsPath: cgPath, Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: gone},
	}})
	if err == nil {
		early.Close()
		t.Fatal("StartEarly joined a namespace that does not exist")
	}
	t.Log(err)
	if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
		t.Errorf("state directory of %s is still there", id)
	}
	if cg.Exists() {
		t.Errorf("cgroup %s is still there", cg.Path)
	}
}

// The limits of a spec received ahead go on the early process's cgroups
// before Create (SetLimits), and Create with that spec keeps them; Create
// with another spec sets its own.
func TestEarlyTakesLimitsAhead(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	pidsMax := func(s *specs.Spec, id string) string {
		p := cgroups.ContainerPath(s.Linux.CgroupsPath, id)
		for _, f := range []string{"/sys/fs/cgroup/pids" + p + "/pids.max", "/sys/fs/cgroup" + p + "/pids.max"} {
			if b, err := os.ReadFile(f); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return ""
	}
	withPids := func(n int64) func(*specs.Spec) {
		return func(s *specs.Spec) { s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}} }
	}
	for _, tc := range []struct {
		name      string
		createdAs func(*specs.Spec) // nil: the spec given ahead
		want      string
	}{
		{"the spec given ahead", nil, "100"},
		{"another spec", withPids(200), "200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, sh("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true"), withPids(100))
			out, err := os.Create(filepath.Join(b, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			id := e.id()
			early := startEarly(t, r, id, b, out, false)
			ahead, err := LoadSpec(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := early.SetLimits(ahead); err != nil {
				t.Fatal(err)
			}
			if got := pidsMax(ahead, id); got != "100" {
				t.Fatalf("pids.max before create: %q, want 100", got)
			}
			spec := ahead
			if tc.createdAs != nil {
				if spec, err = LoadSpec(b); err != nil {
					t.Fatal(err)
				}
				tc.createdAs(spec)
			}
			_, _, got := runTaking(t, r, id, b, spec, early, out)
			if strings.TrimSpace(got) != tc.want {
				t.Fatalf("pids.max inside: %q, want %s", got, tc.want)
			}
		})
	}
}

// A bind mount source the host mounted after the early process started
// (a directory bound on itself, as critest's propagation specs make it; a
// tmpfs, as a pod's secret volume) is not in the early process's copy of
// the mount table: the container then gets a process of its own, which
// sees the mount. A source mounted before, it takes the early process.
func TestEarlyNotTakenForSourceMountedSince(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	for _, tc := range []struct {
		name  string
		mount func(dir string) error // on the host, after the early start
		takes bool
	}{
		{"nothing mounted since", nil, true},
		{"bound on itself", func(dir string) error { return unix.Mount(dir, dir, "", unix.MS_BIND, "") }, false},
		{"a tmpfs", func(dir string) error { return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			script := sh(`echo "pid $$"; grep -c " /src " /proc/self/mountinfo || true`)
			b := newBundle(t, script, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/src", Type: "bind", Source: src, Options: []string{"rbind"}})
			})
			out, err := os.Create(filepath.Join(b, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			id := e.id()
			early := startEarly(t, r, id, b, out, false)
			earlyPid := early.sp.pid
			if tc.mount != nil {
				if err := tc.mount(src); err != nil {
					t.Fatal(err)
				}
				defer unix.Unmount(src, unix.MNT_DETACH)
			}
			pid, ws, got := runTaking(t, r, id, b, nil, early, out)
			if !ws.Exited() || ws.ExitStatus() != 0 {
				t.Fatalf("container ended with %v:\n%s", ws, got)
			}
			if took := pid == earlyPid; took != tc.takes {
				t.Errorf("took the early process: %v, want %v\n%s", took, tc.takes, got)
			}
		})
	}
}
