// Command cribench drives a CRI runtime the way kubelet does for the
// simplest pod, for bench/cri.sh: one pod sandbox with one container
// running `sleep`, N times, then all of them stopped and removed. It
// speaks gRPC to the runtime's socket directly (no crictl process per
// call), so the times are the runtime's.
//
//	cribench --endpoint unix:///PATH --image IMG --logs DIR [--n 50] up
//	    Pulls IMG if the runtime does not have it (not timed), then for
//	    each of N pods: RunPodSandbox, CreateContainer (`sleep 3600`),
//	    StartContainer, one after another. Prints SECONDS=<wall time of
//	    the N pods> and the median and 99th percentile of each call in
//	    milliseconds.
//	cribench --endpoint unix:///PATH down
//	    Stops and removes every pod sandbox cribench made (its label),
//	    one after another (StopPodSandbox, RemovePodSandbox); prints
//	    SECONDS= and the medians.
//	cribench --endpoint unix:///PATH [--n 50] status
//	    For one pod cribench made and its container: PodSandboxStatus,
//	    ContainerStatus, ListPodSandbox and ListContainers N times each;
//	    prints each call's median in milliseconds.
//	cribench --endpoint unix:///PATH --image IMG pull
//	    Pulls IMG if the runtime does not have it.
//	cribench --endpoint unix:///PATH stub
//	    Serves on PATH a CRI runtime that answers every call critest
//	    -benchmark makes at once (stub.go): critest's own floor.
//
// The pods are what kubelet sends for a plain pod: their own network,
// IPC and UTS namespaces, each container its own PID namespace
// (NamespaceMode CONTAINER: kubelet's default), a log directory, no
// cgroup parent (the runtime's default place).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// benchLabel marks the pods cribench makes, so `down` removes only those.
const benchLabel = "io.hull.cribench"

func main() {
	endpoint := flag.String("endpoint", "", "the runtime's CRI socket, unix:///PATH (required)")
	image := flag.String("image", "", "the containers' image (up, pull)")
	logs := flag.String("logs", "", "directory under which each pod gets its log directory (up)")
	n := flag.Int("n", 50, "number of pods (up)")
	flag.Parse()
	if *endpoint == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cribench --endpoint unix:///PATH [--image IMG --logs DIR --n N] up|down|status|pull|stub")
		os.Exit(2)
	}
	if err := run(*endpoint, flag.Arg(0), *image, *logs, *n); err != nil {
		fmt.Fprintln(os.Stderr, "cribench:", err)
		os.Exit(1)
	}
}

func run(endpoint, cmd, image, logs string, n int) error {
	if cmd == "stub" {
		return stub(endpoint)
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	im := runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	switch cmd {
	case "pull":
		return pull(ctx, im, image)
	case "up":
		if image == "" || logs == "" {
			return fmt.Errorf("up needs --image and --logs")
		}
		if err := pull(ctx, im, image); err != nil {
			return err
		}
		return up(ctx, rt, image, logs, n)
	case "down":
		return down(ctx, rt)
	case "status":
		return status(ctx, rt, n)
	}
	return fmt.Errorf("unknown command %q: up, down, status, pull or stub", cmd)
}

// pull pulls image unless the runtime has it.
func pull(ctx context.Context, im runtimeapi.ImageServiceClient, image string) error {
	spec := &runtimeapi.ImageSpec{Image: image}
	st, err := im.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil {
		return fmt.Errorf("image status %s: %w", image, err)
	}
	if st.Image != nil {
		return nil
	}
	if _, err := im.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
		return fmt.Errorf("pull %s: %w", image, err)
	}
	return nil
}

// timings collects each call's durations by name, in call order.
type timings struct {
	names []string
	d     map[string][]time.Duration
}

func (t *timings) time(name string, f func() error) error {
	if t.d == nil {
		t.d = map[string][]time.Duration{}
	}
	if _, ok := t.d[name]; !ok {
		t.names = append(t.names, name)
	}
	t0 := time.Now()
	err := f()
	t.d[name] = append(t.d[name], time.Since(t0))
	return err
}

// print writes SECONDS= and each call's median and 99th percentile (of
// 50 calls, the slowest), for bench/cri.sh.
func (t *timings) print(total time.Duration) {
	fmt.Printf("SECONDS=%.4f\n", total.Seconds())
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, name := range t.names {
		ds := slices.Clone(t.d[name])
		slices.Sort(ds)
		fmt.Printf("MEDIAN_MS_%s=%.2f\n", name, ms(ds[len(ds)/2]))
		fmt.Printf("P99_MS_%s=%.2f\n", name, ms(ds[(len(ds)*99+99)/100-1]))
	}
}

func up(ctx context.Context, rt runtimeapi.RuntimeServiceClient, image, logs string, n int) error {
	var t timings
	t0 := time.Now()
	for i := range n {
		uid := fmt.Sprintf("cribench-%d-%d", os.Getpid(), i)
		pod := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("bench-%d", i), Uid: uid, Namespace: "cribench"},
			Hostname:     fmt.Sprintf("bench-%d", i),
			LogDirectory: filepath.Join(logs, uid),
			Labels:       map[string]string{benchLabel: "1"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				},
			},
		}
		var podID, ctrID string
		err := t.time("RunPodSandbox", func() error {
			r, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
			if err == nil {
				podID = r.PodSandboxId
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("pod %d: run sandbox: %w", i, err)
		}
		ctr := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  []string{"sleep", "3600"},
			LogPath:  "sleep/0.log",
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				},
			},
		}
		err = t.time("CreateContainer", func() error {
			r, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: ctr, SandboxConfig: pod})
			if err == nil {
				ctrID = r.ContainerId
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("pod %d: create container: %w", i, err)
		}
		err = t.time("StartContainer", func() error {
			_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
			return err
		})
		if err != nil {
			return fmt.Errorf("pod %d: start container: %w", i, err)
		}
	}
	t.print(time.Since(t0))
	return nil
}

func down(ctx context.Context, rt runtimeapi.RuntimeServiceClient) error {
	l, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{benchLabel: "1"},
	}})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var t timings
	t0 := time.Now()
	for _, p := range l.Items {
		if err := t.time("StopPodSandbox", func() error {
			_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
			return err
		}); err != nil {
			return fmt.Errorf("stop pod %s: %w", p.Id, err)
		}
		if err := t.time("RemovePodSandbox", func() error {
			_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
			return err
		}); err != nil {
			return fmt.Errorf("remove pod %s: %w", p.Id, err)
		}
	}
	if len(l.Items) == 0 {
		fmt.Println("SECONDS=0")
		return nil
	}
	t.print(time.Since(t0))
	return nil
}

func status(ctx context.Context, rt runtimeapi.RuntimeServiceClient, n int) error {
	sel := &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{benchLabel: "1"}}
	l, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: sel})
	if err != nil || len(l.Items) == 0 {
		return fmt.Errorf("no pod of cribench's (run up first): %v", err)
	}
	pod := l.Items[0].Id
	cl, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	if err != nil || len(cl.Containers) == 0 {
		return fmt.Errorf("pod %s has no container: %v", pod, err)
	}
	ctr := cl.Containers[0].Id
	var t timings
	t0 := time.Now()
	for range n {
		t.time("PodSandboxStatus", func() error {
			_, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
			return err
		})
		t.time("ContainerStatus", func() error {
			_, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr})
			return err
		})
		t.time("ListPodSandbox", func() error {
			_, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		})
		t.time("ListContainers", func() error {
			_, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		})
	}
	t.print(time.Since(t0))
	return nil
}
