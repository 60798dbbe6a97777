package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `hull kube apply` starts a spare supervisor beside apply
// (kube_spare.go): the pod it records is supervised by that spare (its
// environment marks it), which later commands recognise as the pod's
// supervisor (delete signals it, get starts no other); an apply that
// makes no pod leaves no spare behind.
func TestKubeApplySpareSupervisor(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: spared\nspec:\n  containers:\n  - name: c\n    image: %s\n    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", fx.Busybox.Ref))
	waitPod(t, root, "spared", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	dir := filepath.Join(root, "kube", "pods", "default", "spared")
	b, err := os.ReadFile(filepath.Join(dir, "supervisor"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !strings.Contains(string(env), "\x00_HULL_KUBE_SPARE=read\x00") {
		t.Errorf("the pod's supervisor %d is not apply's spare (%v)", pid, err)
	}
	mustKube(t, root, "get", "pods") // reconciles: the spare counts as the supervisor
	if others := supervisorsOf(dir); len(others) != 0 {
		t.Errorf("get started other supervisors: %v", others)
	}
	mustKube(t, root, "delete", "pod", "spared")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pod directory after delete: %v", err)
	}
	// (delete waits for the directory to go; the spare exits right after)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !strings.Contains(string(env), "_HULL_KUBE_SPARE=read") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spare supervisor %d outlived its pod", pid)
		}
	}

	// A ConfigMap alone: the spare gets EOF and exits.
	applyYAML(t, root, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lone\ndata:\n  a: b\n")
	deadline := time.Now().Add(10 * time.Second)
	for len(sparesOf(root)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spare supervisors left after an apply that made no pod: %v", sparesOf(root))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// supervisorsOf lists the pids of `supervise DIR` processes.
func supervisorsOf(dir string) []int {
	return procsWhere(func(cmdline, _ string) bool {
		return strings.Contains(cmdline, "\x00supervise\x00"+dir)
	})
}

// sparesOf lists the pids of spare supervisors of the hull root.
func sparesOf(root string) []int {
	return procsWhere(func(cmdline, env string) bool {
		return strings.Contains(cmdline, root) && strings.Contains(env, "\x00_HULL_KUBE_SPARE=read\x00")
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
