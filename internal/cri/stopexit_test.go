package cri

import (
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopContainer answers with the exit recorded by the server's engine
// from the exit file the container's hull-shim leaves, not by the monitor
// the shim execs back into (engine/stopexit.go): here that monitor is
// killed as it resumes (HULL_FAULT), and ContainerStatus still has the
// exit code, and an OOM kill as OOMKilled with 137. Before, the stop
// waited for that monitor, whose death left the exit unknown (255).
func TestStopContainerRecordsTheExit(t *testing.T) {
	t.Setenv("HULL_FAULT", "monitor: resumed") // for the monitors the server starts
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "stops")
	podID := runSandbox(t, c, pod)
	seven := createContainer(t, c, f, podID, pod, "seven", nil, "sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done")
	hog := createContainer(t, c, f, podID, pod, "hog", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}}
	}, "sh", "-c", "trap 'exec tail /dev/zero' TERM; echo ready; while true; do sleep 0.1; done")
	for _, id := range []string{seven, hog} {
		startContainer(t, c, id)
	}
	for _, id := range []string{seven, hog} {
		// The trap is set once the container says so.
		path := containerStatus(t, c, id).LogPath
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), "ready") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("container %s never said ready in %s", id, path)
			}
		}
	}
	for _, want := range []struct {
		id     string
		code   int32
		reason string
	}{{seven, 7, "Error"}, {hog, 137, "OOMKilled"}} {
		begin := time.Now()
		if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: want.id, Timeout: 20}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(begin)
		s := containerStatus(t, c, want.id)
		if s.State != runtimeapi.ContainerState_CONTAINER_EXITED || s.ExitCode != want.code || s.Reason != want.reason {
			t.Errorf("after StopContainer (%v): %v, code %d, reason %q; want exited, %d, %q", took, s.State, s.ExitCode, s.Reason, want.code, want.reason)
		}
		if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: want.id}); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
	}
}
