package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeManifest writes a manifest to a file of the test's.
func writeManifest(t *testing.T, manifest string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// apply --wait returns once the pod is Ready, and fails at once, naming
// the reason and `hull why`, for a pod that will not get ready; `hull
// kube wait` is kubectl's.
func TestKubeApplyWait(t *testing.T) {
	root, fx := kubeEnv(t)
	pod := func(name, cmd string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels:\n    app: w\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n    command: [\"sh\", \"-c\", %s]\n",
			name, fx.Busybox.Ref, strconvQuote(cmd))
	}
	applyYAML(t, root, pod("ready", "sleep 600"))
	path := writeManifest(t, pod("ready2", "sleep 600"))
	if out := mustKube(t, root, "apply", "-f", path, "--wait", "--timeout", "1m"); out != "pod/ready2 created\n" {
		t.Errorf("apply --wait printed %q", out)
	}
	// Ready as soon as apply --wait returned, without another look.
	if got := mustKube(t, root, "get", "pod", "ready2", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
		t.Errorf("after apply --wait: Ready=%q", got)
	}
	// A pod applied again (unchanged) is waited for too.
	if out := mustKube(t, root, "apply", "-f", path, "--wait"); out != "pod/ready2 unchanged\n" {
		t.Errorf("apply --wait again printed %q", out)
	}

	// A crash loop ends the wait at once (the timeout is far). (An app
	// container that crashes is Ready while it runs, as with kubelet: an
	// init container that fails keeps the pod from ever being Ready.)
	path = writeManifest(t, strings.Replace(pod("crash", "sleep 600"), "  containers:\n", "  initContainers:\n  - name: init\n    image: "+fx.Busybox.Ref+"\n    command: [\"sh\", \"-c\", \"exit 3\"]\n  containers:\n", 1))
	_, errOut, err := kube(t, root, "apply", "-f", path, "--wait", "--timeout", "2m")
	if err == nil || !strings.Contains(errOut, "pod/crash will not get ready: container init: CrashLoopBackOff") || !strings.Contains(errOut, "hull why pod/crash") {
		t.Errorf("apply --wait of a crashing pod: err %v, stderr %q", err, errOut)
	}
	// A timeout says what it waited for.
	path = writeManifest(t, pod("slow", "sleep 600")+"    readinessProbe:\n      exec:\n        command: [\"false\"]\n      periodSeconds: 1\n")
	_, errOut, err = kube(t, root, "apply", "-f", path, "--wait", "--timeout", "2s")
	if err == nil || !strings.Contains(errOut, "timed out after 2s waiting for pod/slow to be ready") {
		t.Errorf("apply --wait of a pod never ready: err %v, stderr %q", err, errOut)
	}

	if out := mustKube(t, root, "wait", "--for=condition=Ready", "pod/ready", "--timeout", "1m"); out != "pod/ready condition met\n" {
		t.Errorf("wait --for=condition=Ready: %q", out)
	}
	if out := mustKube(t, root, "wait", "--for=condition=ready=true", "pods", "ready", "ready2"); out != "pod/ready condition met\npod/ready2 condition met\n" {
		t.Errorf("wait two pods: %q", out)
	}
	if _, errOut, err := kube(t, root, "wait", "--for=condition=Ready", "pod/slow", "--timeout", "1s"); err == nil || !strings.Contains(errOut, "timed out waiting for the condition on pods/slow") {
		t.Errorf("wait timeout: err %v, stderr %q", err, errOut)
	}
	if _, errOut, err := kube(t, root, "wait", "--for=ready", "pod/ready"); err == nil || !strings.Contains(errOut, "unrecognized condition") {
		t.Errorf("wait --for=ready: err %v, stderr %q", err, errOut)
	}
	mustKube(t, root, "delete", "pod", "ready", "--wait=false", "--grace-period", "1")
	if out := mustKube(t, root, "wait", "--for=delete", "pod/ready", "--timeout", "1m"); out != "pod/ready condition met\n" {
		t.Errorf("wait --for=delete: %q", out)
	}
	if _, errOut, err := kube(t, root, "get", "pod", "ready"); err == nil || !strings.Contains(errOut, `pods "ready" not found`) {
		t.Errorf("pod ready after wait --for=delete: err %v, stderr %q", err, errOut)
	}
}

// What a container writes to its terminationMessagePath (any user may)
// becomes its terminated state's message; with FallbackToLogsOnError a
// failed container that wrote nothing gets the end of its log.
func TestKubeTerminationMessage(t *testing.T) {
	root, fx := kubeEnv(t)
	m := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: msg
spec:
  restartPolicy: Never
  securityContext:
    runAsUser: 1000
  containers:
  - name: file
    image: %[1]s
    command: ["sh", "-c", "echo 'disk full' > /dev/termination-log; exit 1"]
  - name: custom
    image: %[1]s
    terminationMessagePath: /tmp/why
    command: ["sh", "-c", "echo done > /tmp/why"]
  - name: logs
    image: %[1]s
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["sh", "-c", "echo first; echo 'last words'; exit 4"]
  - name: quiet
    image: %[1]s
    command: ["sh", "-c", "echo not a message; exit 5"]
`, fx.Busybox.Ref)
	applyYAML(t, root, m)
	waitPod(t, root, "msg", "Failed", func(p podJSON) bool { return p.Status.Phase == "Failed" })
	want := map[string]string{"file": "disk full\n", "custom": "done\n", "logs": "first\nlast words\n", "quiet": ""}
	for name, msg := range want {
		got := mustKube(t, root, "get", "pod", "msg", "-o", fmt.Sprintf(`jsonpath={.status.containerStatuses[?(@.name=="%s")].state.terminated.message}`, name))
		if got != msg {
			t.Errorf("container %s: termination message %q, want %q", name, got, msg)
		}
	}
	if out := mustKube(t, root, "describe", "pod", "msg"); !regexp.MustCompile(`Message:\s+disk full\n`).MatchString(out) {
		t.Errorf("describe lacks the message:\n%s", out)
	}
}

// Every field a manifest sets that hull kube does not apply gets a
// warning at apply (podman drops them silently), and the pod runs.
func TestKubeUnappliedWarnings(t *testing.T) {
	root, fx := kubeEnv(t)
	m := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: warned
spec:
  nodeSelector:
    disk: ssd
  priorityClassName: high
  securityContext:
    seLinuxOptions:
      level: s0
  containers:
  - name: c
    image: %s
    command: ["sleep", "600"]
`, fx.Busybox.Ref)
	_, errOut, err := kubeStdin(t, root, m, "apply", "-f", "-", "--wait")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"Warning: pod/warned: spec.nodeSelector: not applied by hull kube (one node: nothing is scheduled)\n",
		"Warning: pod/warned: spec.priorityClassName: not applied by hull kube",
		"Warning: pod/warned: spec.securityContext.seLinuxOptions: not applied by hull kube (no SELinux on this node)\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("apply stderr lacks %q:\n%s", want, errOut)
		}
	}
	if n := strings.Count(errOut, "Warning: "); n != 3 {
		t.Errorf("%d warnings, want 3:\n%s", n, errOut)
	}
}

