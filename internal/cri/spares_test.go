package cri

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// idleSpares is how many spares p has ready.
func (p *sparePool) idleSpares() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// waitSpare waits until the server's pool has a spare ready (filled in
// the background), so that the next CreateContainer binds one.
func waitSpare(t *testing.T, c *client) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); c.srv.spares.idleSpares() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the spare pool is still empty")
		}
	}
}

// gone says whether process pid has ended (and was reaped).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// With spares, CreateContainer binds a warm spare monitor to the
// container and StartContainer hands the container to it: the running
// container's monitor is that spare, and its output reaches the log the
// spare opened ahead. A container removed before it started ends its
// spare, with the attach socket it opened; so does one whose resources
// are updated before it starts, which then starts with a monitor of its
// own from config.json, with the update.
func TestStartContainerTakesBoundSpare(t *testing.T) {
	c, f := serveRuntimeWith(t, Options{Spares: 1})
	ctx := ctxT(t)
	pod := sandboxConfig(t, "spare")
	podID := runSandbox(t, c, pod)

	waitSpare(t, c)
	id := createContainer(t, c, f, podID, pod, "app", nil, "sh", "-c", "echo from the spare; exec sleep 600")
	pid := c.srv.spares.boundPid(id)
	if pid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	startContainer(t, c, id)
	if pid := c.srv.spares.boundPid(id); pid != 0 {
		t.Errorf("the spare %d is still bound after StartContainer", pid)
	}
	rec, err := c.eng.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.MonitorPid != pid {
		t.Errorf("the container's monitor is %d; want the spare bound at create, %d", rec.MonitorPid, pid)
	}
	if s := containerStatus(t, c, id); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("state %v; want running", s.State)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log, _ := os.ReadFile(containerStatus(t, c, id).LogPath)
		if strings.Contains(string(log), " stdout F from the spare\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log = %q; want the container's output", log)
		}
	}

	// Removed before it started: its spare ends, with what it opened.
	waitSpare(t, c)
	never := createContainer(t, c, f, podID, pod, "never", nil, "sleep", "600")
	npid := c.srv.spares.boundPid(never)
	if npid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	sock := c.eng.AttachSocket(never)
	if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: never}); err != nil {
		t.Fatal(err)
	}
	if !gone(npid) {
		t.Errorf("the spare %d of a container removed before it started is still there", npid)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("attach socket %s left by the spare (%v)", sock, err)
	}

	// Updated before it started: the spare's spec would be stale.
	waitSpare(t, c)
	upd := createContainer(t, c, f, podID, pod, "updated", nil, "sleep", "600")
	upid := c.srv.spares.boundPid(upd)
	if upid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	if _, err := c.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: upd,
		Linux: &runtimeapi.LinuxContainerResources{CpuShares: 300}}); err != nil {
		t.Fatal(err)
	}
	if !gone(upid) {
		t.Errorf("the spare %d of a container updated before it started is still there", upid)
	}
	startContainer(t, c, upd)
	if s := containerStatus(t, c, upd); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING || s.Resources.GetLinux().GetCpuShares() != 300 {
		t.Errorf("updated container: %v, resources %v; want running with 300 CPU shares", s.State, s.Resources)
	}

	// A sandbox removed with a container never started ends its spare.
	waitSpare(t, c)
	left := createContainer(t, c, f, podID, pod, "left", nil, "sleep", "600")
	lpid := c.srv.spares.boundPid(left)
	if lpid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if !gone(lpid) {
		t.Errorf("the spare %d of a removed sandbox's container is still there", lpid)
	}
}
