package kube

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The pod's status as kubelet reports it (generateAPIPodStatus,
// convertToAPIContainerStatuses, getPhase), from the supervisor's state
// and this round's CRI container statuses.

// containerStatus is one container's v1.ContainerStatus.
func (k *kubelet) containerStatus(c *v1.Container, isInit bool) v1.ContainerStatus {
	s := k.state(c.Name)
	out := v1.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: s.RestartCount}
	f := false
	out.Started = &f
	if s.Last != nil {
		out.LastTerminationState.Terminated = s.Last
	}
	cs := k.status[c.Name]
	if cs != nil {
		out.ContainerID = "hull://" + cs.GetId()
		out.ImageID = cs.GetImageRef()
		if img := cs.GetImage().GetImage(); img != "" && !strings.HasPrefix(img, "sha256:") {
			out.Image = img
		}
	}
	switch {
	case s.Waiting != nil:
		out.State.Waiting = s.Waiting.DeepCopy()
	case cs == nil:
		reason := "ContainerCreating"
		if !isInit && !k.initialized() {
			reason = "PodInitializing"
		}
		out.State.Waiting = &v1.ContainerStateWaiting{Reason: reason}
	case cs.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING:
		out.State.Running = &v1.ContainerStateRunning{StartedAt: criTime(cs.GetStartedAt())}
		t := k.started(c, cs)
		out.Started = &t
		out.Ready = k.ready(c, cs)
	case cs.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED && s.StartError == "":
		out.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
	default:
		out.State.Terminated = k.withTerminationMessage(terminated(cs), cs)                          // termination.go
		if cs.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED || cs.GetFinishedAt() == 0 { // its start failed
			t := out.State.Terminated
			t.Reason, t.ExitCode = "StartError", 128
			if s.StartError != "" { // the runtime's message, and when it failed (syncContainer)
				t.Message, t.FinishedAt = s.StartError, metav1.NewTime(s.Backoff.LastUpdate.UTC())
			}
		}
	}
	return out
}

// initialized reports whether every init container has succeeded (a
// sidecar: has started, sidecar.go).
func (k *kubelet) initialized() bool {
	for _, c := range k.pod.Spec.InitContainers {
		if !k.state(c.Name).Done {
			return false
		}
	}
	return true
}

// phase is kubelet's getPhase.
func (k *kubelet) phase() v1.PodPhase {
	return podPhase(k.pod, k.initStatuses(), k.appStatuses())
}

func (k *kubelet) initStatuses() []v1.ContainerStatus {
	var out []v1.ContainerStatus
	for i := range k.pod.Spec.InitContainers {
		out = append(out, k.containerStatus(&k.pod.Spec.InitContainers[i], true))
	}
	return out
}

func (k *kubelet) appStatuses() []v1.ContainerStatus {
	var out []v1.ContainerStatus
	for i := range k.pod.Spec.Containers {
		out = append(out, k.containerStatus(&k.pod.Spec.Containers[i], false))
	}
	return out
}

