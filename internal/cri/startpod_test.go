package cri

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer in a sandbox that is not ready fails as containerd's
// does (code Unknown, "sandbox container ID is not running") and leaves
// the sandbox stopped: a restart racing the sandbox's stop cannot revive
// it. A restart of an exited container in a ready sandbox still works.
func TestStartContainerInStoppedSandbox(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	cfg := sandboxConfig(t, "stopped")
	pod := runSandbox(t, c, cfg)
	first := createContainer(t, c, f, pod, cfg, "once", nil, "true")
	startContainer(t, c, first)
	waitExited(t, c, first)
	id := createContainer(t, c, f, pod, cfg, "late", nil, "sleep", "300")
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
	if want := fmt.Sprintf("sandbox container %q is not running", pod); status.Code(err) != codes.Unknown || status.Convert(err).Message() != want {
		t.Errorf("StartContainer in a stopped sandbox: %v; want code Unknown, %q", err, want)
	}
	st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil || st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("sandbox after the refused start: %v, %v; want it still not ready", st.GetStatus().GetState(), err)
	}
	if s := containerStatus(t, c, id); s.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("refused container is %v, want still created", s.State)
	}
}
