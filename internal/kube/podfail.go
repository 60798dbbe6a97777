package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Pod-level failures, as kubelet decides them for the whole pod rather
// than for one container: admission refusing a pod whose sysctls are not
// allowlisted (pkg/kubelet/sysctl: the pod never starts),
// activeDeadlineSeconds passing (the active deadline handler: the pod's
// containers are killed), and an emptyDir over its sizeLimit (the
// eviction manager, eviction.go: killed at once). Each leaves the pod Failed with kubelet's
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
	if k.st.Reason != "" { // failed before (a restarted supervisor)
		k.refreshStatuses(ctx)
		k.finish(ctx)
		return true
	}
	var reason, message string
	if msg := forbiddenSysctl(k.pod); msg != "" {
		reason, message = "SysctlForbidden", "Pod was rejected: "+msg
		k.event(v1.EventTypeWarning, reason, msg)
	} else if d := k.pod.Spec.ActiveDeadlineSeconds; d != nil && time.Since(k.st.StartTime) >= time.Duration(*d)*time.Second {
		reason, message = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
		k.event(v1.EventTypeNormal, reason, message)
	} else if msg := k.emptyDirOverLimit(); msg != "" { // eviction.go
		reason, message = "Evicted", msg
		k.event(v1.EventTypeWarning, reason, msg)
	}
	if reason == "" {
		return false
	}
	grace := int64(0)
	if g := k.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	if reason == "Evicted" {
		grace = 1 // the eviction manager's: at once (a pod worker's least)
	}
	for _, s := range k.st.Containers {
		s.Waiting = nil
	}
	// The pod shows running while its containers stop (the statuses saved
	// meanwhile are this round's), and Failed once they have.
	k.refreshStatuses(ctx)    // sidecar.go
	k.stopRunning(ctx, grace) // as the teardown does (sidecar.go)
	k.st.Reason, k.st.Message = reason, message
	k.finish(ctx) // which reads what the stops left
	return true
}
