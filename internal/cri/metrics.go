package cri

import (
	"context"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// Metrics for kubelet's /metrics/cadvisor when it takes pod and container
// stats from the CRI (feature PodAndContainerStatsFromCRI):
// ListMetricDescriptors names each metric, with cadvisor's names and
// units, and its label keys; ListPodSandboxMetrics gives the values, per
// container (CPU, memory, processes, disk, limits, start time) and per
// sandbox (the interfaces of its network namespace, as cadvisor reports
// network for the pod). kubelet adds the pod, namespace and container
// labels itself. The values are read at each call (engine.Stats and the
// writable layer's walk), so Metric.timestamp is the time of reading.

// Label keys: every metric has the container's (or, for the network, the
// sandbox's) id, name and image, as CRI-O's; some have one more.
var (
	baseLabels    = []string{"id", "name", "image"}
	networkLabels = []string{"id", "name", "image", "interface"}
	faultLabels   = []string{"id", "name", "image", "failure_type", "scope"}
	deviceLabels  = []string{"id", "name", "image", "device"}
)

// metricDesc is a metric's descriptor and type.
type metricDesc struct {
	name, help string
	labels     []string
	typ        runtimeapi.MetricType
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// metrics are the metrics hull measures, in cadvisor's names and units.
var metrics = []metricDesc{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", baseLabels, counter},
	{"container_memory_working_set_bytes", "Current working set in bytes.", baseLabels, gauge},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", baseLabels, gauge},
	{"container_memory_rss", "Size of RSS in bytes.", baseLabels, gauge},
	{"container_memory_cache", "Number of bytes of page cache memory.", baseLabels, gauge},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", faultLabels, counter},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", baseLabels, gauge},
	{"container_processes", "Number of processes running inside the container.", baseLabels, gauge},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", deviceLabels, gauge},
	{"container_fs_inodes_total", "Number of inodes the container uses on this filesystem.", deviceLabels, gauge},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", deviceLabels, counter},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", deviceLabels, counter},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", baseLabels, gauge},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", networkLabels, counter},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", networkLabels, counter},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", networkLabels, counter},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", networkLabels, counter},
}

// metricTypes maps each metric's name to its type.
var metricTypes = func() map[string]runtimeapi.MetricType {
	m := map[string]runtimeapi.MetricType{}
	for _, d := range metrics {
		m[d.name] = d.typ
	}
	return m
}()

// ListMetricDescriptors names the metrics ListPodSandboxMetrics reports.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, len(metrics))
	for i, d := range metrics {
		out[i] = &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: d.labels}
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// metricSet collects metrics read at one time.
type metricSet struct {
	t   int64
	out []*runtimeapi.Metric
}

func (m *metricSet) add(name string, v uint64, labels ...string) {
	m.out = append(m.out, &runtimeapi.Metric{Name: name, Timestamp: m.t, MetricType: metricTypes[name], LabelValues: labels, Value: &runtimeapi.UInt64Value{Value: v}})
}

// containerMetrics are one container's metrics.
func (s *Server) containerMetrics(ctx context.Context, c *engine.Container) *runtimeapi.ContainerMetrics {
	st, es := s.containerStats(ctx, c)
	m := &metricSet{t: time.Now().UnixNano()}
	id, name, img := c.ID, c.Config.Labels[labelName], c.Config.Image
	if lim := c.Config.Spec.Memory; lim > 0 {
		m.add("container_spec_memory_limit_bytes", uint64(lim), id, name, img)
	}
	m.add("container_fs_usage_bytes", st.WritableLayer.GetUsedBytes().GetValue(), id, name, img, s.opts.Root)
	m.add("container_fs_inodes_total", st.WritableLayer.GetInodesUsed().GetValue(), id, name, img, s.opts.Root)
	if !c.Started.IsZero() {
		m.add("container_start_time_seconds", uint64(c.Started.Unix()), id, name, img)
	}
	if es != nil {
		m.add("container_cpu_usage_seconds_total", es.CPUNanos/uint64(time.Second), id, name, img)
		m.add("container_memory_working_set_bytes", es.MemoryUsage, id, name, img)
		m.add("container_memory_usage_bytes", es.MemoryTotal, id, name, img)
		m.add("container_memory_rss", es.MemoryRSS, id, name, img)
		if es.MemoryTotal > es.MemoryRSS {
			m.add("container_memory_cache", es.MemoryTotal-es.MemoryRSS, id, name, img)
		}
		m.add("container_memory_failures_total", es.PageFaults, id, name, img, "pgfault", "container")
		m.add("container_memory_failures_total", es.MajorPageFaults, id, name, img, "pgmajfault", "container")
		m.add("container_processes", es.Pids, id, name, img)
		m.add("container_fs_reads_bytes_total", es.BlockRead, id, name, img, "")
		m.add("container_fs_writes_bytes_total", es.BlockWrite, id, name, img, "")
	}
	return &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: m.out}
}

// podSandboxMetrics are one sandbox's metrics: its network's, and its
// containers'.
func (s *Server) podSandboxMetrics(ctx context.Context, p *engine.Pod) (*runtimeapi.PodSandboxMetrics, error) {
	cs, err := s.eng.PodContainers(ctx, p)
	if err != nil {
		return nil, err
	}
	pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.ID}
	for _, c := range cs {
		if c.Config.Labels[labelName] != "" {
			pm.ContainerMetrics = append(pm.ContainerMetrics, s.containerMetrics(ctx, c))
		}
	}
	ifs, err := s.eng.PodInterfaces(ctx, p)
	if err != nil {
		return pm, nil // a sandbox going down has no network left to read
	}
	m := &metricSet{t: time.Now().UnixNano()}
	name := sandboxMetadata(p).GetName()
	for _, i := range ifs {
		m.add("container_network_receive_bytes_total", i.RxBytes, p.ID, name, "", i.Name)
		m.add("container_network_receive_errors_total", i.RxErrors, p.ID, name, "", i.Name)
		m.add("container_network_transmit_bytes_total", i.TxBytes, p.ID, name, "", i.Name)
		m.add("container_network_transmit_errors_total", i.TxErrors, p.ID, name, "", i.Name)
	}
	pm.Metrics = m.out
	return pm, nil
}

// ListPodSandboxMetrics reports the metrics of every CRI sandbox.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	pods, err := s.eng.ListPods(ctx)
	if err != nil {
		return nil, err
	}
	var out []*runtimeapi.PodSandboxMetrics
	for _, p := range pods {
		if p.Config.Labels[labelSandbox] == "" {
			continue
		}
		pm, err := s.podSandboxMetrics(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in batches.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	r, err := s.ListPodSandboxMetrics(stream.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return err
	}
	return sendBatches(r.PodMetrics, func(b []*runtimeapi.PodSandboxMetrics) error {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: b})
	})
}
