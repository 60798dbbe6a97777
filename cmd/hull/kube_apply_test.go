package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hull/internal/testenv"
)

// `hull kube apply` runs apply as its child, which stays as the
// supervisor of the pod it records (kube_apply.go): apply returns (its
// output complete, nothing of it held open), the pod runs, later commands
// recognise that process as the pod's supervisor (delete signals it, get
// starts no other); an apply that makes no pod leaves no process behind,
// and a failing apply exits 1 with its error.
func TestKubeApplyStaysAsSupervisor(t *testing.T) {
	root, fx := kubeEnv(t)
	out := applyYAML(t, root, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kept\nspec:\n  containers:\n  - name: c\n    image: %s\n    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", fx.Busybox.Ref))
	if !strings.Contains(out, "pod/kept created") {
		t.Errorf("apply's output: %q", out)
	}
	waitPod(t, root, "kept", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	dir := filepath.Join(root, "kube", "pods", "default", "kept")
	b, err := os.ReadFile(filepath.Join(dir, "supervisor"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !strings.Contains(string(env), "\x00_HULL_KUBE_APPLY=") || !strings.Contains(string(cmdline), "\x00apply\x00") {
		t.Errorf("the pod's supervisor %d is not apply's process (%q, %v)", pid, cmdline, err)
	}
	if stderr, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", pid)); stderr != filepath.Join(dir, "supervisor.log") {
		t.Errorf("the supervisor's stderr is %q, not the pod's supervisor.log", stderr)
	}
	mustKube(t, root, "get", "pods") // reconciles: apply's process counts as the supervisor
	if others := supervisorsOf(dir); len(others) != 0 {
		t.Errorf("get started other supervisors: %v", others)
	}
	mustKube(t, root, "delete", "pod", "kept")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pod directory after delete: %v", err)
	}
	// (delete waits for the directory to go; the supervisor exits right after)
	waitGone := func(what string) {
		for deadline := time.Now().Add(10 * time.Second); len(appliersOf(root)) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("apply processes left %s: %v", what, appliersOf(root))
			}
		}
	}
	waitGone("after their pod was deleted")

	// A ConfigMap alone: apply reports and exits.
	applyYAML(t, root, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lone\ndata:\n  a: b\n")
	waitGone("after an apply that made no pod")

	// A failing apply: its error and status 1, nothing left.
	f := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(f, []byte("apiVersion: v1\nkind: Nope\nmetadata:\n  name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := kube(t, root, "apply", "-f", f)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "error:") || !strings.Contains(stderr, "Nope") {
		t.Errorf("apply of an unknown kind: %v, stderr %q; want status 1 and the error", err, stderr)
	}
	waitGone("after a failed apply")
}

// supervisorsOf lists the pids of `supervise DIR` processes.
func supervisorsOf(dir string) []int {
	return procsWhere(func(cmdline, _ string) bool {
		return strings.Contains(cmdline, "\x00supervise\x00"+dir)
	})
}

// appliersOf lists the pids of apply processes (supervising, or not yet
// ended) of the hull root.
func appliersOf(root string) []int {
	return procsWhere(func(cmdline, env string) bool {
		return strings.Contains(cmdline, root) && strings.Contains(env, "\x00_HULL_KUBE_APPLY=")
	})
}

func procsWhere(match func(cmdline, env string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		env, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err1 == nil && err2 == nil && match(string(cmdline), "\x00"+string(env)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A command line the C constructor leaves to the command tree (a global
// flag written --root=DIR) runs apply the same way from Go
// (runKubeApply): the output, the pod supervised by apply's process, the
// status of a failing apply.
func TestKubeApplyFromTheCommandTree(t *testing.T) {
	root, fx := kubeEnv(t)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(os.Args[0], append(append([]string{"--root=" + root, "--run-root", filepath.Join(root, "run")}, testenv.ConfigArgs(root)...), append([]string{"kube"}, args...)...)...)
		cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1", "HULL_CRI="+filepath.Join(filepath.Dir(os.Getenv("HULL_BIN")), "hull-cri"))
		cmd.WaitDelay = time.Second
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	f := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: fromgo\nspec:\n  containers:\n  - name: c\n    image: %s\n    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", fx.Busybox.Ref)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := run("apply", "-f", f); err != nil || out != "pod/fromgo created\n" {
		t.Fatalf("apply: %v, %q, %q", err, out, stderr)
	}
	waitPod(t, root, "fromgo", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	dir := filepath.Join(root, "kube", "pods", "default", "fromgo")
	b, _ := os.ReadFile(filepath.Join(dir, "supervisor"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || !strings.Contains(string(env), "\x00_HULL_KUBE_APPLY=") {
		t.Errorf("the pod's supervisor %d is not apply's process (%v)", pid, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: Nope\nmetadata:\n  name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run("apply", "-f", bad)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "Nope") {
		t.Errorf("apply of an unknown kind: %v, stderr %q; want status 1 and the error", err, stderr)
	}
	mustKube(t, root, "delete", "pod", "fromgo")
}

// apply whose output's reader is gone (`| head -1`) still supervises the
// pod it recorded, and exits as SIGPIPE would have ended it (141).
func TestKubeApplyBrokenOutput(t *testing.T) {
	root, fx := kubeEnv(t)
	f := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: piped\nspec:\n  containers:\n  - name: c\n    image: %s\n    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", fx.Busybox.Ref)), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := hullProc(root, "kube", "apply", "-f", f)
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(os.Getenv("HULL_BIN")), "hull-cri"))
	cmd.Stdout = w
	err = cmd.Run()
	w.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 141 {
		t.Errorf("apply with its output's reader gone: %v; want status 141", err)
	}
	waitPod(t, root, "piped", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	// (get would have started a supervisor for a pod whose apply died)
	b, _ := os.ReadFile(filepath.Join(root, "kube", "pods", "default", "piped", "supervisor"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || !strings.Contains(string(env), "\x00_HULL_KUBE_APPLY=") {
		t.Errorf("the pod's supervisor %d is not apply's process (%v)", pid, err)
	}
	mustKube(t, root, "delete", "pod", "piped")
}
