package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod-level failures, as kubelet decides them for the whole pod rather
// than for one container: admission refusing a pod whose sysctls are not
// allowlisted (pkg/kubelet/sysctl: the pod never starts), and
// activeDeadlineSeconds passing (the active deadline handler: the pod's
// containers are killed). Either leaves the pod Failed with kubelet's
// reason and message, its sandbox stopped, its supervisor gone.

// safeSysctls are kubelet's safe sysctls (SafeSysctlAllowlist), with
// the namespace each belongs to; no other sysctl is admitted (kubelet's
// --allowed-unsafe-sysctls is empty by default).
var safeSysctls = map[string]string{
	"kernel.shm_rmid_forced":              "ipc",
	"net.ipv4.ip_local_port_range":        "net",
	"net.ipv4.tcp_syncookies":             "net",
	"net.ipv4.ping_group_range":           "net",
	"net.ipv4.ip_unprivileged_port_start": "net",
	"net.ipv4.ip_local_reserved_ports":    "net",
	"net.ipv4.tcp_keepalive_time":         "net",
	"net.ipv4.tcp_fin_timeout":            "net",
	"net.ipv4.tcp_keepalive_intvl":        "net",
	"net.ipv4.tcp_keepalive_probes":       "net",
	"net.ipv4.tcp_rmem":                   "net",
	"net.ipv4.tcp_wmem":                   "net",
}

// sysctlName is a sysctl with dots as separators: kubelet accepts
// net/ipv4/... too (a name whose first separator is a slash swaps the
// two).
func sysctlName(s string) string {
	i := strings.IndexAny(s, "./")
	if i < 0 || s[i] == '.' {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

// forbiddenSysctl is kubelet's admission message for the first sysctl
// of the pod it would refuse ("" when it admits them all).
func forbiddenSysctl(pod *v1.Pod) string {
	sc := pod.Spec.SecurityContext
	if sc == nil {
		return ""
	}
	for _, s := range sc.Sysctls {
		name := sysctlName(s.Name)
		ns, ok := safeSysctls[name]
		switch {
		case !ok:
			return fmt.Sprintf("forbidden sysctl: %q not allowlisted", name)
		case ns == "net" && pod.Spec.HostNetwork, ns == "ipc" && pod.Spec.HostIPC:
			return fmt.Sprintf("forbidden sysctl: %q not allowed with host %s enabled", name, ns)
		}
	}
	return ""
}

// podSysctls is the sandbox's sysctls (kubelet sends the pod's, named
// with dots).
func podSysctls(pod *v1.Pod) map[string]string {
	sc := pod.Spec.SecurityContext
	if sc == nil || len(sc.Sysctls) == 0 {
		return nil
	}
	out := make(map[string]string, len(sc.Sysctls))
	for _, s := range sc.Sysctls {
		out[sysctlName(s.Name)] = s.Value
	}
	return out
}

// podFailed fails the pod for good when admission refuses it or its
// active deadline has passed, killing what runs; it reports whether the
// pod has so failed (and the round is over).
func (k *kubelet) podFailed(ctx context.Context) bool {
	if k.st.Reason == "" {
		if msg := forbiddenSysctl(k.pod); msg != "" {
			k.st.Reason, k.st.Message = "SysctlForbidden", "Pod was rejected: "+msg
			k.event(v1.EventTypeWarning, k.st.Reason, msg)
		} else if d := k.pod.Spec.ActiveDeadlineSeconds; d != nil && time.Since(k.st.StartTime) >= time.Duration(*d)*time.Second {
			k.st.Reason, k.st.Message = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
			k.event(v1.EventTypeNormal, k.st.Reason, k.st.Message)
		}
	}
	if k.st.Reason == "" {
		return false
	}
	grace := int64(0)
	if g := k.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	for _, c := range append(append([]v1.Container{}, k.pod.Spec.InitContainers...), k.pod.Spec.Containers...) {
		s := k.st.Containers[c.Name]
		if s == nil || s.ID == "" {
			continue
		}
		r, err := k.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: s.ID})
		if err != nil {
			continue
		}
		if r.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			k.event(v1.EventTypeNormal, "Killing", "Stopping container "+c.Name)
			k.cri.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: s.ID, Timeout: grace})
			if r2, err := k.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: s.ID}); err == nil {
				r = r2
			}
		}
		k.status[c.Name] = r.GetStatus()
		s.Waiting = nil
	}
	k.finish(ctx)
	return true
}
