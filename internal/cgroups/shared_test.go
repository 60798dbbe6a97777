package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// A v1 cpuset parent another process made and filled halfway (its cpus
// written, its mems not yet) is completed before the leaf inherits from
// it: a leaf with empty mems accepts no process.
func TestCreateFillsAHalfFilledCpuset(t *testing.T) {
	m, cpuset := unfilledCpusetParent(t, "halfcpuset")
	cpus, _ := os.ReadFile(filepath.Join(filepath.Dir(cpuset), "cpuset.cpus"))
	if err := writeFile(cpuset, "cpuset.cpus", strings.TrimSpace(string(cpus))); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cpuset, "leaf", "cpuset.mems"))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatalf("leaf cpuset.mems %q, %v: want the parent's memory nodes", b, err)
	}
}

// unfilledCpusetParent is the manager of /hull-cgtest-NAME-PID/leaf, with
// the parent made in the v1 cpuset hierarchy and not filled (as another
// process that made it a moment ago leaves it); the test's end removes
// both. Skips without root or a v1 cpuset hierarchy.
func unfilledCpusetParent(t *testing.T, name string) (m *Manager, cpuset string) {
	t.Helper()
	if os.Getuid() != 0 || DetectMode() == Unavailable || DetectMode() == Unified {
		t.Skip("needs root and cgroup v1")
	}
	parent := fmt.Sprintf("/hull-cgtest-%s-%d", name, os.Getpid())
	m, err := New(parent + "/leaf")
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range m.Mounts() {
		if contains(mt.Controllers, "cpuset") {
			cpuset = filepath.Dir(mt.Dir)
		}
	}
	if cpuset == "" {
		t.Skip("no cpuset hierarchy")
	}
	if err := os.Mkdir(cpuset, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Destroy()
		for _, mt := range m.Mounts() {
			_ = unix.Rmdir(filepath.Dir(mt.Dir))
		}
	})
	return m, cpuset
}

// Pods of several processes share the levels above their own cgroups
// (kubepods, its QoS levels), each making what is missing and removing
// what it leaves empty. Done concurrently in a loop, every Create
// succeeds with a usable cpuset, and nothing is left at the end.
func TestSharedParentsConcurrentCreateRemove(t *testing.T) {
	if os.Getuid() != 0 || DetectMode() == Unavailable {
		t.Skip("needs root and cgroups")
	}
	concurrentCreateRemove(t, New)
}

// The same through the v2 code path (controllers enabled level by
// level), on a hybrid host's cgroup2 hierarchy: a manager that takes it
// for the only one.
func TestSharedParentsConcurrentCreateRemoveV2(t *testing.T) {
	if os.Getuid() != 0 || DetectMode() == Unavailable {
		t.Skip("needs root and cgroups")
	}
	probe, err := New("/")
	if err != nil || probe.unified == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	concurrentCreateRemove(t, func(path string) (*Manager, error) {
		return &Manager{Mode: Unified, Path: filepath.Clean(path), unified: probe.unified}, nil
	})
}

// concurrentCreateRemove runs 4 workers making and removing 50 pod
// cgroups each below one shared root, as pods' supervisors do.
func concurrentCreateRemove(t *testing.T, newManager func(string) (*Manager, error)) {
	root := fmt.Sprintf("/hull-cgtest-sharedrace-%d", os.Getpid())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				m, err := newManager(fmt.Sprintf("%s/burstable/pod%d-%d", root, w, i))
				if err == nil {
					err = m.Create()
				}
				if err != nil {
					errs <- err
					return
				}
				for _, mt := range m.Mounts() {
					if contains(mt.Controllers, "cpuset") && !cpusetFilled(mt.Dir) {
						errs <- fmt.Errorf("%s: empty cpuset", mt.Dir)
						return
					}
				}
				// As a pod's teardown: its own directory, then each
				// level above that is empty.
				for _, mt := range m.Mounts() {
					if err := unix.Rmdir(mt.Dir); err != nil {
						errs <- err
						return
					}
					for d := filepath.Dir(mt.Dir); d != mt.Mountpoint; d = filepath.Dir(d) {
						if unix.Rmdir(d) != nil {
							break
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	m, _ := newManager(root)
	for _, mt := range m.Mounts() {
		if _, err := os.Stat(mt.Dir); err == nil {
			t.Errorf("%s left", mt.Dir)
			removeTree(mt.Dir)
		}
	}
}
