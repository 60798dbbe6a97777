package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestKubeWhy: `hull why pod/NAME` names the course's diagnostic split
// for `hull kube` pods from their recorded status and events: the
// image (the registry's error), the config (runAsNonRoot with a root
// image, and how to fix it), the process (exit code, last output), the
// memory limit (OOM), a probe (its output); describe's Events say the
// same.
func TestKubeWhy(t *testing.T) {
	root, fx := kubeEnv(t)
	pod := func(name, extra string, cmd string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n    command: [\"sh\", \"-c\", %s]\n%s", name, fx.Busybox.Ref, strconvQuote(cmd), extra)
	}
	missing := fx.Busybox.Repo + ":no-such-tag"
	applyYAML(t, root, strings.Join([]string{
		strings.Replace(pod("pull", "", "true"), fx.Busybox.Ref, missing, 1),
		pod("root", "    securityContext:\n      runAsNonRoot: true\n", "sleep 600"),
		pod("crash", "", "echo dying here; exit 3"),
		pod("oom", "    resources:\n      limits:\n        memory: 20Mi\n", "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done"),
		pod("probe", "    livenessProbe:\n      exec:\n        command: [\"cat\", \"/tmp/healthy\"]\n      periodSeconds: 1\n      failureThreshold: 1\n", "sleep 600"),
		pod("fine", "", "sleep 600"),
	}, "---\n"))

	why := func(name string, want ...string) string {
		t.Helper()
		var out string
		waitKube(t, root, name, "diagnosed", func() bool {
			out = mustHull(t, root, "why", "pod/"+name)
			for _, w := range want {
				if !strings.Contains(out, w) {
					return false
				}
			}
			return true
		})
		return out
	}
	why("pull", "Container: pod/pull", "Stage:     image pull", "container c: the image "+missing+" could not be pulled", "no-such-tag", "hull pull "+missing)
	why("root", "Stage:     create", "runAsNonRoot is set and the image runs as root", "container has runAsNonRoot and image will run as root", "securityContext.runAsUser")
	why("crash", "Stage:     exited", "container c: its process exits with code 3 (Error)", "dying here", "hull kube logs crash -c c -p")
	// The limit and the container's peak usage, a real figure: more
	// than nothing, not above the limit.
	out := why("oom", "killed by the kernel's OOM killer (exit code 137)", "memory limit 20.0MiB, peak usage ", "resources.limits.memory")
	if m := regexp.MustCompile(`peak usage (\d+\.\d)(B|KiB|MiB)`).FindStringSubmatch(out); m == nil {
		t.Errorf("why oom: no peak usage:\n%s", out)
	} else if v, _ := strconv.ParseFloat(m[1], 64); v == 0 || m[2] == "MiB" && v > 20 {
		t.Errorf("why oom: peak usage %s%s; want more than 0, at most the 20MiB limit", m[1], m[2])
	}
	why("probe", "Stage:     running", "its liveness probe fails, so kubelet kills and restarts it", "Liveness probe failed: cat: can't open '/tmp/healthy'")
	why("fine", "Stage:     running", "running, every container ready (1)")
	if out := mustKube(t, root, "describe", "pod", "root"); !strings.Contains(out, "Error: container has runAsNonRoot and image will run as root") {
		t.Errorf("describe root:\n%s", out)
	}
	// NAMESPACE/NAME names it too; an unknown pod is an error.
	if out := mustHull(t, root, "why", "pod/default/crash"); !strings.Contains(out, "exits with code 3") {
		t.Errorf("why pod/default/crash:\n%s", out)
	}
	if _, errOut, err := hull(t, root, "why", "pod/nosuch"); err == nil {
		t.Errorf("why pod/nosuch succeeded: %s", errOut)
	}
}
