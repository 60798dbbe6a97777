package cri

import (
	"context"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// Container stats: engine.Stats (the container's cgroup) as the CRI's
// CPU, memory and process figures, and the writable layer's disk use. A
// container that is not running has no cgroup to read: its CPU and
// memory are zeros at the time asked (as containerd reports a created
// container); its writable layer is measured all the same.

// containerStats is one container's stats, with the engine's reading it
// came from (nil when the container is not running).
func (s *Server) containerStats(ctx context.Context, c *engine.Container) (*runtimeapi.ContainerStats, *engine.Stats) {
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
	if u, err := s.eng.WritableLayerUsage(ctx, c.ID); err == nil {
		st.WritableLayer.UsedBytes.Value, st.WritableLayer.InodesUsed.Value = u.Bytes, u.Inodes
	}
	if !c.IsRunning() {
		return st, nil
	}
	es, err := s.eng.Stats(ctx, c.ID)
	if err != nil {
		return st, nil
	}
	t := es.Time.UnixNano()
	st.Cpu = s.cpuUsage(c.ID, t, es.CPUNanos)
	st.Memory = memoryUsage(t, es.MemoryUsage, es.MemoryTotal, es.MemoryRSS, es.PageFaults, es.MajorPageFaults)
	if lim := c.Config.Spec.Memory; lim > 0 && uint64(lim) > es.MemoryUsage {
		st.Memory.AvailableBytes = &runtimeapi.UInt64Value{Value: uint64(lim) - es.MemoryUsage}
	}
	return st, es
}

// memoryUsage is the CRI's memory figures.
func memoryUsage(t int64, workingSet, usage, rss, faults, majorFaults uint64) *runtimeapi.MemoryUsage {
	return &runtimeapi.MemoryUsage{
		Timestamp:       t,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: workingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: usage},
		RssBytes:        &runtimeapi.UInt64Value{Value: rss},
		PageFaults:      &runtimeapi.UInt64Value{Value: faults},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: majorFaults},
	}
}

// cpuUsage is the CRI's CPU figures for the object id (a container or a
// sandbox): the CPU time used, and the rate since the previous reading
// of id (usage_nano_cores, which kubelet's summary API shows as the
// current use; absent on the first reading, as containerd's).
func (s *Server) cpuUsage(id string, t int64, nanos uint64) *runtimeapi.CpuUsage {
	u := &runtimeapi.CpuUsage{Timestamp: t, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: nanos}}
	if rate, ok := s.cpu.rate(id, t, nanos); ok {
		u.UsageNanoCores = &runtimeapi.UInt64Value{Value: rate}
	}
	return u
}

// cpuRates keeps the previous CPU reading of each container and sandbox,
// to give the rate between two readings. Readings older than cpuKeep are
// dropped as the map grows, so objects that are gone do not pile up.
type cpuRates struct {
	mu   sync.Mutex
	last map[string]cpuReading
}

type cpuReading struct {
	t     int64
	nanos uint64
}

const cpuKeep = 10 * time.Minute

// rate records (t, nanos) for id and returns the CPU used per second
// (nanocores) since id's previous reading.
func (r *cpuRates) rate(id string, t int64, nanos uint64) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]cpuReading{}
	}
	prev, ok := r.last[id]
	r.last[id] = cpuReading{t, nanos}
	if len(r.last) > 1024 {
		for k, v := range r.last {
			if t-v.t > int64(cpuKeep) {
				delete(r.last, k)
			}
		}
	}
	if !ok || t <= prev.t || nanos < prev.nanos {
		return 0, false
	}
	return uint64(float64(nanos-prev.nanos) / float64(t-prev.t) * 1e9), true
}

// ContainerStats reports one container's CPU, memory and writable layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, _ := s.containerStats(ctx, c)
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the CRI containers' stats, filtered by ID
// (or prefix), sandbox ID (or prefix) and labels.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	cs, err := s.viewedContainers(ctx)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	var out []*runtimeapi.ContainerStats
	for _, c := range cs {
		if c.Config.Labels[labelName] == "" || c.Config.Pod == "" || s.removing(c) ||
			f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) ||
			f.GetPodSandboxId() != "" && !strings.HasPrefix(c.Config.Pod, f.GetPodSandboxId()) ||
			!matchLabels(c.Config.Labels, f.GetLabelSelector()) {
			continue
		}
		st, _ := s.containerStats(ctx, c)
		out = append(out, st)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}
