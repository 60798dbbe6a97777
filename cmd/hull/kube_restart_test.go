package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// restartPod is one container's status as `get pod -o json` prints it,
// with the messages podJSON leaves out.
type restartPod struct {
	Status struct {
		Phase             string `json:"phase"`
		ContainerStatuses []struct {
			RestartCount int `json:"restartCount"`
			State        struct {
				Waiting *struct {
					Reason  string `json:"reason"`
					Message string `json:"message"`
				} `json:"waiting"`
				Running    *struct{}          `json:"running"`
				Terminated *restartTerminated `json:"terminated"`
			} `json:"state"`
			LastState struct {
				Terminated *restartTerminated `json:"terminated"`
			} `json:"lastState"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

type restartTerminated struct {
	Reason   string `json:"reason"`
	Message  string `json:"message"`
	ExitCode int    `json:"exitCode"`
}

func getRestartPod(t *testing.T, root, name string) restartPod {
	t.Helper()
	var p restartPod
	out := mustKube(t, root, "get", "pod", name, "-o", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("get pod %s -o json: %v\n%s", name, err, out)
	}
	return p
}

// restartPolicy OnFailure (kubelet's ShouldContainerBeRestarted): a
// container that exits 0 is not restarted and its pod succeeds; one that
// exits non-zero is restarted, its last state the failed run's; a pod
// whose container fails once then exits 0 succeeds with one restart.
func TestKubeRestartOnFailure(t *testing.T) {
	root, fx := kubeEnv(t)
	marks := t.TempDir()
	pod := func(name, script string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", %s]
    volumeMounts:
    - name: marks
      mountPath: /marks
  volumes:
  - name: marks
    hostPath:
      path: %s
`, name, fx.Busybox.Ref, strconvQuote(script), marks)
	}
	applyYAML(t, root, pod("ok", "exit 0")+"---\n"+pod("fails", "echo failing; exit 4")+"---\n"+
		pod("once", "if [ -e /marks/once ]; then exit 0; fi; touch /marks/once; exit 5"))

	p := waitPod(t, root, "ok", "Succeeded", func(p podJSON) bool { return p.Status.Phase == "Succeeded" })
	cs := p.Status.ContainerStatuses[0]
	if tm := cs.State.Terminated; tm == nil || tm.Reason != "Completed" || tm.ExitCode != 0 || cs.RestartCount != 0 || cs.LastState.Terminated != nil {
		t.Errorf("ok: %+v; want terminated Completed (exit 0), no restart, no last state", cs)
	}
	if out := mustKube(t, root, "get", "pod", "ok"); !regexp.MustCompile(`(?m)^ok\s+0/1\s+Completed\s+0\s`).MatchString(out) {
		t.Errorf("get pod ok:\n%s", out)
	}

	p = waitPod(t, root, "fails", "restarted", func(p podJSON) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.LastState.Terminated != nil
	})
	cs = p.Status.ContainerStatuses[0]
	if lt := cs.LastState.Terminated; lt.ExitCode != 4 || lt.Reason != "Error" {
		t.Errorf("fails: last state %+v; want exit 4 (Error)", lt)
	}
	if p.Status.Phase != "Running" {
		t.Errorf("fails: phase %s; want Running (OnFailure restarts it)", p.Status.Phase)
	}
	if out := mustKube(t, root, "logs", "fails", "-p"); out != "failing\n" {
		t.Errorf("logs -p fails: %q", out)
	}

	p = waitPod(t, root, "once", "Succeeded", func(p podJSON) bool { return p.Status.Phase == "Succeeded" })
	cs = p.Status.ContainerStatuses[0]
	if tm := cs.State.Terminated; tm == nil || tm.Reason != "Completed" || tm.ExitCode != 0 {
		t.Errorf("once: state %+v; want terminated Completed (exit 0)", cs.State.Terminated)
	}
	if lt := cs.LastState.Terminated; cs.RestartCount != 1 || lt == nil || lt.ExitCode != 5 || lt.Reason != "Error" {
		t.Errorf("once: restarts %d, last state %+v; want 1 restart after exit 5 (Error)", cs.RestartCount, lt)
	}
}

