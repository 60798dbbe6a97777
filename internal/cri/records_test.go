package cri

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The status and list calls answer from the server's view (records.go),
// and still show what other processes did since they last answered: an
// exit the container's monitor recorded, a container the CLI stopped, a
// monitor killed without a word (the view watches it), a pod the CLI
// stopped.
func TestStatusesShowOtherProcessesChanges(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "seen")
	podID := runSandbox(t, c, pod)
	listed := func(id string) runtimeapi.ContainerState {
		t.Helper()
		r, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: id}})
		if err != nil || len(r.Containers) != 1 {
			t.Fatalf("ListContainers(%s) = %v, %v; want it", id, r, err)
		}
		return r.Containers[0].State
	}

	// Stopped by the CLI: its monitor records the exit.
	stopped := createContainer(t, c, f, podID, pod, "stopped", nil, "sleep", "600")
	startContainer(t, c, stopped)
	if s := containerStatus(t, c, stopped); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("status = %v; want running", s.State)
	}
	if st := listed(stopped); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("listed %v; want running", st)
	}
	hullCLI(t, c, "kill", stopped)
	if s := waitExited(t, c, stopped); s.ExitCode != 137 || s.Reason != "Error" {
		t.Errorf("after hull kill: %v; want exit code 137", s)
	}
	if st := listed(stopped); st != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("listed %v after hull kill; want exited", st)
	}

	// A monitor killed records nothing: the view sees it gone, and the
	// container is reconciled as the engine's Get does it.
	orphan := createContainer(t, c, f, podID, pod, "orphan", nil, "sleep", "600")
	startContainer(t, c, orphan)
	if s := containerStatus(t, c, orphan); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("status = %v; want running", s.State)
	}
	rec, err := c.eng.Get(ctx, orphan)
	if err != nil || rec.MonitorPid == 0 {
		t.Fatalf("record %+v, %v; want its monitor", rec, err)
	}
	if err := unix.Kill(rec.MonitorPid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s := waitExited(t, c, orphan)
	if s.ExitCode != 137 || !strings.Contains(s.Message, "monitor") {
		t.Errorf("after its monitor was killed: %v; want exited, 137, the monitor's death", s)
	}

	// A pod the CLI stops.
	hullCLI(t, c, "pod", "stop", podID)
	r, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil || r.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("PodSandboxStatus after hull pod stop = %v, %v; want not ready", r, err)
	}
	l, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(l.Items) != 1 || l.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("ListPodSandbox after hull pod stop = %v, %v; want it not ready", l, err)
	}
}
