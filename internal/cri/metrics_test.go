package cri

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListMetricDescriptors names cadvisor's metrics; ListPodSandboxMetrics
// gives each a value per container (and the network per sandbox), with
// as many label values as its descriptor has keys.
func TestPodSandboxMetrics(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	d, err := c.rt.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, m := range d.Descriptors {
		keys[m.Name] = len(m.LabelKeys)
		if m.Help == "" || len(m.LabelKeys) == 0 {
			t.Errorf("descriptor %v: want help and label keys", m)
		}
	}
	for _, want := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_processes", "container_fs_usage_bytes"} {
		if _, ok := keys[want]; !ok {
			t.Errorf("no descriptor for %s", want)
		}
	}

	pod := sandboxConfig(t, "metrics")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "busy", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}
	}, "sleep", "600")
	startContainer(t, c, id)
	r, err := c.rt.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PodMetrics) != 1 || r.PodMetrics[0].PodSandboxId != podID || len(r.PodMetrics[0].ContainerMetrics) != 1 || r.PodMetrics[0].ContainerMetrics[0].ContainerId != id {
		t.Fatalf("ListPodSandboxMetrics = %v; want the pod and its container", r)
	}
	values := map[string]uint64{}
	var all []*runtimeapi.Metric
	all = append(all, r.PodMetrics[0].Metrics...)
	all = append(all, r.PodMetrics[0].ContainerMetrics[0].Metrics...)
	for _, m := range all {
		n, ok := keys[m.Name]
		if !ok || len(m.LabelValues) != n || m.Timestamp == 0 || m.Value == nil {
			t.Errorf("metric %v: want a described metric with %d label values and a value", m, n)
		}
		if m.Name == "container_network_receive_bytes_total" && m.LabelValues[3] != "eth0" {
			t.Errorf("network metric %v; want interface eth0", m)
		}
		if m.LabelValues[0] == id {
			values[m.Name] = m.Value.GetValue()
		}
	}
	if values["container_memory_working_set_bytes"] == 0 || values["container_processes"] != 1 || values["container_threads"] == 0 ||
		values["container_spec_memory_limit_bytes"] != 64<<20 || values["container_start_time_seconds"] == 0 ||
		values["container_file_descriptors"] < 3 || values["container_fs_inodes_total"] == 0 || values["container_spec_cpu_shares"] != 1024 {
		t.Errorf("container metrics = %v", values)
	}
	// Every described metric has a value but the per-device block I/O
	// ones (the cgroup's counters are read summed, in bytes).
	perDevice := []string{"container_blkio_device_usage_total", "container_fs_reads_total", "container_fs_writes_total"}
	seen := map[string]bool{}
	for _, m := range all {
		seen[m.Name] = true
	}
	for _, d := range d.Descriptors {
		if !seen[d.Name] && !slices.Contains(perDevice, d.Name) {
			t.Errorf("no value for %s", d.Name)
		}
	}
	if !slices.ContainsFunc(r.PodMetrics[0].Metrics, func(m *runtimeapi.Metric) bool { return m.Name == "container_network_transmit_bytes_total" }) {
		t.Errorf("sandbox metrics = %v; want its network", r.PodMetrics[0].Metrics)
	}
}

// UpdateRuntimeConfig keeps the pod CIDRs (across a restart of the
// server: they are in the run root) and Status shows them.
func TestUpdateRuntimeConfig(t *testing.T) {
	c := serve(t, Options{})
	ctx := ctxT(t)
	update := func(cidr string) error {
		_, err := c.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}}})
		return err
	}
	if err := update("10.244.1.0/24, fd00:10:244:1::/64"); err != nil {
		t.Fatal(err)
	}
	if err := update(""); err != nil { // nothing to change
		t.Fatal(err)
	}
	if err := update("10.244.1.0"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a CIDR without a prefix length: %v; want InvalidArgument", err)
	}
	data, err := os.ReadFile(filepath.Join(c.root, "run", "cri", "pod-cidr"))
	if err != nil || strings.TrimSpace(string(data)) != "10.244.1.0/24,fd00:10:244:1::/64" {
		t.Errorf("pod-cidr = %q, %v", data, err)
	}
	st, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil || !strings.Contains(st.Info["config"], `"podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"]`) {
		t.Errorf("Status config = %v, %v; want the pod CIDRs", st.GetInfo()["config"], err)
	}
}
