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
// Sandboxes send events too, with the sandbox's ID as container_id (as
// containerd's, whose sandbox is its pause container): kubelet drops a
// pod from its cache on a DELETED event whose ID is one of the pod's
// sandboxes. Engine pods log no events, so the stream compares the CRI
// sandboxes every sandboxPoll with what it last saw: a new one is
// CREATED (and STARTED when ready), one no longer ready STOPPED, one gone
// DELETED (with the status last seen).
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

// sandboxPoll is how often a stream compares the sandboxes (kubelet's own
// relist runs every second).
const sandboxPoll = 500 * time.Millisecond

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
	v, err := s.view(ctx)
	if err != nil {
		return err
	}
	if cs, err := v.Containers(ctx); err == nil {
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
	sandboxes := s.sandboxStates(ctx)
	lastSandboxes := time.Now()
	tick := time.NewTicker(eventPoll)
	defer tick.Stop()
	for {
		if time.Since(lastSandboxes) >= sandboxPoll {
			lastSandboxes = time.Now()
			now := s.sandboxStates(ctx)
			for _, resp := range sandboxEvents(sandboxes, now) {
				if resp.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
					// The whole status (network, namespaces) for what
					// changed; the list's fields serve a deleted one.
					if st := s.sandboxStatus(ctx, resp.ContainerId); st != nil {
						resp.PodSandboxStatus = st
					}
					resp.ContainersStatuses = s.podContainerStatuses(ctx, resp.ContainerId)
				}
				if err := stream.Send(resp); err != nil {
					return err
				}
			}
			if now != nil {
				sandboxes = now
			}
		}
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
	var c *engine.Container
	v, err := s.view(ctx)
	if err == nil {
		c, err = v.Container(ctx, ev.ID)
	}
	if err == nil && c.ID == ev.ID {
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

// sandboxStates are the CRI sandboxes by ID, as ListPodSandbox has them
// (one read of the pods per poll), in a status of their own (nil when
// they cannot be listed).
func (s *Server) sandboxStates(ctx context.Context) map[string]*runtimeapi.PodSandboxStatus {
	r, err := s.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil
	}
	out := map[string]*runtimeapi.PodSandboxStatus{}
	for _, p := range r.Items {
		out[p.Id] = &runtimeapi.PodSandboxStatus{Id: p.Id, Metadata: p.Metadata, State: p.State, CreatedAt: p.CreatedAt, Labels: p.Labels, Annotations: p.Annotations}
	}
	return out
}

// sandboxEvents are the events that take the sandboxes from before to
// now (nil now: no change known).
func sandboxEvents(before, now map[string]*runtimeapi.PodSandboxStatus) []*runtimeapi.ContainerEventResponse {
	if before == nil || now == nil {
		return nil
	}
	var out []*runtimeapi.ContainerEventResponse
	ev := func(st *runtimeapi.PodSandboxStatus, typ runtimeapi.ContainerEventType) {
		out = append(out, &runtimeapi.ContainerEventResponse{ContainerId: st.Id, ContainerEventType: typ, CreatedAt: time.Now().UnixNano(), PodSandboxStatus: st})
	}
	ready := func(st *runtimeapi.PodSandboxStatus) bool {
		return st.State == runtimeapi.PodSandboxState_SANDBOX_READY
	}
	for id, st := range now {
		prev, ok := before[id]
		switch {
		case !ok:
			ev(st, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
			if ready(st) {
				ev(st, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
			}
		case ready(prev) && !ready(st):
			ev(st, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
		case !ready(prev) && ready(st):
			ev(st, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
		}
	}
	for id, st := range before {
		if _, ok := now[id]; !ok {
			ev(st, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
		}
	}
	return out
}
