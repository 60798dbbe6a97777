package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hull/internal/testenv"
)

// make demo-registry leaves a registry serving the demo images and puts
// them in hull's store under the course's names: `hull run alpine` works
// right after it, and stop removes the registry again.
func TestDemoRegistry(t *testing.T) {
	hull := os.Getenv("HULL_BIN")
	if hull == "" {
		t.Skip("HULL_BIN unset: make test sets it to the built hull")
	}
	tmp := t.TempDir()
	self := filepath.Join(tmp, "testenv")
	if out, err := exec.Command("go", "build", "-tags", "libsqlite3", "-o", self, ".").CombinedOutput(); err != nil {
		t.Fatalf("build testenv: %v\n%s", err, out)
	}
	demo := filepath.Join(tmp, "demo")
	// The container joins a default network of the test's own (not the
	// host's hull0), removed when the test ends.
	conf := testenv.NetworkConfig(t, filepath.Join(tmp, "root"))
	env := append(os.Environ(), "HULL="+hull, "TESTENV="+self, "HULL_DEMO_DIR="+demo, "HULL_CONFIG="+conf,
		"HULL_ROOT="+filepath.Join(tmp, "root"), "HULL_RUN_ROOT="+filepath.Join(tmp, "run"))
	script := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("../demo-registry.sh", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo-registry.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command("../demo-registry.sh", "stop")
		cmd.Env = env
		cmd.Run()
	})
	script("start")
	script("start") // again: idempotent, the same registry
	// --pull never: the image must be the one start put in the store; were
	// it missing, hull would otherwise pull alpine from docker.io.
	run := exec.Command(hull, "run", "--rm", "--pull", "never", "alpine", "echo", "ok")
	run.Env = env
	if out, err := run.Output(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("hull run --rm --pull never alpine echo ok: %v\n%s", err, out)
	}
	pid, err := os.ReadFile(filepath.Join(demo, "registry.pid"))
	if err != nil {
		t.Fatal(err)
	}
	script("stop")
	if _, err := os.Stat(filepath.Join("/proc", strings.TrimSpace(string(pid)))); err == nil {
		t.Errorf("registry process %s still running after stop", pid)
	}
	if _, err := os.Stat(demo); err == nil {
		t.Errorf("%s left after stop", demo)
	}
}