// Pod-level failures, kubelet's way: sysctls beyond the safe set refuse
// the pod before anything starts (SysctlForbidden); safe ones are set in
// the pod's namespaces; activeDeadlineSeconds kills a pod that runs too
// long (DeadlineExceeded).
func TestKubePodLevelFailures(t *testing.T) {
	root, fx := kubeEnv(t)
	m := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: tuned
spec:
  securityContext:
    sysctls:
    - name: net.ipv4.ip_unprivileged_port_start
      value: "99"
    - name: kernel/shm_rmid_forced
      value: "1"
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced; sleep 600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: unsafe
spec:
  securityContext:
    sysctls:
    - name: kernel.msgmax
      value: "1000"
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: deadline
spec:
  activeDeadlineSeconds: 2
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
`, fx.Busybox.Ref)
	applyYAML(t, root, m)
	waitPod(t, root, "tuned", "Running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out := mustKube(t, root, "logs", "tuned")
		if out == "99\n1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("sysctls in the pod: %q, want 99 and 1", out)
			break
		}
	}
	jp := func(name, path string) string { return mustKube(t, root, "get", "pod", name, "-o", "jsonpath="+path) }
	waitPod(t, root, "unsafe", "Failed", func(p podJSON) bool { return p.Status.Phase == "Failed" })
	if got := jp("unsafe", "{.status.reason}: {.status.message}"); got != `SysctlForbidden: Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted` {
		t.Errorf("unsafe: %s", got)
	}
	if out := mustKube(t, root, "get", "pod", "unsafe"); !regexp.MustCompile(`unsafe\s+0/1\s+SysctlForbidden\s+0\s`).MatchString(out) {
		t.Errorf("get pod unsafe:\n%s", out)
	}
	if out := mustHull(t, root, "pod", "ls", "-A", "--format", "{{.Name}}"); strings.Contains(out, "_unsafe_") {
		t.Errorf("a sandbox was made for the refused pod: %s", out)
	}
	if out := mustHull(t, root, "why", "pod/unsafe"); !strings.Contains(out, "a sysctl it sets is not in kubelet's safe set") || !strings.Contains(out, `"kernel.msgmax" not allowlisted`) {
		t.Errorf("why pod/unsafe:\n%s", out)
	}
	p := waitPod(t, root, "deadline", "Failed", func(p podJSON) bool { return p.Status.Phase == "Failed" })
	if got := jp("deadline", "{.status.reason}: {.status.message}"); got != "DeadlineExceeded: Pod was active on the node longer than the specified deadline" {
		t.Errorf("deadline: %s", got)
	}
	if tm := p.Status.ContainerStatuses[0].State.Terminated; tm == nil || tm.ExitCode != 137 && tm.ExitCode != 143 {
		t.Errorf("deadline: container state %+v, want terminated by a signal", p.Status.ContainerStatuses[0].State)
	}
	if out := mustHull(t, root, "why", "pod/deadline"); !strings.Contains(out, "longer than its activeDeadlineSeconds") {
		t.Errorf("why pod/deadline:\n%s", out)
	}
}

// Every hull kube command reconciles, and the ones that wait reconcile
// each round: a pod whose supervisor died gets another from exec, and
// from a wait (which would otherwise wait out its timeout, as nothing
// runs the readiness probe) and a get -w that were already waiting when
// the supervisor died.
func TestKubeReconcileEveryCommand(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["sleep", "600"]
    readinessProbe:
      exec:
        command: ["cat", "/tmp/ready"]
      periodSeconds: 1
`, fx.Busybox.Ref))
	waitPod(t, root, "probed", "running", running)
	id := strings.TrimPrefix(getPod(t, root, "probed").Status.ContainerStatuses[0].ContainerID, "hull://")
	dir := filepath.Join(root, "kube", "pods", "default", "probed")

	// exec: a new supervisor, seen without another hull kube command.
	old := killSupervisor(t, dir)
	mustKube(t, root, "exec", "probed", "--", "true")
	waitNewSupervisor(t, root, dir, old)

	// wait, when the supervisor dies while it waits: the probe passes
	// only once a supervisor runs it, and only wait's reconcile each
	// round can start one (no other hull kube command runs meanwhile).
	// The supervisor is killed before wait starts too, so that the new
	// one shows wait's own first reconcile done; then that one is
	// killed.
	old = killSupervisor(t, dir)
	waitOut, waitErr, waited := startKubeWait(t, root, "wait", "--for=condition=Ready", "pod/probed", "--timeout", "30s")
	waitNewSupervisor(t, root, dir, old)
	killSupervisor(t, dir)
	mustHull(t, root, "exec", id, "touch", "/tmp/ready")
	if err := waited(); err != nil || waitOut.String() != "pod/probed condition met\n" {
		t.Errorf("wait: %v\nstdout: %s\nstderr: %s", err, waitOut, waitErr)
	}

	// get -w, watching when the supervisor dies: the pod goes unready
	// only once a supervisor probes it again.
	watched := startKube(t, root, "get", "pods", "-w")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("get -w printed:\n%s", watched.String())
		}
	})
	waitKube(t, root, "probed", "shown ready by get -w", func() bool {
		return regexp.MustCompile(`probed\s+1/1\s+Running`).MatchString(watched.String())
	})
	killSupervisor(t, dir)
	mustHull(t, root, "exec", id, "rm", "/tmp/ready")
	waitKube(t, root, "probed", "shown unready by get -w (no supervisor restarted)", func() bool {
		return regexp.MustCompile(`probed\s+0/1\s+Running`).MatchString(watched.String())
	})
}

