package main

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

// Sidecar containers (init containers with restartPolicy Always): the
// next init container waits for the sidecar's start (its startup probe),
// not its end; it counts in READY; it restarts whatever the pod's policy;
// the pod's phase is its app containers', and the sidecar is stopped
// once they have completed.
func TestKubeSidecars(t *testing.T) {
	root, fx := kubeEnv(t)
	m := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: withside
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes:
  - name: shared
    emptyDir: {}
  initContainers:
  - name: side
    image: %[1]s
    restartPolicy: Always
    command: ["sh", "-c", "sleep 1; echo up > /shared/side; exec sleep 600"]
    startupProbe:
      exec:
        command: ["test", "-f", "/shared/side"]
      periodSeconds: 1
    volumeMounts:
    - name: shared
      mountPath: /shared
  - name: init
    image: %[1]s
    command: ["sh", "-c", "cat /shared/side"]
    volumeMounts:
    - name: shared
      mountPath: /shared
  containers:
  - name: app
    image: %[1]s
    command: ["sh", "-c", "sleep 3"]
---
apiVersion: v1
kind: Pod
metadata:
  name: flaky
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: side
    image: %[1]s
    restartPolicy: Always
    command: ["sh", "-c", "sleep 1; exit 1"]
  containers:
  - name: app
    image: %[1]s
    command: ["sleep", "600"]
`, fx.Busybox.Ref)
	applyYAML(t, root, m)
	waitPod(t, root, "withside", "Running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	if out := mustKube(t, root, "logs", "withside", "-c", "init"); out != "up\n" {
		t.Errorf("the init container ran before the sidecar had started: %q", out)
	}
	if out := mustKube(t, root, "get", "pod", "withside"); !regexp.MustCompile(`withside\s+2/2\s+Running\s+0\s`).MatchString(out) {
		t.Errorf("get pod withside while running:\n%s", out)
	}
	waitPod(t, root, "withside", "Succeeded", func(p podJSON) bool { return p.Status.Phase == "Succeeded" })
	if got := mustKube(t, root, "get", "pod", "withside", "-o", `jsonpath={.status.initContainerStatuses[0].state.running}`); got != "" {
		t.Errorf("the sidecar still runs after the pod succeeded: %s", got)
	}
	if out := mustKube(t, root, "get", "pod", "withside"); !regexp.MustCompile(`withside\s+0/2\s+Completed\s+0\s`).MatchString(out) {
		t.Errorf("get pod withside after:\n%s", out)
	}

	// Restarted although the pod's policy is Never.
	waitPod(t, root, "flaky", "sidecar restarted", func(p podJSON) bool {
		n, _ := strconv.Atoi(mustKube(t, root, "get", "pod", "flaky", "-o", "jsonpath={.status.initContainerStatuses[0].restartCount}"))
		return p.Status.Phase == "Running" && n >= 1
	})
}
