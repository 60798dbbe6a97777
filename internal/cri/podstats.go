package cri

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// Pod sandbox stats: a sandbox holds no process of its own (its
// namespaces are pinned, see sandbox.go), so its CPU, memory and process
// figures are the sums over its running containers' (engine.Stats of
// each), and its network figures the interfaces of its pinned network
// namespace. Each container's own stats come along, as kubelet's summary
// API wants them.

// podSandboxStats reads one sandbox's stats.
func (s *Server) podSandboxStats(ctx context.Context, p *engine.Pod) (*runtimeapi.PodSandboxStats, error) {
	cs, err := s.viewedPodContainers(ctx, p)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	lx := &runtimeapi.LinuxPodSandboxStats{}
	var cpu, ws, usage, rss, faults, major, procs uint64
	for _, c := range cs {
		if c.Config.Labels[labelName] == "" {
			continue
		}
		st, es := s.containerStats(ctx, c)
		lx.Containers = append(lx.Containers, st)
		if es != nil {
			cpu += es.CPUNanos
			ws += es.MemoryUsage
			usage += es.MemoryTotal
			rss += es.MemoryRSS
			faults += es.PageFaults
			major += es.MajorPageFaults
			procs += es.Pids
		}
	}
	lx.Cpu = s.cpuUsage(p.ID, now, cpu)
	lx.Memory = memoryUsage(now, ws, usage, rss, faults, major)
	lx.Process = &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: &runtimeapi.UInt64Value{Value: procs}}
	if ifs, err := s.eng.PodInterfaces(ctx, p); err == nil && len(ifs) > 0 {
		lx.Network = &runtimeapi.NetworkUsage{Timestamp: now}
		for _, i := range ifs {
			u := &runtimeapi.NetworkInterfaceUsage{
				Name:    i.Name,
				RxBytes: &runtimeapi.UInt64Value{Value: i.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: i.RxErrors},
				TxBytes: &runtimeapi.UInt64Value{Value: i.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: i.TxErrors},
			}
			lx.Network.Interfaces = append(lx.Network.Interfaces, u)
			// The pod's interface is eth0 (kubelet's default name);
			// else the first.
			if lx.Network.DefaultInterface == nil || i.Name == "eth0" {
				lx.Network.DefaultInterface = u
			}
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: p.ID, Metadata: sandboxMetadata(p),
			Labels: userLabels(p.Config.Labels), Annotations: p.Config.Annotations,
		},
		Linux: lx,
	}, nil
}

// PodSandboxStats reports one sandbox's stats.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	p, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st, err := s.podSandboxStats(ctx, p)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the stats of the CRI sandboxes, filtered
// by ID (or prefix) and labels.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	pods, err := s.viewedPods(ctx)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	var out []*runtimeapi.PodSandboxStats
	for _, p := range pods {
		if p.Config.Labels[labelSandbox] == "" ||
			f.GetId() != "" && !strings.HasPrefix(p.ID, f.GetId()) ||
			!matchLabels(p.Config.Labels, f.GetLabelSelector()) {
			continue
		}
		st, err := s.podSandboxStats(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// StreamPodSandboxStats is ListPodSandboxStats in batches.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	r, err := s.ListPodSandboxStats(stream.Context(), &runtimeapi.ListPodSandboxStatsRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendBatches(r.Stats, func(b []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b})
	})
}
