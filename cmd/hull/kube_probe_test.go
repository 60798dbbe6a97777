package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// podCondition is the status of one of a pod's conditions ("" if none).
func podCondition(t *testing.T, root, name, typ string) string {
	t.Helper()
	var p struct {
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
			ContainerStatuses []struct {
				Ready   bool  `json:"ready"`
				Started *bool `json:"started"`
			} `json:"containerStatuses"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", name, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// waitKube polls cond for a minute, failing with the pod's description.
func waitKube(t *testing.T, root, pod, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			out, _, _ := kube(t, root, "describe", "pod", pod)
			t.Fatalf("pod %s: not %s after a minute:\n%s", pod, what, out)
		}
	}
}

// TestKubeProbes runs probes as kubelet does: a failing liveness probe
// kills and restarts its container (Unhealthy with the probe's output,
// Killing), readiness flips the container's ready and the Ready
// condition both ways, httpGet and tcpSocket reach the pod's IP from the
// host, and a startup probe holds readiness back.
func TestKubeProbes(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: live
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: ready
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
    readinessProbe:
      exec:
        command: ["cat", "/tmp/ready"]
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %[1]s
    command: ["sh", "-c", %[2]s]
    ports:
    - name: http
      containerPort: 80
    startupProbe:
      tcpSocket:
        port: 80
      periodSeconds: 1
      failureThreshold: 30
    readinessProbe:
      httpGet:
        path: /
        port: http
      periodSeconds: 1
    livenessProbe:
      httpGet:
        path: /nope
        port: 80
      initialDelaySeconds: 3
      periodSeconds: 1
      failureThreshold: 2
`, fx.Busybox.Ref, strconvQuote("sleep 1; "+httpdScript("web"))))

	// Liveness: the container is killed and restarted, again and again.
	p := waitPod(t, root, "live", "restarted twice by its liveness probe", func(p podJSON) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	if lt := p.Status.ContainerStatuses[0].LastState.Terminated; lt == nil || lt.ExitCode != 137 {
		t.Errorf("live: last state %+v; want killed (137)", lt)
	}
	out := mustKube(t, root, "describe", "pod", "live")
	for _, want := range []string{
		`Warning\s+Unhealthy\s+.*Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory`,
		`Normal\s+Killing\s+.*Container c failed liveness probe, will be restarted`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe live lacks %s:\n%s", want, out)
		}
	}

	// Readiness: not ready while the probe fails; ready once it passes;
	// not ready again when it fails again. The container keeps running.
	waitPod(t, root, "ready", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	if out := mustKube(t, root, "get", "pod", "ready"); !regexp.MustCompile(`ready\s+0/1\s+Running\s+0\s`).MatchString(out) {
		t.Errorf("get pod ready before the probe passes:\n%s", out)
	}
	if c := podCondition(t, root, "ready", "Ready"); c != "False" {
		t.Errorf("Ready condition %q before the probe passes", c)
	}
	mustKube(t, root, "exec", "ready", "--", "touch", "/tmp/ready")
	waitKube(t, root, "ready", "Ready", func() bool { return podCondition(t, root, "ready", "Ready") == "True" })
	if c := podCondition(t, root, "ready", "ContainersReady"); c != "True" {
		t.Errorf("ContainersReady %q with the probe passing", c)
	}
	if out := mustKube(t, root, "get", "pod", "ready"); !regexp.MustCompile(`ready\s+1/1\s+Running\s+0\s`).MatchString(out) {
		t.Errorf("get pod ready with the probe passing:\n%s", out)
	}
	mustKube(t, root, "exec", "ready", "--", "rm", "/tmp/ready")
	waitKube(t, root, "ready", "unready again", func() bool { return podCondition(t, root, "ready", "Ready") == "False" })
	if out := mustKube(t, root, "describe", "pod", "ready"); !strings.Contains(out, "Readiness probe failed: cat: can't open '/tmp/ready'") {
		t.Errorf("describe ready:\n%s", out)
	}
	if p := getPod(t, root, "ready"); p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("a failing readiness probe restarted the container: %+v", p.Status.ContainerStatuses[0])
	}

	// httpGet and tcpSocket from the host into the pod's IP: the startup
	// probe (tcpSocket) passes once httpd listens, readiness (httpGet on
	// the named port) follows; liveness GETs a path that is not there.
	waitKube(t, root, "web", "Ready", func() bool { return podCondition(t, root, "web", "Ready") == "True" })
	p = waitPod(t, root, "web", "restarted by its httpGet liveness probe", func(p podJSON) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	out = mustKube(t, root, "describe", "pod", "web")
	for _, want := range []string{
		`Liveness probe failed: HTTP probe failed with statuscode: 404`,
		`Container web failed liveness probe, will be restarted`,
		`Startup probe failed: dial tcp [0-9.]+:80: connect: connection refused`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe web lacks %s:\n%s", want, out)
		}
	}
}

// TestKubeProbeBadInput: probes and hooks are checked as the API server
// does.
func TestKubeProbeBadInput(t *testing.T) {
	root, fx := kubeEnv(t)
	for _, c := range []struct {
		probe, want string
		init        bool
	}{
		{"livenessProbe:\n      exec:\n        command: [\"true\"]\n      successThreshold: 2", `spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1`, false},
		{"readinessProbe:\n      periodSeconds: 1", `spec.containers[0].readinessProbe: Required value: must specify a handler type`, false},
		{"startupProbe:\n      httpGet:\n        port: web", `spec.containers[0].startupProbe.httpGet.port: Invalid value: "web"`, false},
		{"livenessProbe:\n      exec:\n        command: [\"true\"]", `spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always`, true},
		{"lifecycle:\n      preStop:\n        exec:\n          command: [\"true\"]", `spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always`, true},
		{"lifecycle:\n      postStart:\n        httpGet:\n          port: 0", `spec.containers[0].lifecycle.postStart.httpGet.port: Invalid value: "0": must be between 1 and 65535, inclusive`, false},
	} {
		m := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n    image: %s\n    %s\n", fx.Busybox.Ref, c.probe)
		if c.init {
			m = strings.Replace(m, "  containers:", "  containers:\n  - name: app\n    image: "+fx.Busybox.Ref+"\n  initContainers:", 1)
		}
		_, errOut, err := kubeStdin(t, root, m, "apply", "-f", "-")
		if err == nil || !strings.Contains(errOut, c.want) {
			t.Errorf("apply with %s: %v, stderr %q; want %q", c.probe, err, errOut, c.want)
		}
	}
	if out := mustKube(t, root, "get", "pods", "-o", "name"); out != "" {
		t.Errorf("a bad pod was created: %s", out)
	}
}
