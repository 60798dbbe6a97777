package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Init containers run one after another, in the manifest's order, each to
// completion, before the app containers: the second starts only after the
// first has ended, and the app sees what both wrote, in order.
func TestKubeInitContainersInOrder(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: ordered
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: work
    emptyDir: {}
  initContainers:
  - name: one
    image: %[1]s
    command: ["sh", "-c", "sleep 0.3; echo one >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: two
    image: %[1]s
    command: ["sh", "-c", "echo two >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: %[1]s
    command: ["sh", "-c", "cat /work/order; exec sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
`, fx.Busybox.Ref))
	waitPod(t, root, "ordered", "running", running)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out := mustKube(t, root, "logs", "ordered", "-c", "app"); out == "one\ntwo\n" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the app read %q; want one, then two", out)
		}
	}
	var st struct {
		Status struct {
			InitContainerStatuses []struct {
				Name  string `json:"name"`
				State struct {
					Terminated *struct {
						Reason     string    `json:"reason"`
						StartedAt  time.Time `json:"startedAt"`
						FinishedAt time.Time `json:"finishedAt"`
					} `json:"terminated"`
				} `json:"state"`
			} `json:"initContainerStatuses"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", "ordered", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	is := st.Status.InitContainerStatuses
	if len(is) != 2 || is[0].Name != "one" || is[1].Name != "two" || is[0].State.Terminated == nil || is[1].State.Terminated == nil {
		t.Fatalf("init container statuses %+v; want one and two, both terminated", is)
	}
	one, two := is[0].State.Terminated, is[1].State.Terminated
	if one.Reason != "Completed" || two.Reason != "Completed" || two.StartedAt.Before(one.FinishedAt) {
		t.Errorf("one %+v, two %+v: want both Completed, two started after one finished", one, two)
	}
}
