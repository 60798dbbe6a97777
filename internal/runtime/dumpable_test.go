package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// notDumpable is the test binary's testHookSetup when it runs as a
// container's init or exec'd process: it fails the setup of a process
// that is dumpable.
func notDumpable(stage string) error {
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("%s: PR_GET_DUMPABLE: %w", stage, err)
	}
	if d == 1 {
		return fmt.Errorf("%s: the process setting up the container is dumpable", stage)
	}
	return nil
}

func withUserNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
}

// TestSetupIsNotDumpable: a container's init and an exec'd process are not
// dumpable from the namespace constructor until they exec the user's
// program, so the container cannot open their /proc/PID/fd, environ or mem
// meanwhile (the CVE-2016-9962 class). The test binary is the init here,
// and its testHookSetup (notDumpable) fails a dumpable setup.
func TestSetupIsNotDumpable(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
	}{{"host user namespace", nil}, {"user namespace", withUserNS}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, []string{"sleep", "100"}, tc.mutate)
			id := e.id()
			c, err := r.Create(id, CreateOptions{Bundle: b})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() {
				unix.Kill(c.Pid, unix.SIGKILL)
				var ws unix.WaitStatus
				unix.Wait4(c.Pid, &ws, 0, nil)
			})
			if err := r.Start(id); err != nil {
				t.Fatalf("start: %v", err)
			}
			pid, err := r.Exec(id, &specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin"}}, ExecOptions{})
			if err != nil {
				t.Fatalf("exec: %v", err)
			}
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
				t.Fatalf("exec'd process ended with %v (%v)", ws, err)
			}
		})
	}
}

// TestContainerCannotOpenInitFds: a process of the container - here a
// startContainer hook, with the init's uid and capabilities in the
// container's user namespace - cannot open the init's descriptors while
// it still runs hull's setup. The container has a time namespace too:
// the init writes its offsets without a /proc/self of its own uid.
func TestContainerCannotOpenInitFds(t *testing.T) {
	timeNS := true
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		timeNS = false
	}
	e := newEnv(t)
	probe := `readlink /proc/self/cwd >/dev/null && [ "$PPID" = 1 ] || { echo broken > /tmp/verdict; exit 0; }
if ls /proc/1/fd >/dev/null 2>&1 || readlink /proc/1/cwd >/dev/null 2>&1; then echo open; else echo denied; fi > /tmp/verdict`
	b := newBundle(t, sh(`read up rest < /proc/uptime; echo ${up%.*}`), func(s *specs.Spec) {
		withUserNS(s)
		s.Root.Readonly = false // for the verdict
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh", Args: sh(probe), Env: []string{"PATH=/bin"}}}}
		if timeNS {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000000}}
		}
	})
	if err := os.Chmod(filepath.Join(b, "rootfs/tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(e.mustRun(b))
	verdict, err := os.ReadFile(filepath.Join(b, "rootfs/tmp/verdict"))
	if err != nil {
		t.Fatalf("the hook left no verdict: %v", err)
	}
	if string(verdict) != "denied\n" {
		t.Fatalf("the container's hook found the init's descriptors %q", verdict)
	}
	if up, _ := strconv.Atoi(out); timeNS && up < 1000000 {
		t.Fatalf("uptime %q inside, want the 1000000 s boot-time offset applied", out)
	}
}