// A container whose start fails (its command is not in the image) is
// kubelet's StartContainer failure: waiting RunContainerError with the
// runtime's message, then CrashLoopBackOff while its back-off runs, and
// so on alternately; the failed container is terminated StartError, exit
// code 128, shown as the last state from the first failure on; the pod is
// Running (a container of an Always pod has stopped), never Ready.
func TestKubeRunContainerError(t *testing.T) {
	root, fx := kubeEnv(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: nostart
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["/nonexistent"]
`, fx.Busybox.Ref)
	path := writeManifest(t, manifest)
	// Half kubelet's intervals: a RunContainerError stands until the next
	// relist (0.5 s), long enough for the polls below to see it.
	if out, errOut, err := kubeScaled(t, root, "0.5", "", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, errOut)
	}

	// Each status seen, until both reasons were seen after a restart.
	type seen struct {
		reason   string
		restarts int
	}
	var history []seen
	saw := map[seen]bool{}
	deadline := time.Now().Add(time.Minute)
	for !(saw[seen{"RunContainerError", 1}] && saw[seen{"CrashLoopBackOff", 1}]) {
		if time.Now().After(deadline) {
			out, _, _ := kube(t, root, "describe", "pod", "nostart")
			t.Fatalf("no RunContainerError and CrashLoopBackOff after a restart within a minute; seen %v\n%s", history, out)
		}
		p := getRestartPod(t, root, "nostart")
		if len(p.Status.ContainerStatuses) == 0 { // no status recorded yet
			time.Sleep(20 * time.Millisecond)
			continue
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.State.Running != nil || cs.State.Terminated != nil {
			t.Fatalf("nostart: state %+v; want it waiting", cs.State)
		}
		w := cs.State.Waiting
		if w == nil || w.Reason == "ContainerCreating" {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		s := seen{w.Reason, cs.RestartCount}
		if !saw[s] {
			saw[s] = true
			history = append(history, s)
		}
		switch w.Reason {
		case "RunContainerError":
			if !strings.Contains(w.Message, "/nonexistent") {
				t.Errorf("RunContainerError message %q; want the runtime's, naming /nonexistent", w.Message)
			}
		case "CrashLoopBackOff":
			if !regexp.MustCompile(`^back-off \d+s restarting failed container=c pod=nostart_default\(`).MatchString(w.Message) {
				t.Errorf("CrashLoopBackOff message %q", w.Message)
			}
		default:
			t.Fatalf("nostart: waiting %q (%s); want RunContainerError or CrashLoopBackOff", w.Reason, w.Message)
		}
		if lt := cs.LastState.Terminated; lt == nil || lt.Reason != "StartError" || lt.ExitCode != 128 || !strings.Contains(lt.Message, "/nonexistent") {
			t.Fatalf("nostart: waiting %s with last state %+v; want StartError, exit code 128, the runtime's message", w.Reason, lt)
		}
		if p.Status.Phase != "Running" {
			t.Errorf("nostart: phase %s while %s; want Running", p.Status.Phase, w.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// kubelet's order: the first start fails, then the back-off, then the
	// restart fails.
	if len(history) < 3 || history[0] != (seen{"RunContainerError", 0}) || history[1] != (seen{"CrashLoopBackOff", 0}) {
		t.Errorf("statuses seen %v; want RunContainerError then CrashLoopBackOff, then the restart's", history)
	}
	out := mustKube(t, root, "describe", "pod", "nostart")
	if !regexp.MustCompile(`Last State:\s+Terminated\n\s+Reason:\s+StartError\n\s+Message:\s+.*/nonexistent`).MatchString(out) {
		t.Errorf("describe lacks the StartError last state:\n%s", out)
	}
	if !regexp.MustCompile(`Warning\s+Failed\s+.*Error: .*/nonexistent`).MatchString(out) || !strings.Contains(out, "Back-off restarting failed container c in pod nostart_default(") {
		t.Errorf("describe lacks the Failed and BackOff events:\n%s", out)
	}
	if out := mustKube(t, root, "get", "pod", "nostart"); !regexp.MustCompile(`(?m)^nostart\s+0/1\s+(RunContainerError|CrashLoopBackOff)\s+\d`).MatchString(out) {
		t.Errorf("get pod nostart:\n%s", out)
	}
}

// With restartPolicy Never a container whose start failed is not tried
// again: it stays terminated StartError (exit code 128, the runtime's
// message) and the pod fails.
func TestKubeRunContainerErrorNever(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: nostart
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["/nonexistent"]
`, fx.Busybox.Ref))
	waitPod(t, root, "nostart", "Failed", func(p podJSON) bool { return p.Status.Phase == "Failed" })
	p := getRestartPod(t, root, "nostart")
	cs := p.Status.ContainerStatuses[0]
	if tm := cs.State.Terminated; tm == nil || tm.Reason != "StartError" || tm.ExitCode != 128 || !strings.Contains(tm.Message, "/nonexistent") {
		t.Errorf("nostart: state %+v; want terminated StartError, exit code 128, the runtime's message", cs.State)
	}
	if cs.RestartCount != 0 || cs.LastState.Terminated != nil {
		t.Errorf("nostart: restarts %d, last state %+v; want neither", cs.RestartCount, cs.LastState.Terminated)
	}
	if out := mustKube(t, root, "get", "pod", "nostart"); !regexp.MustCompile(`(?m)^nostart\s+0/1\s+StartError\s+0\s`).MatchString(out) {
		t.Errorf("get pod nostart:\n%s", out)
	}
}
