package runtime

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A network namespace made ahead (NewNetNS) is the one the container's init
// joins, and no descriptor of it is left to the container's program; a
// container with a user namespace makes its own instead (that namespace
// must own it).
func TestCreateTakesNetNSMadeAhead(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, userns := range []bool{false, true} {
		ns, err := NewNetNS()
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		var made unix.Stat_t
		if err := unix.Fstat(int(ns.Fd()), &made); err != nil {
			t.Fatal(err)
		}
		b := newBundle(t, []string{"sleep", "100"}, func(s *specs.Spec) {
			if userns {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			}
		})
		id := e.id()
		c, err := r.Create(id, CreateOptions{Bundle: b, Prepared: &Prepared{NetNS: ns}, Stdin: null, Stdout: null, Stderr: null})
		if err != nil {
			t.Fatalf("userns=%v: create: %v", userns, err)
		}
		proc := "/proc/" + strconv.Itoa(c.Pid)
		err = r.Start(id)
		for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if comm, _ := os.ReadFile(proc + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
				break
			}
		}
		var in unix.Stat_t
		if err == nil {
			err = unix.Stat(proc+"/ns/net", &in)
		}
		fds, _ := os.ReadDir(proc + "/fd")
		for _, fd := range fds {
			if l, _ := os.Readlink(proc + "/fd/" + fd.Name()); strings.HasPrefix(l, "net:") {
				t.Errorf("userns=%v: the container's fd %s is a network namespace (%s)", userns, fd.Name(), l)
			}
		}
		r.Delete(id, true)
		var ws unix.WaitStatus
		unix.Wait4(c.Pid, &ws, 0, nil)
		if err != nil {
			t.Fatalf("userns=%v: %v", userns, err)
		}
		if took := in.Ino == made.Ino; took == userns {
			t.Errorf("userns=%v: the container is in the namespace made ahead: %v", userns, took)
		}
	}
}

// Making namespaces ahead leaves every thread of this process in its own
// network namespace (the main thread too, which Go never ends).
func TestNewNetNSLeavesThreadsAlone(t *testing.T) {
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		ns, err := NewNetNS()
		if err != nil {
			t.Fatal(err)
		}
		ns.Close()
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if l, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && l != own {
			t.Errorf("thread %s is in %s, not %s", task.Name(), l, own)
		}
	}
}
