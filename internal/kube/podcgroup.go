package kube

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"hull/internal/cgroups"
)

// The pod's cgroup, as kubelet's pod container manager makes it before
// the sandbox (pkg/kubelet/cm: ResourceConfigForPod): <cgroup root>/<qos>/
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

// ensurePodCgroup makes the pod's cgroup parent with its limits. The
// levels above it (the cgroup root, the QoS level) are shared with the
// other pods, of this hull root and of any other using the same cgroup
// root, and removed by whichever pod leaves them empty: Create makes
// what is missing and starts over when a level it found is removed
// under it. Once the pod's own directory exists nothing above it can go.
func ensurePodCgroup(parent string, pod *v1.Pod) error {
	m, err := cgroups.New(parent)
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

// removePodCgroup removes the pod's cgroup once its containers are gone
// (waiting a little for the last processes to leave it), then each level
// above it that is empty. A shared level another pod uses (EBUSY) or
// another pod's teardown removed first (ENOENT) stops the walk: that is
// not an error.
func removePodCgroup(parent string) error {
	m, err := cgroups.New(parent)
	if err != nil {
		return err
	}
	for _, mt := range m.Mounts() {
		m.Created = append(m.Created, mt.Dir)
	}
	err = m.Destroy() // the pod's own directories, and any left below them
	for _, mt := range m.Mounts() {
		removeEmptyLevels(filepath.Dir(mt.Dir), mt.Mountpoint)
	}
	return err
}

// removeEmptyLevels removes dir and its parents below top while they are
// empty (v1: in each controller's hierarchy; v2: the one).
func removeEmptyLevels(dir, top string) {
	for d := dir; strings.HasPrefix(d, top+"/"); d = filepath.Dir(d) {
		if unix.Rmdir(d) != nil {
			return
		}
	}
}
