package cri

import (
	"context"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// Container stats: engine.Stats (the container's cgroup) as the CRI's
// CPU and memory figures. A container that is not running has no cgroup
// to read: its stats are zeros at the time asked (as containerd reports
// a created container). The writable layer's usage is not measured yet
// (reported as 0 bytes, 0 inodes on the root's filesystem).

// containerStats is one container's stats.
func (s *Server) containerStats(ctx context.Context, c *engine.Container) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	st := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.ID, Metadata: containerMetadata(c),
			Labels: userLabels(c.Config.Labels), Annotations: c.Config.Annotations,
		},
		Cpu:    &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}},
		WritableLayer: &runtimeapi.FilesystemUsage{
			Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.opts.Root},
			UsedBytes: &runtimeapi.UInt64Value{}, InodesUsed: &runtimeapi.UInt64Value{},
		},
	}
	if c.IsRunning() {
		if es, err := s.eng.Stats(ctx, c.ID); err == nil {
			t := es.Time.UnixNano()
			st.Cpu.Timestamp, st.Cpu.UsageCoreNanoSeconds.Value = t, es.CPUNanos
			st.Memory.Timestamp, st.Memory.WorkingSetBytes.Value = t, es.MemoryUsage
		}
	}
	return st
}

// ContainerStats reports one container's CPU and memory use.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(ctx, c)}, nil
}

// ListContainerStats reports the CRI containers' stats, filtered by ID
// (or prefix), sandbox ID (or prefix) and labels.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	cs, err := s.eng.List(ctx)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	var out []*runtimeapi.ContainerStats
	for _, c := range cs {
		if c.Config.Labels[labelName] == "" || c.Config.Pod == "" ||
			f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) ||
			f.GetPodSandboxId() != "" && !strings.HasPrefix(c.Config.Pod, f.GetPodSandboxId()) ||
			!matchLabels(c.Config.Labels, f.GetLabelSelector()) {
			continue
		}
		out = append(out, s.containerStats(ctx, c))
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}
