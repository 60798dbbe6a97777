package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hull/internal/testenv"
)

// Two hull roots whose pods share one cgroup root (as two roots on the
// default /kubepods do) apply and delete pods at once, in a loop: each
// makes the shared levels (the root, the QoS classes) it needs while
// the other's teardown removes them when it leaves them empty. Every
// pod runs, every delete succeeds, and no cgroup is left.
func TestKubeSharedCgroupRootTwoRoots(t *testing.T) {
	bin := os.Getenv("HULL_BIN")
	if bin == "" || os.Geteuid() != 0 {
		t.Skip("needs root and HULL_BIN (make build builds hull-cri beside it)")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "hull-cri")); err != nil {
		t.Skipf("no hull-cri beside HULL_BIN: %v", err)
	}
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	shared := fmt.Sprintf("/kubepods-shared-%d", os.Getpid())
	roots := []string{kubeRootIn(t, fx, shared), kubeRootIn(t, fx, shared)}
	t.Cleanup(func() {
		for _, root := range roots {
			out, _, _ := kube(t, root, "get", "pods", "-o", "name")
			for _, p := range strings.Fields(out) {
				kube(t, root, "delete", p, "--grace-period", "0")
			}
		}
		var left []string
		for _, p := range []string{"/sys/fs/cgroup" + shared, "/sys/fs/cgroup/*" + shared} {
			m, _ := filepath.Glob(p)
			left = append(left, m...)
		}
		if len(left) > 0 {
			t.Errorf("cgroups left after every pod of both roots was deleted: %v", left)
		}
	})
	// BestEffort, Burstable and Guaranteed pods: every level of the
	// shared root is made and removed.
	resources := []string{"", "    resources:\n      requests:\n        cpu: 50m\n", "    resources:\n      limits:\n        cpu: 100m\n        memory: 64Mi\n"}
	const rounds = 4
	var wg sync.WaitGroup
	for r, root := range roots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				name := fmt.Sprintf("p%d-%d", r, i)
				m := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n    command: [\"sleep\", \"300\"]\n%s", name, fx.Busybox.Ref, resources[(r+i)%len(resources)])
				if _, errOut, err := kubeStdin(t, root, m, "apply", "-f", "-"); err != nil {
					t.Errorf("root %d: apply %s: %v\n%s", r, name, err, errOut)
					return
				}
				if !waitRunning(t, root, name) {
					return
				}
				if _, errOut, err := kube(t, root, "delete", "pod", name, "--grace-period", "0"); err != nil {
					t.Errorf("root %d: delete %s: %v\n%s", r, name, err, errOut)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// waitRunning waits for a pod to run (in a goroutine: Errorf, not Fatal),
// reporting its status and events when it does not.
func waitRunning(t *testing.T, root, name string) bool {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, _, _ := kube(t, root, "get", "pod", name, "-o", "jsonpath={.status.phase}")
		if out == "Running" {
			return true
		}
	}
	out, _, _ := kube(t, root, "describe", "pod", name)
	t.Errorf("pod %s not running after 60s:\n%s", name, out)
	return false
}
