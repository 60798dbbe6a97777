package kube

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
)

// The Pod → CRI translation, as kubelet computes it
// (pkg/kubelet/kuberuntime: generatePodSandboxConfig,
// generateContainerConfig, generateLinuxContainerResources,
// determineEffectiveSecurityContext), for the fields hull kube supports.

// Kubelet's labels on sandboxes and containers (pkg/kubelet/types).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// CPU shares and quota (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliPerCPU   = 1000
	quotaPeriod   = 100000 // 100 ms, in µs
	minQuotaLimit = 1000
)

// OOM score adjustments (pkg/kubelet/qos/policy.go).
const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// defaultMaskedPaths and defaultReadonlyPaths are what kubelet sends for
// an unprivileged container with the default procMount
// (pkg/securitycontext/util.go).
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// milliCPUToShares is kubelet's cpu.shares for a CPU request.
func milliCPUToShares(milli int64) int64 {
	if milli == 0 {
		return minShares
	}
	shares := milli * sharesPerCPU / milliPerCPU
	return max(minShares, min(shares, maxShares))
}

// milliCPUToQuota is kubelet's CFS quota for a CPU limit (0: none).
func milliCPUToQuota(milli, period int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*period/milliPerCPU, minQuotaLimit)
}

// QOSClass is the pod's QoS class (k8s.io/api's GetPodQOS, without
// pod-level resources): BestEffort with no requests or limits,
// Guaranteed when every container limits CPU and memory to what it
// requests, else Burstable.
func QOSClass(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[name]
				lim, hasLim := c.Resources.Limits[name]
				if hasReq && !req.IsZero() {
					add(requests, name, req)
				}
				if hasLim && !lim.IsZero() {
					add(limits, name, lim)
				} else {
					guaranteed = false
				}
				if hasReq && hasLim && req.Cmp(lim) != 0 {
					guaranteed = false
				}
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

func add(l v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
	sum := l[name]
	sum.Add(q)
	l[name] = sum
}

// memoryCapacity is the node's memory (MemTotal), for the burstable OOM
// score.
func memoryCapacity() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// oomScoreAdj is kubelet's OOM score adjustment for a container.
func oomScoreAdj(qos v1.PodQOSClass, c *v1.Container, capacity int64) int64 {
	switch qos {
	case v1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	if capacity <= 0 {
		return besteffortOOMScoreAdj - 1
	}
	adj := 1000 - 1000*c.Resources.Requests.Memory().Value()/capacity
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return adj - 1
	}
	return adj
}

// containerResources is kubelet's LinuxContainerResources for c: CPU
// shares from the request (or the limit when no request), CFS quota from
// the limit over a 100 ms period, the memory limit, the OOM score
// adjustment of the pod's QoS class. On a cgroup v2 host (v2) kubelet
// asks the kernel to kill the whole container on an OOM (memory.oom.group
// 1, its default singleProcessOOMKill false). No swap (kubelet's NoSwap)
// only where the host has the swap controller (swap), as kubelet: on v2
// memory.swap.max 0, on v1 a swap limit equal to the memory limit.
func containerResources(pod *v1.Pod, c *v1.Container, capacity int64, v2, swap bool) *runtimeapi.LinuxContainerResources {
	cpuReq, hasReq := c.Resources.Requests[v1.ResourceCPU]
	cpuLim := c.Resources.Limits[v1.ResourceCPU]
	r := &runtimeapi.LinuxContainerResources{CpuPeriod: quotaPeriod}
	if hasReq {
		r.CpuShares = milliCPUToShares(cpuReq.MilliValue())
	} else {
		r.CpuShares = milliCPUToShares(cpuLim.MilliValue())
	}
	r.CpuQuota = milliCPUToQuota(cpuLim.MilliValue(), quotaPeriod)
	r.MemoryLimitInBytes = c.Resources.Limits.Memory().Value()
	if v2 {
		r.Unified = map[string]string{"memory.oom.group": "1"}
	}
	switch {
	case swap && v2:
		r.Unified["memory.swap.max"] = "0"
	case swap:
		r.MemorySwapLimitInBytes = r.MemoryLimitInBytes
	}
	r.OomScoreAdj = oomScoreAdj(QOSClass(pod), c, capacity)
	return r
}

// cgroupV2 says whether this host's cgroups are v2 only, where kubelet
// sets the unified keys above.
var cgroupV2 = sync.OnceValue(func() bool { return cgroups.DetectMode() == cgroups.Unified })

// swapController says whether the host has the memory controller's swap
// files, where kubelet looks (checkSwapControllerAvailability): v1's
// memory.memsw.limit_in_bytes at the memory hierarchy's root; v2's
// memory.swap.max in this process's own cgroup (the root cgroup has none,
// so a process there sees none, as kubelet would).
var swapController = sync.OnceValue(func() bool {
	p := "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
	if cgroupV2() {
		self, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return false
		}
		rel := strings.TrimSpace(strings.TrimPrefix(string(self), "0::"))
		p = path.Join("/sys/fs/cgroup", rel, "memory.swap.max")
	}
	_, err := os.Stat(p)
	return err == nil
})

