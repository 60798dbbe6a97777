package cri

import (
	"context"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// GetContainerEvents: the stream kubelet's evented PLEG reads instead of
// relisting every second. Its source is the engine's event log (the
// events table `hull events` reads, written by the engine and by each
// container's monitor, so a container that dies while no server runs is
// in it too): create, start, die and destroy of CRI containers become
// CREATED, STARTED, STOPPED and DELETED events, each with the status of
// the container's sandbox and of every container in it, as kubelet
// updates its pod cache from them.
//
// Lifecycle: the stream starts after the newest event (only what happens
// from now on, as containerd's) and polls the log every eventPoll until
// the client goes. A destroyed container's record is gone by the time
// its event is read, so the stream keeps the sandbox status of each CRI
// container it has seen (from the start, and at its events) to send with
// its DELETED event.

// eventPoll is how often a stream reads the event log (`hull events`
// follows at the same pace).
const eventPoll = 100 * time.Millisecond

// eventTypes maps engine actions to CRI event types.
var eventTypes = map[string]runtimeapi.ContainerEventType{
	"create":  runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	"start":   runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	"die":     runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	"destroy": runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams container events until the client goes.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ctx := stream.Context()
	seq, err := s.eng.LastEventSeq(ctx)
	if err != nil {
		return err
	}
	// The sandbox status of each CRI container seen, for its DELETED
	// event.
	known := map[string]*runtimeapi.PodSandboxStatus{}
	if cs, err := s.eng.List(ctx); err == nil {
		pods := map[string]*runtimeapi.PodSandboxStatus{}
		for _, c := range cs {
			if c.Config.Labels[labelName] == "" || c.Config.Pod == "" {
				continue
			}
			if _, ok := pods[c.Config.Pod]; !ok {
				pods[c.Config.Pod] = s.sandboxStatus(ctx, c.Config.Pod)
			}
			if ps := pods[c.Config.Pod]; ps != nil {
				known[c.ID] = ps
			}
		}
	}
	tick := time.NewTicker(eventPoll)
	defer tick.Stop()
	for {
		evs, err := s.eng.Events(ctx, seq)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, ev := range evs {
			seq = ev.Seq
			if resp := s.containerEvent(ctx, ev, known); resp != nil {
				if err := stream.Send(resp); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// containerEvent is the CRI event of an engine event, or nil when it is
// not one of a CRI container's.
func (s *Server) containerEvent(ctx context.Context, ev engine.Event, known map[string]*runtimeapi.PodSandboxStatus) *runtimeapi.ContainerEventResponse {
	typ, ok := eventTypes[ev.Action]
	if ev.Type != "container" || !ok {
		return nil
	}
	resp := &runtimeapi.ContainerEventResponse{ContainerId: ev.ID, ContainerEventType: typ, CreatedAt: ev.Time.UnixNano()}
	var podID string
	if c, err := s.eng.Get(ctx, ev.ID); err == nil && c.ID == ev.ID {
		if c.Config.Labels[labelName] == "" || c.Config.Pod == "" {
			return nil // not a CRI container
		}
		podID = c.Config.Pod
		resp.PodSandboxStatus = s.sandboxStatus(ctx, podID)
		if resp.PodSandboxStatus != nil {
			known[c.ID] = resp.PodSandboxStatus
		}
	} else {
		ps := known[ev.ID]
		if ps == nil {
			return nil // never a CRI container this stream saw
		}
		podID = ps.Id
		resp.PodSandboxStatus = s.sandboxStatus(ctx, podID)
		if resp.PodSandboxStatus == nil {
			resp.PodSandboxStatus = ps // the sandbox went with it
		}
	}
	if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		delete(known, ev.ID)
	}
	if resp.PodSandboxStatus == nil {
		return nil
	}
	resp.ContainersStatuses = s.podContainerStatuses(ctx, podID)
	return resp
}

// sandboxStatus is PodSandboxStatus's answer for the sandbox id, or nil.
func (s *Server) sandboxStatus(ctx context.Context, id string) *runtimeapi.PodSandboxStatus {
	r, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil
	}
	return r.Status
}

// podContainerStatuses are the statuses of the sandbox's CRI containers.
func (s *Server) podContainerStatuses(ctx context.Context, podID string) []*runtimeapi.ContainerStatus {
	r, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	if err != nil {
		return nil
	}
	var out []*runtimeapi.ContainerStatus
	for _, c := range r.Containers {
		if st, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id}); err == nil {
			out = append(out, st.Status)
		}
	}
	return out
}
