package kube

import (
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"hull/internal/cgroups"
)

// The pod's cgroup, as kubelet's pod container manager makes it before
// the sandbox (pkg/kubelet/cm: ResourceConfigForPod): /kubepods/<qos>/
// pod<uid> with the pod's CPU shares (its requests), and, when every
// container declares them, its CFS quota and memory limit (its limits).
// The containers' cgroups go below it (the sandbox's cgroup parent).

// podTotals is the pod's effective requests or limits of one resource:
// the sum over its containers and sidecars, or what the init containers
// need at most when that is more; declared is false when a container
// sets none.
func podTotals(pod *v1.Pod, limits bool, name v1.ResourceName) (total resource.Quantity, declared bool) {
	get := func(c v1.Container) (resource.Quantity, bool) {
		l := c.Resources.Requests
		if limits {
			l = c.Resources.Limits
		}
		q, ok := l[name]
		return q, ok && !q.IsZero()
	}
	declared = true
	for _, c := range pod.Spec.Containers {
		q, ok := get(c)
		declared = declared && ok
		total.Add(q)
	}
	// Init containers run one at a time, each beside the sidecars started
	// before it; sidecars run for the pod's life (KEP-753's formula).
	var sidecars, inits resource.Quantity
	for i := range pod.Spec.InitContainers {
		c := pod.Spec.InitContainers[i]
		q, ok := get(c)
		declared = declared && ok
		if isSidecar(&c) {
			total.Add(q)
			sidecars.Add(q)
			if sidecars.Cmp(inits) > 0 {
				inits = sidecars.DeepCopy()
			}
			continue
		}
		use := sidecars.DeepCopy()
		use.Add(q)
		if use.Cmp(inits) > 0 {
			inits = use
		}
	}
	if inits.Cmp(total) > 0 {
		total = inits
	}
	return total, declared
}

// podResources is kubelet's pod-level resource config.
func podResources(pod *v1.Pod) *specs.LinuxResources {
	cpuReq, _ := podTotals(pod, false, v1.ResourceCPU)
	cpuLim, cpuDeclared := podTotals(pod, true, v1.ResourceCPU)
	memLim, memDeclared := podTotals(pod, true, v1.ResourceMemory)
	shares := uint64(milliCPUToShares(cpuReq.MilliValue()))
	quota, period := milliCPUToQuota(cpuLim.MilliValue(), quotaPeriod), uint64(quotaPeriod)
	mem := memLim.Value()
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}
	switch QOSClass(pod) {
	case v1.PodQOSGuaranteed:
		r.CPU.Quota, r.CPU.Period = &quota, &period
		r.Memory = &specs.LinuxMemory{Limit: &mem}
	case v1.PodQOSBurstable:
		if cpuDeclared {
			r.CPU.Quota, r.CPU.Period = &quota, &period
		}
		if memDeclared {
			r.Memory = &specs.LinuxMemory{Limit: &mem}
		}
	default:
		min := uint64(minShares)
		r.CPU.Shares = &min
	}
	return r
}

// ensurePodCgroup makes the pod's cgroup with its limits.
func ensurePodCgroup(pod *v1.Pod) error {
	m, err := cgroups.New(cgroupParent(pod))
	if err != nil {
		return err
	}
	if err := m.Create(); err != nil {
		return fmt.Errorf("pod cgroup %s: %w", m.Path, err)
	}
	if err := m.Set(podResources(pod)); err != nil {
		return fmt.Errorf("pod cgroup %s: %w", m.Path, err)
	}
	return nil
}

// removePodCgroup removes the pod's cgroup once its containers are gone,
// and the QoS and kubepods levels when nothing else is in them.
func removePodCgroup(pod *v1.Pod) {
	m, err := cgroups.New(cgroupParent(pod))
	if err != nil {
		return
	}
	for _, mt := range m.Mounts() {
		for d := mt.Dir; d != mt.Mountpoint && d != "/" && filepath.Base(d) != "."; d = filepath.Dir(d) {
			if removeDir(d) != nil {
				break // in use: kubepods stays while other pods are in it
			}
		}
	}
}
