package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// storedPod is a deployment pod as its files on disk show it, read
// without running a hull kube command (each command reconciles: reading
// the files shows what the supervisors do on their own).
type storedPod struct {
	name, hash      string
	deleting, ready bool
}

func storedPods(t *testing.T, root, prefix string) []storedPod {
	t.Helper()
	dir := filepath.Join(root, "kube", "pods", "default")
	entries, _ := os.ReadDir(dir)
	var out []storedPod
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix+"-") {
			continue
		}
		var pod struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		var st struct {
			Conditions []struct{ Type, Status string } `json:"conditions"`
		}
		p := storedPod{name: e.Name()}
		if b, err := os.ReadFile(filepath.Join(dir, e.Name(), "pod.json")); err != nil || json.Unmarshal(b, &pod) != nil {
			continue // being made or removed
		}
		p.hash = pod.Metadata.Labels["pod-template-hash"]
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "delete")); err == nil {
			p.deleting = true
		}
		if b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status.json")); err == nil && json.Unmarshal(b, &st) == nil {
			for _, c := range st.Conditions {
				if c.Type == "Ready" {
					p.ready = c.Status == "True"
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func rolloutManifest(name, strategy, image, cmd string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: %d
  selector:
    matchLabels:
      app: %[1]s
%[3]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: %[4]s
        command: ["sh", "-c", "%[5]s"]
        readinessProbe:
          exec:
            command: ["test", "-e", "/tmp/ready"]
          periodSeconds: 1
`, name, replicas, strategy, image, cmd)
}

// A changed template rolls out by RollingUpdate with maxSurge and
// maxUnavailable as the deployment controller applies them (never more
// than replicas+maxSurge pods, never fewer than replicas-maxUnavailable
// ready), old pods removed as new ones become Ready: driven by the
// pods' supervisors, with no hull kube command running meanwhile.
func TestKubeRollingUpdate(t *testing.T) {
	root, fx := kubeEnv(t)
	t.Cleanup(func() { kube(t, root, "delete", "deployment", "roll", "--grace-period", "0") })
	strategy := "  strategy:\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0"
	v1 := rolloutManifest("roll", strategy, fx.Busybox.Ref, "touch /tmp/ready; exec sleep 3600", 3)
	applyYAML(t, root, v1)
	out := waitKubeOut(t, root, "rolled out", func(out string) bool { return strings.Contains(out, "successfully rolled out") },
		"rollout", "status", "deployment/roll", "--timeout", "60s")
	if !strings.HasSuffix(out, "deployment \"roll\" successfully rolled out\n") {
		t.Errorf("rollout status printed %q", out)
	}
	old := storedPods(t, root, "roll")
	if len(old) != 3 {
		t.Fatalf("pods: %v; want 3", old)
	}
	// The new template's pods take a second or two to become ready.
	v2 := rolloutManifest("roll", strategy, fx.Busybox.Ref, "sleep 1; touch /tmp/ready; exec sleep 3600", 3)
	if out := applyYAML(t, root, v2); out != "deployment.apps/roll configured\n" {
		t.Errorf("apply of a new template printed %q", out)
	}
	name := regexp.MustCompile(`^roll-([a-z0-9]+)-[a-z0-9]{5}$`)
	maxLive, sawBoth := 0, false
	deadline := time.Now().Add(time.Minute)
	for {
		pods := storedPods(t, root, "roll")
		live, ready, newReady, hashes := 0, 0, 0, map[string]bool{}
		for _, p := range pods {
			if m := name.FindStringSubmatch(p.name); m == nil || m[1] != p.hash {
				t.Fatalf("pod %s (hash %s): want roll-<pod-template-hash>-<5 chars>", p.name, p.hash)
			}
			if p.deleting {
				continue
			}
			live++
			hashes[p.hash] = true
			if p.ready {
				ready++
				if p.hash != old[0].hash {
					newReady++
				}
			}
		}
		maxLive = max(maxLive, live)
		sawBoth = sawBoth || len(hashes) == 2
		if live > 4 {
			t.Fatalf("%d pods live (more than replicas 3 + maxSurge 1): %v", live, pods)
		}
		if ready < 3 {
			t.Fatalf("%d pods ready (fewer than replicas 3 - maxUnavailable 0): %v", ready, pods)
		}
		if newReady == 3 && len(pods) == 3 {
			break // every old pod gone, its teardown done
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rollout without a command after a minute: %v", pods)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if maxLive != 4 || !sawBoth {
		t.Errorf("at most %d pods live, both templates seen: %v; want 4 (a surge of 1), true", maxLive, sawBoth)
	}
	waitKubeOut(t, root, "3/3", func(out string) bool {
		return regexp.MustCompile(`\nroll   3/3     3            3           \d+s\n$`).MatchString(out)
	}, "get", "deployments")
}

// Recreate deletes every old pod and makes the new ones once they are
// all gone; rollout status prints kubectl's lines until it is done.
func TestKubeRecreateRolloutStatus(t *testing.T) {
	root, fx := kubeEnv(t)
	t.Cleanup(func() { kube(t, root, "delete", "deployment", "rec", "--grace-period", "0") })
	strategy := "  strategy:\n    type: Recreate"
	applyYAML(t, root, rolloutManifest("rec", strategy, fx.Busybox.Ref, "touch /tmp/ready; exec sleep 3600", 2))
	mustKube(t, root, "rollout", "status", "deploy/rec", "--timeout", "60s")
	oldHash := storedPods(t, root, "rec")[0].hash
	applyYAML(t, root, rolloutManifest("rec", strategy, fx.Busybox.Ref, "sleep 1; touch /tmp/ready; exec sleep 3600", 2))
	done := make(chan string)
	go func() {
		out, _, _ := kube(t, root, "rollout", "status", "deployment", "rec", "--timeout", "60s")
		done <- out
	}()
	var out string
	for out == "" {
		select {
		case out = <-done:
		case <-time.After(20 * time.Millisecond):
			hashes := map[string]bool{}
			for _, p := range storedPods(t, root, "rec") {
				hashes[p.hash] = true
			}
			if len(hashes) > 1 {
				t.Fatalf("old and new pods at once with Recreate: %v", storedPods(t, root, "rec"))
			}
		}
	}
	want := "Waiting for deployment \"rec\" rollout to finish: 0 out of 2 new replicas have been updated...\n" +
		"Waiting for deployment \"rec\" rollout to finish: 0 of 2 updated replicas are available...\n"
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "deployment \"rec\" successfully rolled out\n") {
		t.Errorf("rollout status printed:\n%s\nwant it to start with:\n%sand end with success", out, want)
	}
	for _, p := range storedPods(t, root, "rec") {
		if p.hash == oldHash {
			t.Errorf("old pod %s left", p.name)
		}
	}
	// Bad strategies are the API server's errors.
	for _, tc := range []struct{ strategy, want string }{
		{"  strategy:\n    type: Recreate\n    rollingUpdate:\n      maxSurge: 1", "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"},
		{"  strategy:\n    rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 0", "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0\": may not be 0 when `maxSurge` is 0"},
		{"  strategy:\n    type: Blue", `spec.strategy.type: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"`},
	} {
		applyRefused(t, root, rolloutManifest("bad", tc.strategy, fx.Busybox.Ref, "true", 1), tc.want)
	}
}
