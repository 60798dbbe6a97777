package cri

import (
	"context"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// GetContainerEvents streams a CRI container's created, started, stopped
// and deleted events, each with its sandbox's status and its
// containers' statuses; containers made outside the CRI are not in it.
func TestGetContainerEvents(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "events")
	podID := runSandbox(t, c, pod)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rt.GetContainerEvents(sctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *runtimeapi.ContainerEventResponse, 16)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	// Give the stream its start (it sends only what happens after it).
	time.Sleep(600 * time.Millisecond)
	// seen: the event types each ID got, in order.
	seen := map[string][]runtimeapi.ContainerEventType{}
	waitFor := func(id string, want runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("stream ended, waiting for %s of %s", want, id)
				}
				seen[ev.ContainerId] = append(seen[ev.ContainerId], ev.ContainerEventType)
				if ev.ContainerId == id && ev.ContainerEventType == want {
					return ev
				}
			case <-timeout:
				t.Fatalf("no %s event of %s after 10s (seen %v)", want, id, seen)
			}
		}
	}

	id := createContainer(t, c, f, podID, pod, "short", nil, "sh", "-c", "sleep 0.5")
	ev := waitFor(id, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	if ev.ContainerId != id || ev.CreatedAt == 0 || ev.PodSandboxStatus.GetId() != podID || ev.PodSandboxStatus.GetMetadata().GetUid() != "uid-events" {
		t.Errorf("created event = %v; want %s in sandbox %s with its metadata", ev, id, podID)
	}
	if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].Id != id || ev.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("created event's statuses = %v", ev.ContainersStatuses)
	}
	startContainer(t, c, id)
	waitFor(id, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	ev = waitFor(id, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT) // it exits by itself
	if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("stopped event's statuses = %v; want exited", ev.ContainersStatuses)
	}
	// A sandbox made while the stream runs: CREATED and STARTED, with its
	// own ID.
	other := runSandbox(t, c, sandboxConfig(t, "other"))
	ev = waitFor(other, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	if ev.PodSandboxStatus.GetMetadata().GetName() != "other" || ev.PodSandboxStatus.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox started event = %v", ev)
	}
	// Removed with its sandbox: the container's DELETED event still
	// carries the sandbox's status; the sandbox's own DELETED follows.
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(id, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	if ev.PodSandboxStatus.GetMetadata().GetName() != "events" || len(ev.ContainersStatuses) != 0 {
		t.Errorf("deleted event = %v; want %s with its sandbox's status, no containers", ev, id)
	}
	ev = waitFor(podID, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	if ev.PodSandboxStatus.GetMetadata().GetName() != "events" {
		t.Errorf("sandbox deleted event = %v", ev)
	}
	want := []runtimeapi.ContainerEventType{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT}
	if !slices.Equal(seen[id], want) {
		t.Errorf("the container's events = %v; want %v", seen[id], want)
	}
	if got := seen[other]; len(got) != 2 || got[0] != runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT {
		t.Errorf("the new sandbox's events = %v; want CREATED, STARTED", got)
	}
	// A container made outside the CRI sends nothing.
	plain, err := c.eng.Create(ctx, engine.CreateOptions{Config: engine.Config{Image: f.Busybox.Ref, Pull: "never"}, Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.eng.Remove(context.Background(), plain.ID, true)
	select {
	case ev := <-events:
		t.Errorf("an event of a container the CRI did not make: %v", ev)
	case <-time.After(500 * time.Millisecond):
	}
}