// podPhase is kubelet's getPhase over the container statuses.
func podPhase(pod *v1.Pod, inits, apps []v1.ContainerStatus) v1.PodPhase {
	pendingInit, failedInit := 0, 0
	for i, st := range inits {
		if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
			// A sidecar keeps the pod pending until it has started, and is
			// no part of the phase after (sidecar.go; kubelet's getPhase).
			started := st.Started != nil && *st.Started
			switch {
			case st.State.Running != nil && !started,
				st.State.Waiting != nil && st.LastTerminationState.Terminated == nil,
				st.State.Running == nil && st.State.Waiting == nil && st.State.Terminated == nil:
				pendingInit++
			}
			continue
		}
		switch {
		case st.State.Running != nil:
			pendingInit++
		case st.State.Terminated != nil:
			if st.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case st.State.Waiting != nil:
			if t := st.LastTerminationState.Terminated; t != nil {
				if t.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, st := range apps {
		switch {
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			stopped++
			if st.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case st.State.Waiting != nil:
			if st.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	if failedInit > 0 && pod.Spec.RestartPolicy == v1.RestartPolicyNever {
		return v1.PodFailed
	}
	switch {
	case pendingInit > 0 || (failedInit > 0 && len(apps) > 0 && running == 0 && stopped == 0):
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		switch pod.Spec.RestartPolicy {
		case v1.RestartPolicyAlways:
			return v1.PodRunning
		case v1.RestartPolicyOnFailure:
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodRunning
		default:
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
	}
	return v1.PodPending
}

// podStatus is the pod's v1.PodStatus now.
func (k *kubelet) podStatus() v1.PodStatus {
	inits, apps := k.initStatuses(), k.appStatuses()
	phase := podPhase(k.pod, inits, apps)
	st := v1.PodStatus{
		Phase:                 phase,
		HostIP:                hostIP(),
		InitContainerStatuses: inits,
		ContainerStatuses:     apps,
		QOSClass:              QOSClass(k.pod),
		StartTime:             &metav1.Time{Time: k.st.StartTime},
	}
	if st.HostIP != "" {
		st.HostIPs = []v1.HostIP{{IP: st.HostIP}}
	}
	if k.st.Reason != "" { // failed as a whole (podfail.go)
		phase = v1.PodFailed
		st.Phase, st.Reason, st.Message = phase, k.st.Reason, k.st.Message
		if k.st.Reason == "SysctlForbidden" { // refused before it started
			st.InitContainerStatuses, st.ContainerStatuses = nil, nil
		}
	}
	if k.podIP != "" && !k.st.Finished {
		st.PodIP = k.podIP
		st.PodIPs = []v1.PodIP{{IP: k.podIP}}
	}
	if k.pod.Spec.HostNetwork {
		st.PodIP, st.PodIPs = st.HostIP, []v1.PodIP{{IP: st.HostIP}}
	}
	now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	cond := func(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: now}
		if ok {
			c.Status, c.Reason, c.Message = v1.ConditionTrue, "", ""
		}
		return c
	}
	var notInit, notReady []string
	for i, s := range inits {
		if isSidecar(&k.pod.Spec.InitContainers[i]) { // sidecar.go
			if !k.state(s.Name).Done {
				notInit = append(notInit, s.Name)
			}
			if !s.Ready {
				notReady = append(notReady, s.Name)
			}
			continue
		}
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			notInit = append(notInit, s.Name)
		}
	}
	for _, s := range apps {
		if !s.Ready {
			notReady = append(notReady, s.Name)
		}
	}
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	if phase == v1.PodSucceeded || phase == v1.PodFailed {
		readyReason, readyMsg = "PodCompleted", ""
	}
	initReason, initMsg := "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " "))
	if phase == v1.PodSucceeded || phase == v1.PodFailed {
		initReason, initMsg = "PodCompleted", ""
	}
	st.Conditions = []v1.PodCondition{
		cond(v1.PodReadyToStartContainers, k.st.SandboxID != "" && !k.st.Finished, "", ""),
		cond(v1.PodInitialized, len(notInit) == 0, initReason, initMsg),
		cond(v1.PodReady, len(notReady) == 0, readyReason, readyMsg),
		cond(v1.ContainersReady, len(notReady) == 0, readyReason, readyMsg),
		cond(v1.PodScheduled, true, "", ""),
	}
	// Keep each condition's transition time while its status holds.
	var old v1.PodStatus
	if readJSON(k.dir+"/status.json", &old) == nil {
		for i := range st.Conditions {
			for _, o := range old.Conditions {
				if o.Type == st.Conditions[i].Type && o.Status == st.Conditions[i].Status {
					st.Conditions[i].LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	return st
}

// readHostIP is the node's address: the source address of its default route,
// else loopback.
func readHostIP() string {
	b, err := os.ReadFile("/proc/net/route")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) > 2 && f[1] == "00000000" {
				if ip := ifaceAddr(f[0]); ip != "" {
					return ip
				}
			}
		}
	}
	return "127.0.0.1"
}

// ifaceAddr is the first IPv4 address of an interface.
func ifaceAddr(name string) string {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return ""
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}
