package cri

import (
	"cmp"
	"context"
	"time"

	"golang.org/x/sys/unix"
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
// network for the pod); the cgroup detail comes from engine.CgroupDetail. kubelet adds the pod, namespace and container
// labels itself. The values are read at each call (engine.Stats and the
// writable layer's walk), so Metric.timestamp is the time of reading.

// Label keys: every metric has the container's (or, for the network, the
// sandbox's) id, name and image, as CRI-O's; some have more.
var (
	baseLabels    = []string{"id", "name", "image"}
	networkLabels = []string{"id", "name", "image", "interface"}
	faultLabels   = []string{"id", "name", "image", "failure_type", "scope"}
	deviceLabels  = []string{"id", "name", "image", "device"}
	blkioLabels   = []string{"id", "name", "image", "device", "major", "minor", "operation"}
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

// metrics are the metrics hull reports, in cadvisor's names and units:
// those critest expects of a runtime (cadvisor's set on the legacy stats
// provider), less hugetlb, pressure, CPU quota, memory reservation and
// ulimits, which no runtime reports yet. The per-device block I/O ones
// (container_blkio_device_usage_total, container_fs_reads_total,
// container_fs_writes_total) are described but have no values: the
// cgroup's I/O counters are read summed over devices, in bytes.
var metrics = []metricDesc{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", baseLabels, counter},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", baseLabels, counter},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", baseLabels, counter},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", baseLabels, counter},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", baseLabels, counter},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", baseLabels, counter},
	{"container_memory_working_set_bytes", "Current working set in bytes.", baseLabels, gauge},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", baseLabels, gauge},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", baseLabels, gauge},
	{"container_memory_rss", "Size of RSS in bytes.", baseLabels, gauge},
	{"container_memory_cache", "Number of bytes of page cache memory.", baseLabels, gauge},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", baseLabels, gauge},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", baseLabels, gauge},
	{"container_memory_swap", "Container swap usage in bytes.", baseLabels, gauge},
	{"container_memory_failcnt", "Number of memory usage hits limits.", baseLabels, counter},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", faultLabels, counter},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", baseLabels, counter},
	{"container_spec_cpu_period", "CPU period of the container.", baseLabels, gauge},
	{"container_spec_cpu_shares", "CPU share of the container.", baseLabels, gauge},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", baseLabels, gauge},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", baseLabels, gauge},
	{"container_processes", "Number of processes running inside the container.", baseLabels, gauge},
	{"container_threads", "Number of threads running inside the container.", baseLabels, gauge},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", baseLabels, gauge},
	{"container_file_descriptors", "Number of open file descriptors for the container.", baseLabels, gauge},
	{"container_sockets", "Number of open sockets for the container.", baseLabels, gauge},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", deviceLabels, gauge},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", deviceLabels, gauge},
	{"container_fs_inodes_total", "Number of Inodes.", deviceLabels, gauge},
	{"container_fs_inodes_free", "Number of available Inodes.", deviceLabels, gauge},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", deviceLabels, counter},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", deviceLabels, counter},
	{"container_fs_reads_total", "Cumulative count of reads completed.", deviceLabels, counter},
	{"container_fs_writes_total", "Cumulative count of writes completed.", deviceLabels, counter},
	{"container_blkio_device_usage_total", "Blkio Device bytes usage.", blkioLabels, counter},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", baseLabels, gauge},
	{"container_last_seen", "Last time a container was seen by the exporter.", baseLabels, gauge},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", networkLabels, counter},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", networkLabels, counter},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", networkLabels, counter},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", networkLabels, counter},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", networkLabels, counter},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", networkLabels, counter},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", networkLabels, counter},
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
	now := time.Now()
	m := &metricSet{t: now.UnixNano()}
	id, name, img := c.ID, c.Config.Labels[labelName], c.Config.Image
	base := func(metric string, v uint64) { m.add(metric, v, id, name, img) }
	o := c.Config.Spec
	base("container_spec_cpu_period", uint64(cmp.Or(o.CPUPeriod, 100000))) // the kernel's default period
	base("container_spec_cpu_shares", uint64(cmp.Or(o.CPUShares, 1024)))   // and default shares
	base("container_spec_memory_limit_bytes", uint64(max(o.Memory, 0)))
	base("container_spec_memory_swap_limit_bytes", uint64(max(o.MemorySwap, 0)))
	base("container_last_seen", uint64(now.Unix()))
	if !c.Started.IsZero() {
		base("container_start_time_seconds", uint64(c.Started.Unix()))
	}
	dev := s.opts.Root
	m.add("container_fs_usage_bytes", st.WritableLayer.GetUsedBytes().GetValue(), id, name, img, dev)
	var fs unix.Statfs_t
	if unix.Statfs(s.opts.Root, &fs) == nil {
		m.add("container_fs_limit_bytes", fs.Blocks*uint64(fs.Bsize), id, name, img, dev)
		m.add("container_fs_inodes_total", fs.Files, id, name, img, dev)
		m.add("container_fs_inodes_free", fs.Ffree, id, name, img, dev)
	}
	if es == nil {
		return &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: m.out}
	}
	base("container_cpu_usage_seconds_total", es.CPUNanos/uint64(time.Second))
	base("container_memory_working_set_bytes", es.MemoryUsage)
	base("container_memory_usage_bytes", es.MemoryTotal)
	base("container_memory_rss", es.MemoryRSS)
	m.add("container_memory_failures_total", es.PageFaults, id, name, img, "pgfault", "container")
	m.add("container_memory_failures_total", es.MajorPageFaults, id, name, img, "pgmajfault", "container")
	m.add("container_fs_reads_bytes_total", es.BlockRead, id, name, img, dev)
	m.add("container_fs_writes_bytes_total", es.BlockWrite, id, name, img, dev)
	if d, err := s.eng.CgroupDetail(ctx, c.ID); err == nil {
		base("container_cpu_user_seconds_total", d.CPUUserNanos/uint64(time.Second))
		base("container_cpu_system_seconds_total", d.CPUSystemNanos/uint64(time.Second))
		base("container_cpu_cfs_periods_total", d.CFSPeriods)
		base("container_cpu_cfs_throttled_periods_total", d.CFSThrottledPeriods)
		base("container_cpu_cfs_throttled_seconds_total", d.CFSThrottledNanos/uint64(time.Second))
		base("container_memory_max_usage_bytes", d.MemoryPeak)
		base("container_memory_cache", d.MemoryCache)
		base("container_memory_kernel_usage", d.MemoryKernel)
		base("container_memory_mapped_file", d.MemoryMappedFile)
		base("container_memory_swap", d.MemorySwap)
		base("container_memory_failcnt", d.MemoryFailcnt)
		base("container_oom_events_total", d.OOMKills)
		base("container_processes", d.Processes)
		base("container_threads", d.Threads)
		base("container_threads_max", d.ThreadsMax)
		base("container_file_descriptors", d.FileDescriptors)
		base("container_sockets", d.Sockets)
	}
	return &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: m.out}
}

// podSandboxMetrics are one sandbox's metrics: its network's, and its
// containers'.
func (s *Server) podSandboxMetrics(ctx context.Context, p *engine.Pod) (*runtimeapi.PodSandboxMetrics, error) {
	cs, err := s.podContainers(ctx, p)
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
		for _, v := range []struct {
			metric string
			value  uint64
		}{
			{"container_network_receive_bytes_total", i.RxBytes},
			{"container_network_receive_packets_total", i.RxPackets},
			{"container_network_receive_packets_dropped_total", i.RxDropped},
			{"container_network_receive_errors_total", i.RxErrors},
			{"container_network_transmit_bytes_total", i.TxBytes},
			{"container_network_transmit_packets_total", i.TxPackets},
			{"container_network_transmit_packets_dropped_total", i.TxDropped},
			{"container_network_transmit_errors_total", i.TxErrors},
		} {
			m.add(v.metric, v.value, p.ID, name, "", i.Name)
		}
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
