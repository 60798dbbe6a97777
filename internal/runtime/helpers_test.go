package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The tests drive the real hull binary (HULL_BIN, as `make test` sets it,
// or one built here) against bundles made from busybox-static, as root.

var hullBin string

func TestMain(m *testing.M) {
	// The runtime re-executes its caller as the container init; when
	// the test binary itself is used through the Go API, dispatch it.
	if IsInit() {
		testHookSetup = notDumpable
		InitMain()
	}
	code := func() int {
		if os.Getuid() != 0 {
			fmt.Fprintln(os.Stderr, "skipping runtime tests: they need root")
			return 0
		}
		hullBin = os.Getenv("HULL_BIN")
		if hullBin == "" {
			dir, err := os.MkdirTemp("", "hull-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			hullBin = filepath.Join(dir, "hull")
			cmd := exec.Command("go", "build", "-tags", "libsqlite3", "-o", hullBin, "hull/cmd/hull")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "build hull:", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

var applets = []string{"sh", "cat", "sleep", "id", "hostname", "ip", "ls", "echo", "true", "false", "mkdir", "touch",
	"grep", "readlink", "head", "tr", "tty", "ps", "mount", "wc", "stat", "ulimit", "test", "env", "pwd"}

// newBundle builds a bundle in a temp dir: a busybox rootfs and the
// default spec (no terminal), changed by mutate.
func newBundle(t *testing.T, args []string, mutate func(s *specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	// A container in a user namespace runs as an unprivileged host uid,
	// which must be able to reach its rootfs.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	s := DefaultSpec()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Hostname = "hull-test"
	s.Linux.CgroupsPath = "/hull-test/" + filepath.Base(dir)
	if mutate != nil {
		mutate(s)
	}
	writeSpec(t, dir, s)
	return dir
}

func writeSpec(t *testing.T, bundle string, s *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// env is one test's state root with cleanup of every container it made.
type env struct {
	t    *testing.T
	root string
}

var idSeq atomic.Int64

func newEnv(t *testing.T) *env {
	e := &env{t: t, root: t.TempDir()}
	return e
}

// id returns a fresh container id, deleted (forcibly) when the test ends,
// even if it fails.
func (e *env) id() string {
	id := fmt.Sprintf("t%d-%d", os.Getpid(), idSeq.Add(1))
	e.t.Cleanup(func() {
		out, err := e.hull("delete", "--force", id)
		if err != nil && !strings.Contains(out, "does not exist") {
			e.t.Errorf("cleanup delete %s: %v: %s", id, err, out)
		}
	})
	return id
}

// hull runs `hull oci --root <root> args...` and returns combined output.
// Output goes through a file, not a pipe: a created container inherits
// hull's stdio and would hold a pipe open long after hull exits.
func (e *env) hull(args ...string) (string, error) {
	f, err := os.CreateTemp(e.t.TempDir(), "out")
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(hullBin, append([]string{"oci", "--root", e.root}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return string(out), err
}

// run runs a bundle in the foreground and returns stdout, stderr and the
// exit code.
func (e *env) run(bundle string, extra ...string) (string, string, int) {
	e.t.Helper()
	id := e.id()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(hullBin, append(append([]string{"oci", "--root", e.root, "run", "--bundle", bundle}, extra...), id)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("hull run: %v", err)
	}
	return stdout.String(), stderr.String(), code
}

// mustRun runs the bundle and fails the test unless it exits 0.
func (e *env) mustRun(bundle string) string {
	e.t.Helper()
	out, errOut, code := e.run(bundle)
	if code != 0 {
		e.t.Fatalf("container exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	return out
}

func (e *env) mustHull(args ...string) string {
	e.t.Helper()
	out, err := e.hull(args...)
	if err != nil {
		e.t.Fatalf("hull oci %v: %v\n%s", args, err, out)
	}
	return out
}

func (e *env) state(id string) specs.State {
	e.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(e.mustHull("state", id)), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func sh(script string) []string { return []string{"sh", "-c", script} }
