package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Probes run as kubelet's per-probe workers: a probe that takes seconds
// delays neither another container's probe nor another probe of its
// own container.
func TestKubeProbesParallel(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: par
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: slow
    image: %[1]s
    command: ["sleep", "3600"]
    readinessProbe:
      exec:
        command: ["sh", "-c", "sleep 6"]
      periodSeconds: 1
      timeoutSeconds: 20
    livenessProbe:
      exec:
        command: ["sh", "-c", "test -e /tmp/alive"]
      periodSeconds: 1
      failureThreshold: 2
  - name: quick
    image: %[1]s
    command: ["sleep", "3600"]
    readinessProbe:
      exec:
        command: ["true"]
      periodSeconds: 1
`, fx.Busybox.Ref))
	type status struct {
		Status struct {
			ContainerStatuses []struct {
				Name         string `json:"name"`
				Ready        bool   `json:"ready"`
				RestartCount int    `json:"restartCount"`
				State        struct {
					Running *struct{} `json:"running"`
				} `json:"state"`
			} `json:"containerStatuses"`
		} `json:"status"`
	}
	look := func() (running, ready map[string]bool, restarts map[string]int) {
		var s status
		if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", "par", "-o", "json")), &s); err != nil {
			t.Fatal(err)
		}
		running, ready, restarts = map[string]bool{}, map[string]bool{}, map[string]int{}
		for _, c := range s.Status.ContainerStatuses {
			running[c.Name], ready[c.Name], restarts[c.Name] = c.State.Running != nil, c.Ready, c.RestartCount
		}
		return running, ready, restarts
	}
	var since time.Time
	waitKube(t, root, "par", "running", func() bool {
		running, _, _ := look()
		if running["slow"] && running["quick"] {
			since = time.Now()
			return true
		}
		return false
	})
	// quick is ready while slow's first readiness probe still runs.
	waitKube(t, root, "par", "quick ready", func() bool { _, ready, _ := look(); return ready["quick"] })
	_, ready, restarts := look()
	if ready["slow"] {
		t.Errorf("slow ready %.1fs after starting, before quick was seen ready: a 6 s probe held quick's back", time.Since(since).Seconds())
	}
	if d := time.Since(since); d > 4*time.Second {
		t.Errorf("quick ready %.1fs after starting: its probe waited for slow's", d.Seconds())
	}
	// slow's liveness probe (no /tmp/alive) fails twice in a row and
	// kills it while its 6 s readiness probe is under way.
	waitKube(t, root, "par", "slow restarted by its liveness probe", func() bool { _, _, r := look(); return r["slow"] >= 1 })
	if d := time.Since(since); d > 5*time.Second {
		t.Errorf("slow restarted %.1fs after starting: its liveness probe waited for its readiness probe", d.Seconds())
	}
	_ = restarts
	ev := mustKube(t, root, "get", "events")
	if !strings.Contains(ev, "Container slow failed liveness probe, will be restarted") {
		t.Errorf("events: no liveness kill:\n%s", ev)
	}
}