// cgroupParent is kubelet's pod cgroup under the cgroupfs driver, below
// root ([kube] cgroup_root, kubelet's /kubepods by default):
// root/pod<uid> for Guaranteed, root/<qos>/pod<uid> else.
func cgroupParent(root string, pod *v1.Pod) string {
	switch QOSClass(pod) {
	case v1.PodQOSGuaranteed:
		return path.Join(root, "pod"+string(pod.UID))
	case v1.PodQOSBestEffort:
		return path.Join(root, "besteffort", "pod"+string(pod.UID))
	}
	return path.Join(root, "burstable", "pod"+string(pod.UID))
}

// podHostname is kubelet's host name for a pod: spec.hostname, else the
// pod's name cut to 63 characters.
func podHostname(pod *v1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// sandboxConfig is kubelet's PodSandboxConfig for a pod.
func sandboxConfig(pod *v1.Pod, attempt uint32, logDir, cgroupParent string) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[labelPodName], labels[labelPodNamespace], labels[labelPodUID] = pod.Name, pod.Namespace, string(pod.UID)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     podHostname(pod),
		LogDirectory: logDir,
		Labels:       labels,
		Annotations:  pod.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(pod),
			},
		},
	}
	if pod.Spec.HostNetwork {
		cfg.Hostname = ""
	}
	cfg.Linux.Sysctls = podSysctls(pod) // podfail.go
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			// kubelet sends every port; a runtime's portmap publishes
			// only those with a host port, and hull's sandbox would
			// publish a port 0 on a random host port: send only those.
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			if p.Protocol == v1.ProtocolUDP {
				proto = runtimeapi.Protocol_UDP
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{
				Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP,
			})
		}
	}
	return cfg
}

// namespaceOptions is kubelet's namespace modes for a pod.
func namespaceOptions(pod *v1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case pod.Spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	return ns
}

// effectiveSecurityContext is the container's security context over the
// pod's (kubelet's DetermineEffectiveSecurityContext).
func effectiveSecurityContext(pod *v1.Pod, c *v1.Container) *v1.SecurityContext {
	out := &v1.SecurityContext{}
	if ps := pod.Spec.SecurityContext; ps != nil {
		out.RunAsUser, out.RunAsGroup, out.RunAsNonRoot = ps.RunAsUser, ps.RunAsGroup, ps.RunAsNonRoot
		out.SeccompProfile, out.SELinuxOptions = ps.SeccompProfile, ps.SELinuxOptions
	}
	if cs := c.SecurityContext; cs != nil {
		if cs.RunAsUser != nil {
			out.RunAsUser = cs.RunAsUser
		}
		if cs.RunAsGroup != nil {
			out.RunAsGroup = cs.RunAsGroup
		}
		if cs.RunAsNonRoot != nil {
			out.RunAsNonRoot = cs.RunAsNonRoot
		}
		if cs.SeccompProfile != nil {
			out.SeccompProfile = cs.SeccompProfile
		}
		out.Capabilities, out.Privileged, out.ReadOnlyRootFilesystem = cs.Capabilities, cs.Privileged, cs.ReadOnlyRootFilesystem
		out.AllowPrivilegeEscalation, out.ProcMount = cs.AllowPrivilegeEscalation, cs.ProcMount
	}
	return out
}

