package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
	"hull/internal/engine"
)

// The pod's cgroup. kubelet sends the sandbox's cgroup parent
// (/kubepods/burstable/pod<uid> with the cgroupfs driver hull reports)
// and normally makes it itself, with the pod's limits, before
// RunPodSandbox. When it does not exist (crictl, critest, a kubelet
// without its pod cgroups), hull makes it at RunPodSandbox in every
// hierarchy (each v1 controller's, or the v2 path with its controllers
// enabled), sets the sandbox's resources on it (LinuxPodSandboxConfig
// resources, which include the pod overhead; the overhead alone when
// only it is sent), and removes it with the sandbox. The directories it
// is to make are named in the reserved label io.hull.cri.cgroup before
// any is made (the sandbox is recorded first), so whatever a killed
// server left is removed with the sandbox; one kubelet made is never
// touched.

// labelCgroup lists, as JSON, the cgroup directories hull made for the
// sandbox; the engine's RemovePod removes them (so does `hull pod rm`).
const labelCgroup = engine.LabelCRICgroup

// planPodCgroup returns the label value naming the directories of cgroup
// parent that do not exist, in every hierarchy, parents first ("" if
// none: kubelet made it).
func planPodCgroup(parent string) (string, error) {
	if parent == "" {
		return "", nil
	}
	m, err := cgroups.New(cgroups.ContainerPath(parent, ""))
	if err != nil {
		return "", fmt.Errorf("pod cgroup %s: %w", parent, err)
	}
	var missing []string
	for _, mt := range m.Mounts() {
		cur := mt.Mountpoint
		for _, part := range strings.Split(strings.Trim(m.Path, "/"), "/") {
			cur = filepath.Join(cur, part)
			if _, err := os.Stat(cur); err != nil {
				missing = append(missing, cur)
			}
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	b, _ := json.Marshal(missing)
	return string(b), nil
}

// makePodCgroup makes the cgroup parent that label (planPodCgroup's)
// names, with the sandbox's limits.
func makePodCgroup(parent, label string, c *runtimeapi.LinuxPodSandboxConfig) error {
	if label == "" {
		return nil
	}
	m, err := cgroups.New(cgroups.ContainerPath(parent, ""))
	if err == nil {
		err = m.Create()
	}
	if err != nil {
		return fmt.Errorf("pod cgroup %s: %w", parent, err)
	}
	r := c.GetResources()
	if r == nil {
		r = c.GetOverhead()
	}
	if err := m.Set(podResources(r)); err != nil {
		return fmt.Errorf("pod cgroup %s: limits: %w", parent, err)
	}
	return nil
}

// podResources are the CRI's pod limits as the runtime spec's.
func podResources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	if r == nil {
		return nil
	}
	out := &specs.LinuxResources{}
	if r.GetCpuShares() > 0 || r.GetCpuQuota() != 0 || r.GetCpuPeriod() > 0 || r.GetCpusetCpus() != "" {
		out.CPU = &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
		if v := uint64(r.GetCpuShares()); v > 0 {
			out.CPU.Shares = &v
		}
		if v := r.GetCpuQuota(); v != 0 {
			out.CPU.Quota = &v
		}
		if v := uint64(r.GetCpuPeriod()); v > 0 {
			out.CPU.Period = &v
		}
	}
	if v := r.GetMemoryLimitInBytes(); v > 0 {
		out.Memory = &specs.LinuxMemory{Limit: &v}
	}
	return out
}

// UpdatePodSandboxResources is kubelet's note of a pod's new limits after
// an in-place resize (or overhead change). kubelet resizes the pod
// cgroups it made itself, so for those there is nothing to do; a pod
// cgroup hull made (the parent did not exist at RunPodSandbox) gets the
// new limits here, as it got the first ones.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	p, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if p.Config.Labels[labelCgroup] == "" || p.Config.CgroupParent == "" {
		return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
	}
	r := req.GetResources()
	if r == nil {
		r = req.GetOverhead()
	}
	if r == nil {
		return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
	}
	m, err := cgroups.New(cgroups.ContainerPath(p.Config.CgroupParent, ""))
	if err != nil {
		return nil, fmt.Errorf("pod %s: cgroup %s: %w", p.Name, p.Config.CgroupParent, err)
	}
	if err := m.Set(podResources(r)); err != nil {
		return nil, fmt.Errorf("pod %s: cgroup %s: new limits: %w", p.Name, p.Config.CgroupParent, err)
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
