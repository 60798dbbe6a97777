package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// `hull why pod/NAME` for a pod `hull kube` runs. Its supervisor
// (internal/kube) records the pod's v1.PodStatus and events under
// KubePodsDir: they hold what the engine cannot see, a pull that failed
// before any container existed, a config kubelet refused, a probe that
// failed. The engine reads them as plain JSON (it links no Kubernetes
// types) and names the course's diagnostic split: the image, the
// config, the process (exit code, last output), the memory limit, a
// probe; the containers' own diagnoses come from Why.

// KubePodsDir is where `hull kube` records its pods under a hull root
// (<namespace>/<name>/ with pod.json, status.json, events.json).
func KubePodsDir(root string) string { return filepath.Join(root, "kube", "pods") }

// KubeApplyEnv is set by `hull kube apply` (cmd/hull/kube_apply.go) in
// the environment of the hull-cri it runs as its child for apply: the fd
// on which that child reports its exit status before it stays, detached,
// as the supervisor of the first pod it records (internal/kube/applier.go).
const KubeApplyEnv = "_HULL_KUBE_APPLY"

// KubeSpareEnv is set beside KubeApplyEnv when hull started the pod's
// spare monitor itself (cmd/hull/kubefast.c), as the child's child: its
// pid; the child adopts it (AdoptSpare) from fds KubeSpareSyncFD (its
// start report) and KubeSpareIDFD (its container's ID).
const (
	KubeSpareEnv    = "_HULL_KUBE_SPARE"
	KubeSpareSyncFD = 4
	KubeSpareIDFD   = 5
)

// The parts of a v1.PodStatus and of hull kube's events a diagnosis
// reads (their JSON names).
type (
	kubePodStatus struct {
		Phase                 string            `json:"phase"`
		Reason                string            `json:"reason"`
		Message               string            `json:"message"`
		InitContainerStatuses []kubeContainerSt `json:"initContainerStatuses"`
		ContainerStatuses     []kubeContainerSt `json:"containerStatuses"`
	}
	kubeContainerSt struct {
		Name         string        `json:"name"`
		Image        string        `json:"image"`
		Ready        bool          `json:"ready"`
		RestartCount int           `json:"restartCount"`
		ContainerID  string        `json:"containerID"`
		State        kubeContState `json:"state"`
		LastState    kubeContState `json:"lastState"`
	}
	kubeContState struct {
		Waiting *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"waiting"`
		Running    *struct{}       `json:"running"`
		Terminated *kubeTerminated `json:"terminated"`
	}
	kubeTerminated struct {
		ExitCode    int    `json:"exitCode"`
		Reason      string `json:"reason"`
		ContainerID string `json:"containerID"`
	}
	kubeEvent struct {
		Type    string `json:"type"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
		Count   int    `json:"count"`
	}
)

// kubePodDir is the recorded `hull kube` pod ref names (NAME or
// NAMESPACE/NAME, else the Kubernetes pod of sandbox p), or "".
func (e *Engine) kubePodDir(ref string, p *Pod) string {
	ns, name := "default", ref
	if p != nil {
		if !p.Kubernetes() {
			return ""
		}
		ns, name = p.Config.Labels[labelCRIPodNamespace], p.Config.Labels[labelCRIPodName]
	} else if n, m, ok := strings.Cut(ref, "/"); ok {
		ns, name = n, m
	}
	if ns == "" || name == "" || strings.Contains(ns+name, "/") || strings.HasPrefix(name, ".") {
		return ""
	}
	dir := filepath.Join(KubePodsDir(e.cfg.Root), ns, name)
	if _, err := os.Stat(filepath.Join(dir, "pod.json")); err != nil {
		return ""
	}
	return dir
}

