package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"hull/internal/config"
)

// Directories set aside for removal disappear from the container
// directories at once; what a process that died before its purge left
// aside is swept, and another live process's work is left to it.
func TestSetAsideAndSweep(t *testing.T) {
	e := &Engine{cfg: config.Config{Root: t.TempDir(), RunRoot: t.TempDir()}}
	dir := e.persistDir("c1")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	aside := setAside(dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("after setAside the container directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(aside, "sub")); err != nil {
		t.Fatalf("set aside at %s: %v", aside, err)
	}

	// A pid that has surely exited: a child we reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(filepath.Dir(e.runDir("x")), fmt.Sprintf("%s%d-c2", asidePrefix, cmd.Process.Pid))
	live := filepath.Join(filepath.Dir(e.runDir("x")), fmt.Sprintf("%s%d-c3", asidePrefix, os.Getppid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "rootfs"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.sweepAside()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead process's leftovers were not swept: %v", err)
	}
	for _, d := range []string{live, aside} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s of a live process was swept: %v", d, err)
		}
	}
}

// With PurgeConcurrently, purge returns before the files are gone, and
// Close waits until they are.
func TestPurgeConcurrently(t *testing.T) {
	e := &Engine{cfg: config.Config{Root: t.TempDir(), RunRoot: t.TempDir()}, swept: true}
	e.PurgeConcurrently()
	var paths []string
	for i := range 20 {
		d := filepath.Join(e.cfg.Root, fmt.Sprintf("aside%d", i))
		for j := range 50 {
			if err := os.MkdirAll(filepath.Join(d, fmt.Sprint(j)), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, d)
	}
	e.purge(paths)
	e.Close()
	for _, d := range paths {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Close: %v", d, err)
		}
	}
}
