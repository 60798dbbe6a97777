package cri

import (
	"io"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A sandbox's stats: the sums over its containers, its network
// interfaces, its process count and each container's stats (with the
// writable layer's use), as `crictl statsp` shows them.
func TestPodSandboxStats(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "stats")
	podID := runSandbox(t, c, pod)
	// One container writes 1 MiB into its writable layer and keeps
	// memory busy; the other only sleeps.
	writer := createContainer(t, c, f, podID, pod, "writer", nil, "sh", "-c", "dd if=/dev/zero of=/data bs=1024 count=1024 2>/dev/null; exec sleep 600")
	sleeper := createContainer(t, c, f, podID, pod, "sleeper", nil, "sleep", "600")
	startContainer(t, c, writer)
	startContainer(t, c, sleeper)
	// Traffic on the pod's interface: a ping of its gateway would leave
	// the namespace; any packet sent counts, so ask for an address the
	// bridge answers (the pod's own network's gateway).
	c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sleeper, Cmd: []string{"sh", "-c", "ping -c 1 -W 1 $(ip route | awk '/default/ {print $3}')"}, Timeout: 10})
	// Wait for the writer to have written its file.
	for range 50 {
		r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: writer, Cmd: []string{"sh", "-c", "test $(stat -c %s /data) = 1048576"}, Timeout: 10})
		if err == nil && r.ExitCode == 0 {
			break
		}
	}

	r, err := c.rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats
	if st.Attributes.Id != podID || st.Attributes.Metadata.Name != "stats" || st.Attributes.Labels["app"] != "stats" {
		t.Errorf("attributes = %v", st.Attributes)
	}
	lx := st.Linux
	if lx.Cpu.GetUsageCoreNanoSeconds().GetValue() == 0 || lx.Cpu.Timestamp == 0 {
		t.Errorf("cpu = %v; want the containers' CPU time", lx.Cpu)
	}
	m := lx.Memory
	if m.GetWorkingSetBytes().GetValue() == 0 || m.GetUsageBytes().GetValue() < m.GetWorkingSetBytes().GetValue() || m.GetRssBytes().GetValue() == 0 || m.GetPageFaults().GetValue() == 0 {
		t.Errorf("memory = %v; want working set <= usage, rss and page faults", m)
	}
	if n := lx.Process.GetProcessCount().GetValue(); n < 2 {
		t.Errorf("process count = %d; want the two sleeps at least", n)
	}
	if lx.Network.GetDefaultInterface().GetName() != "eth0" || lx.Network.DefaultInterface.GetTxBytes().GetValue() == 0 || len(lx.Network.Interfaces) != 1 {
		t.Errorf("network = %v; want eth0 (no lo) with the bytes it sent", lx.Network)
	}
	byID := map[string]*runtimeapi.ContainerStats{}
	for _, cs := range lx.Containers {
		byID[cs.Attributes.Id] = cs
	}
	if len(byID) != 2 || byID[writer] == nil || byID[sleeper] == nil {
		t.Fatalf("containers = %v; want writer and sleeper", lx.Containers)
	}
	if w := byID[writer].WritableLayer; w.GetUsedBytes().GetValue() < 1<<20 || w.GetInodesUsed().GetValue() == 0 || w.GetFsId().GetMountpoint() != c.root {
		t.Errorf("writer's writable layer = %v; want at least 1 MiB on %s", w, c.root)
	}
	if cs := byID[sleeper]; cs.Memory.GetRssBytes().GetValue() == 0 || cs.Memory.GetUsageBytes().GetValue() == 0 {
		t.Errorf("sleeper's memory = %v", cs.Memory)
	}
	// crictl shows them.
	t.Run("crictl", func(t *testing.T) {
		o, e, err := crictl{t: t, bin: crictlPath(t), sock: c.sock}.run("statsp", "-o", "json", "--id", podID)
		for _, want := range []string{podID, `"workingSetBytes"`, `"rssBytes"`, `"defaultInterface"`, `"processCount"`, `"writableLayer"`} {
			if err != nil || !strings.Contains(o, want) {
				t.Errorf("crictl statsp -o json: %v\n%s%s\nwant %s", err, o, e, want)
				break
			}
		}
	})
	// A second reading has a rate.
	r, err = c.rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil || r.Stats.Linux.Cpu.GetUsageNanoCores() == nil {
		t.Errorf("second PodSandboxStats = %v, %v; want usage_nano_cores", r, err)
	}

	// The list: by label, by ID prefix, and streamed.
	other := runSandbox(t, c, sandboxConfig(t, "other"))
	ls, err := c.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil || len(ls.Stats) != 2 {
		t.Fatalf("ListPodSandboxStats = %v, %v; want 2", ls, err)
	}
	ls, err = c.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "other"}}})
	if err != nil || len(ls.Stats) != 1 || ls.Stats[0].Attributes.Id != other || len(ls.Stats[0].Linux.Containers) != 0 {
		t.Errorf("ListPodSandboxStats(app=other) = %v, %v; want the empty pod", ls, err)
	}
	ls, err = c.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: podID[:12]}})
	if err != nil || len(ls.Stats) != 1 || ls.Stats[0].Attributes.Id != podID {
		t.Errorf("ListPodSandboxStats(id prefix) = %v, %v", ls, err)
	}
	stream, err := c.rt.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		b, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(b.PodSandboxStats)
	}
	if n != 2 {
		t.Errorf("StreamPodSandboxStats sent %d; want 2", n)
	}
	if _, err := c.rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "0000000000"}); err == nil {
		t.Error("PodSandboxStats of no sandbox succeeded")
	}
}