// whyKube diagnoses the `hull kube` pod recorded in dir.
func (e *Engine) whyKube(ctx context.Context, dir string) *Diagnosis {
	name := filepath.Base(dir)
	var st kubePodStatus
	var events []kubeEvent
	readJSONFile(filepath.Join(dir, "status.json"), &st)
	readJSONFile(filepath.Join(dir, "events.json"), &events)
	d := &Diagnosis{Container: "pod/" + name}
	all := append(append([]kubeContainerSt{}, st.InitContainerStatuses...), st.ContainerStatuses...)
	for _, cs := range all {
		if id := strings.TrimPrefix(cs.ContainerID, "hull://"); id != "" {
			if cd, err := e.Why(ctx, id); err == nil {
				d.Containers = append(d.Containers, cd)
			}
		}
	}
	// lastEvent is the newest event of a reason whose message has all of
	// the parts.
	lastEvent := func(reason string, parts ...string) string {
	next:
		for i := len(events) - 1; i >= 0; i-- {
			if events[i].Reason != reason {
				continue
			}
			for _, p := range parts {
				if !strings.Contains(events[i].Message, p) {
					continue next
				}
			}
			return events[i].Message
		}
		return ""
	}
	redo := fmt.Sprintf("then: hull kube delete pod %s and apply the manifest again", name)
	// The pod failed as a whole (kubelet's admission, its deadline, its
	// eviction).
	switch st.Reason {
	case "SysctlForbidden":
		d.Stage, d.Status = StageCreate, "kubelet refused the pod before anything started: a sysctl it sets is not in kubelet's safe set"
		d.Evidence = []string{st.Message}
		d.Next = "set only safe sysctls in spec.securityContext.sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.ping_group_range, net.ipv4.tcp_*: see hull kube docs), " + redo
		return d
	case "Evicted":
		d.Stage, d.Status = StageExited, "kubelet evicted the pod: an emptyDir volume grew past its sizeLimit, so its containers were killed"
		d.Evidence = []string{strings.TrimSpace(st.Message)}
		d.Next = "raise the volume's emptyDir.sizeLimit, or have the containers write less to it (or to a persistentVolumeClaim), " + redo
		return d
	case "DeadlineExceeded":
		d.Stage, d.Status = StageExited, "the pod ran longer than its activeDeadlineSeconds, so its containers were killed"
		d.Evidence = []string{st.Message}
		d.Next = "raise or remove spec.activeDeadlineSeconds, " + redo
		return d
	}
	for _, cs := range all {
		w := cs.State.Waiting
		reason := ""
		if w != nil {
			reason = w.Reason
		}
		switch reason {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
			d.Stage = StagePull
			d.Status = fmt.Sprintf("container %s: the image %s could not be pulled (%s), so the container was never created", cs.Name, cs.Image, reason)
			d.Evidence = []string{w.Message}
			if m := lastEvent("Failed", "Failed to pull image"); m != "" && !strings.Contains(m, w.Message) {
				d.Evidence = append(d.Evidence, m)
			}
			d.Next = fmt.Sprintf("check the image's name and tag, the registry and its credentials (hull pull %s says what the registry answers); kubelet retries with a back-off, or fix the image, %s", cs.Image, redo)
			return d
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
			d.Stage = StageCreate
			if reason == "RunContainerError" {
				d.Stage = StageStart
			}
			d.Status = fmt.Sprintf("container %s: kubelet cannot %s it (%s)", cs.Name, map[bool]string{true: "start", false: "create"}[reason == "RunContainerError"], reason)
			d.Evidence = []string{w.Message}
			d.Next = "fix the container's settings in the manifest against the error above, " + redo
			if strings.Contains(w.Message, "runAsNonRoot") || strings.Contains(w.Message, "non-root") {
				d.Status = fmt.Sprintf("container %s: runAsNonRoot is set and the image runs as root, so kubelet refuses to create it (%s)", cs.Name, reason)
				d.Next = "run it as a non-root user: use an image whose USER is a non-zero UID, or set securityContext.runAsUser (e.g. 1000) on the container or the pod; " + redo
			}
			return d
		case "PostStartHookError":
			d.Stage = StageStart
			d.Status = fmt.Sprintf("container %s: its postStart hook fails, so kubelet kills and restarts it", cs.Name)
			d.Evidence = []string{w.Message}
			d.Next = "fix the hook's command or URL (lifecycle.postStart), " + redo
			return d
		}
		// A probe that killed it: the Killing event names the container,
		// the newest Unhealthy event of that probe has its output.
		for _, probe := range []string{"liveness", "startup"} {
			if lastEvent("Killing", fmt.Sprintf("Container %s failed %s probe", cs.Name, probe)) == "" {
				continue
			}
			d.Stage = StageRunning
			d.Status = fmt.Sprintf("container %s: its %s probe fails, so kubelet kills and restarts it (%s)", cs.Name, probe, restarts(cs.RestartCount))
			kind := strings.ToUpper(probe[:1]) + probe[1:]
			if m := lastEvent("Unhealthy", kind+" probe"); m != "" {
				d.Evidence = append(d.Evidence, strings.TrimSpace(m))
			}
			d.Evidence = append(d.Evidence, kubeStateText(cs))
			d.Next = fmt.Sprintf("make the probe pass or fix what it checks (%sProbe in the manifest: its command, path or port, initialDelaySeconds for a slow start); its output: hull kube logs %s -c %s -p", probe, name, cs.Name)
			return d
		}
		if t := failedRun(cs); t != nil {
			d.Stage = StageExited
			id := strings.TrimPrefix(t.ContainerID, "hull://")
			var cd *Diagnosis
			if id != "" {
				cd, _ = e.Why(ctx, id)
			}
			if t.Reason == "OOMKilled" {
				d.Status = fmt.Sprintf("container %s: killed by the kernel's OOM killer (exit code %d): it used more memory than its limit; %s", cs.Name, t.ExitCode, restarts(cs.RestartCount))
				d.Next = "raise resources.limits.memory above the peak, or find what grows in the process; " + redo
			} else {
				d.Status = fmt.Sprintf("container %s: its process exits with code %d (%s); %s", cs.Name, t.ExitCode, t.Reason, restarts(cs.RestartCount))
				d.Next = fmt.Sprintf("find why it exits in its output: hull kube logs %s -c %s -p; fix the command or image, %s", name, cs.Name, redo)
			}
			if reason != "" {
				d.Status += ", now " + reason
			}
			if cd != nil {
				d.Evidence = cd.Evidence
			}
			return d
		}
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running != nil && !cs.Ready {
			d.Stage = StageRunning
			d.Status = fmt.Sprintf("container %s: running but not ready", cs.Name)
			if m := lastEvent("Unhealthy", "Readiness probe"); m != "" {
				d.Status += ": its readiness probe fails"
				d.Evidence = []string{strings.TrimSpace(m)}
			}
			d.Next = "make the readiness probe pass (readinessProbe in the manifest); the pod is Ready once every container is"
			return d
		}
	}
	d.Stage = strings.ToLower(st.Phase)
	switch st.Phase {
	case "Running":
		d.Status = fmt.Sprintf("running, every container ready (%d)", len(st.ContainerStatuses))
		d.Next = fmt.Sprintf("its output: hull kube logs %s; its events: hull kube describe pod %s", name, name)
	case "Succeeded":
		d.Status = "completed: every container exited with code 0"
		d.Next = fmt.Sprintf("its output: hull kube logs %s", name)
	default:
		d.Status = "the pod is " + st.Phase
		if d.Stage == "" {
			d.Stage, d.Status = "pending", "the pod has not been synced yet"
		}
		for _, cs := range all {
			d.Evidence = append(d.Evidence, cs.Name+": "+kubeStateText(cs))
		}
		d.Next = fmt.Sprintf("its events: hull kube describe pod %s", name)
	}
	return d
}

// failedRun is the container's run that failed, now or last: terminated
// with a non-zero code or by the OOM killer.
func failedRun(cs kubeContainerSt) *kubeTerminated {
	for _, t := range []*kubeTerminated{cs.State.Terminated, cs.LastState.Terminated} {
		if t != nil && (t.ExitCode != 0 || t.Reason == "OOMKilled") {
			return t
		}
	}
	return nil
}

// kubeStateText is a container's state as describe words it.
func kubeStateText(cs kubeContainerSt) string {
	switch s := cs.State; {
	case s.Waiting != nil:
		return "waiting: " + s.Waiting.Reason
	case s.Running != nil:
		return fmt.Sprintf("running, ready %v, %s", cs.Ready, restarts(cs.RestartCount))
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: %s (exit code %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "unknown"
}

// restarts is "restarted N times".
func restarts(n int) string {
	if n == 1 {
		return "restarted once"
	}
	return fmt.Sprintf("restarted %d times", n)
}

// readJSONFile reads a JSON file into v, leaving v as it was on error.
func readJSONFile(path string, v any) {
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, v)
	}
}
