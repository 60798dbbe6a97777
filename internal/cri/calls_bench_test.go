package cri

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkCalls measures CreateContainer and the status and list calls
// through gRPC, with benchPods sandboxes of one running container each
// (bench/cri.sh compares them with containerd; this is the in-process
// view, for pprof: go test -bench Calls -cpuprofile).
func BenchmarkCalls(b *testing.B) {
	const benchPods = 20
	c, f := serveRuntime(b)
	ctx := b.Context()
	var pods, ctrs []string
	var cfgs []*runtimeapi.PodSandboxConfig
	for i := range benchPods {
		pod := sandboxConfig(b, fmt.Sprintf("bench%d", i))
		id := runSandbox(b, c, pod)
		ctr := createContainer(b, c, f, id, pod, "sleeper", nil, "sleep", "600")
		startContainer(b, c, ctr)
		pods, ctrs, cfgs = append(pods, id), append(ctrs, ctr), append(cfgs, pod)
	}
	made := 0 // attempts across the runs -count makes with this server
	b.Run("CreateContainer", func(b *testing.B) {
		for ; b.Loop(); made++ {
			cc := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "made", Attempt: uint32(made)},
				Image:    &runtimeapi.ImageSpec{Image: f.Busybox.Ref},
				Command:  []string{"true"},
				LogPath:  fmt.Sprintf("made/%d.log", made),
			}
			if _, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pods[0], Config: cc, SandboxConfig: cfgs[0]}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RemoveContainer", func(b *testing.B) { // as critest's: of a container started and stopped
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			id := createContainer(b, c, f, pods[1], cfgs[1], fmt.Sprintf("removed%d", i), nil, "sleep", "600")
			startContainer(b, c, id)
			if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ImageStatus", func(b *testing.B) { // critest's CreateContainer asks it first
		for b.Loop() {
			if _, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ContainerStatus", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctrs[i%len(ctrs)]}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PodSandboxStatus", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pods[i%len(pods)]}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListContainers", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListPodSandbox", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStatusAfterStart is critest's StatusContainer: the status
// (verbose) of a container just started, the first asked for it.
func BenchmarkStatusAfterStart(b *testing.B) {
	c, f := serveRuntime(b)
	ctx := b.Context()
	pod := sandboxConfig(b, "bench")
	podID := runSandbox(b, c, pod)
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := createContainer(b, c, f, podID, pod, fmt.Sprintf("c%d", i), nil, "sleep", "600")
		startContainer(b, c, id)
		if d := os.Getenv("HULL_BENCH_SETTLE"); d != "" {
			settle, _ := time.ParseDuration(d)
			time.Sleep(settle)
		}
		b.StartTimer()
		t0 := time.Now()
		if _, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
		b.StopTimer()
		c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "median-µs")
}