// get -w streams the other formats too, as kubectl: -o name prints
// pod/NAME for each change, -o json one object after another, -o yaml
// documents separated by ---. A name with -l is refused, as kubectl
// does.
func TestKubeWatchFormats(t *testing.T) {
	root, fx := kubeEnv(t)
	names := startKube(t, root, "get", "pods", "-w", "-o", "name")
	jsons := startKube(t, root, "get", "pods", "-w", "-o", "json")
	yamls := startKube(t, root, "get", "pods", "-w", "-o", "yaml", "-l", "app=w")
	applyYAML(t, root, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: w1\n  labels:\n    app: w\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n    command: [\"sleep\", \"600\"]\n", fx.Busybox.Ref))
	waitPod(t, root, "w1", "running", running)
	// Each watch has printed the pod running, after at least one earlier
	// version of it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var phases []string
		dec := json.NewDecoder(strings.NewReader(jsons.String()))
		for {
			var p struct {
				Metadata struct{ Name string }
				Status   struct{ Phase string }
			}
			if dec.Decode(&p) != nil {
				break
			}
			phases = append(phases, p.Metadata.Name+":"+p.Status.Phase)
		}
		docs := strings.Split(yamls.String(), "\n---\n")
		lines := strings.Split(strings.TrimSuffix(names.String(), "\n"), "\n")
		ok := len(phases) >= 2 && phases[len(phases)-1] == "w1:Running" &&
			len(docs) >= 2 && strings.Contains(docs[len(docs)-1], "phase: Running") && strings.Contains(docs[0], "  name: w1\n") &&
			len(lines) >= 2 && slices.Equal(slices.Compact(lines), []string{"pod/w1"})
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get -w: -o json phases %v; -o yaml %d documents:\n%s\n-o name:\n%s", phases, len(docs), yamls.String(), names.String())
		}
	}
	if _, errOut, err := kube(t, root, "get", "pods", "w1", "-l", "app=w"); err == nil || !strings.Contains(errOut, "error: name cannot be provided when a selector is specified") {
		t.Errorf("get pods NAME -l: %v %q", err, errOut)
	}
}