// securityContext is kubelet's LinuxContainerSecurityContext.
func securityContext(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := effectiveSecurityContext(pod, c)
	out := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if sc.RunAsUser != nil {
		out.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
	}
	if sc.RunAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
	}
	if sc.Privileged != nil {
		out.Privileged = *sc.Privileged
	}
	if sc.ReadOnlyRootFilesystem != nil {
		out.ReadonlyRootfs = *sc.ReadOnlyRootFilesystem
	}
	if caps := sc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{}
		for _, a := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(a))
		}
		for _, d := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(d))
		}
	}
	// kubelet sets no_new_privs only when allowPrivilegeEscalation is
	// false (AddNoNewPrivileges).
	if sc.AllowPrivilegeEscalation != nil {
		out.NoNewPrivs = !*sc.AllowPrivilegeEscalation
	}
	if ps := pod.Spec.SecurityContext; ps != nil {
		out.SupplementalGroups = append(out.SupplementalGroups, ps.SupplementalGroups...)
		if ps.FSGroup != nil {
			out.SupplementalGroups = append(out.SupplementalGroups, *ps.FSGroup)
		}
	}
	// Without a profile kubelet asks for none (SeccompDefault is off by
	// default).
	out.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	if p := sc.SeccompProfile; p != nil {
		switch p.Type {
		case v1.SeccompProfileTypeRuntimeDefault:
			out.Seccomp.ProfileType = runtimeapi.SecurityProfile_RuntimeDefault
		case v1.SeccompProfileTypeLocalhost:
			out.Seccomp.ProfileType = runtimeapi.SecurityProfile_Localhost
			if p.LocalhostProfile != nil {
				out.Seccomp.LocalhostRef = "/var/lib/kubelet/seccomp/" + *p.LocalhostProfile
			}
		}
	}
	if !out.Privileged && (sc.ProcMount == nil || *sc.ProcMount == v1.DefaultProcMount) {
		out.MaskedPaths, out.ReadonlyPaths = defaultMaskedPaths, defaultReadonlyPaths
	}
	return out
}

// containerConfig is kubelet's ContainerConfig for c at an attempt,
// with the image as ImageStatus resolved it (imageRef: the image ID).
func containerConfig(pod *v1.Pod, c *v1.Container, attempt uint32, imageRef string, capacity int64) *runtimeapi.ContainerConfig {
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command, c.Env),
		Args:       expandAll(c.Args, c.Env),
		WorkingDir: c.WorkingDir,
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID), labelContainerName: c.Name,
		},
		Annotations: map[string]string{
			"io.kubernetes.container.restartCount":     strconv.FormatUint(uint64(attempt), 10),
			annTerminationMessagePath:                  c.TerminationMessagePath,
			annTerminationMessagePolicy:                string(c.TerminationMessagePolicy),
			"io.kubernetes.pod.terminationGracePeriod": strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10),
		},
		LogPath: fmt.Sprintf("%s/%d.log", c.Name, attempt),
		Stdin:   c.Stdin,
		Tty:     c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       containerResources(pod, c, capacity, cgroupV2(), swapController()),
			SecurityContext: securityContext(pod, c),
		},
	}
	for _, e := range c.Env { // expanded by containerEnv
		cfg.Envs = append(cfg.Envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
	}
	return cfg
}

// expandAll expands $(VAR) references in command and args.
func expandAll(list []string, env []v1.EnvVar) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expand(s, env)
	}
	return out
}

// expand is kubelet's $(VAR) expansion (third_party/forked/golang/expansion):
// $(NAME) becomes the variable's value when defined, $$ is a literal $,
// anything else is kept as written.
func expand(s string, env []v1.EnvVar) string {
	if !strings.Contains(s, "$") {
		return s
	}
	vars := map[string]string{}
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// verifyRunAsNonRoot is kubelet's check of runAsNonRoot against the
// user the container will run as (the security context's, else the
// image's from ImageStatus): the message CreateContainerConfigError
// carries, or "".
func verifyRunAsNonRoot(pod *v1.Pod, c *v1.Container, uid *int64, username string) string {
	sc := effectiveSecurityContext(pod, c)
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return ""
	}
	podName := fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return fmt.Sprintf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podName, c.Name)
		}
		return ""
	}
	switch {
	case uid != nil && *uid == 0:
		return fmt.Sprintf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podName, c.Name)
	case uid == nil && username != "":
		return fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", username, podName, c.Name)
	}
	return ""
}
