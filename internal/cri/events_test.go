package cri

import (
	"context"
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
	time.Sleep(300 * time.Millisecond)
	next := func(want runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended, waiting for %s", want)
			}
			if ev.ContainerEventType != want {
				t.Fatalf("event %s of %s; want %s", ev.ContainerEventType, ev.ContainerId, want)
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event after 10s", want)
		}
		return nil
	}

	id := createContainer(t, c, f, podID, pod, "short", nil, "sh", "-c", "sleep 0.5")
	ev := next(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	if ev.ContainerId != id || ev.CreatedAt == 0 || ev.PodSandboxStatus.GetId() != podID || ev.PodSandboxStatus.GetMetadata().GetUid() != "uid-events" {
		t.Errorf("created event = %v; want %s in sandbox %s with its metadata", ev, id, podID)
	}
	if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].Id != id || ev.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("created event's statuses = %v", ev.ContainersStatuses)
	}
	startContainer(t, c, id)
	next(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	ev = next(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT) // it exits by itself
	if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("stopped event's statuses = %v; want exited", ev.ContainersStatuses)
	}
	// Removed with its sandbox: the DELETED event still carries the
	// sandbox's status.
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	ev = next(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	if ev.ContainerId != id || ev.PodSandboxStatus.GetMetadata().GetName() != "events" || len(ev.ContainersStatuses) != 0 {
		t.Errorf("deleted event = %v; want %s with its sandbox's status, no containers", ev, id)
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
