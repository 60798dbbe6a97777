package cri

import (
	"context"
	"slices"

	"hull/internal/engine"
)

// The status and list calls (ContainerStatus, ListContainers,
// PodSandboxStatus, ListPodSandbox, the stats lists, and the container
// events' statuses)
// answer from an in-memory view of the engine's records (engine.View):
// kubelet asks them every second for every pod, and reading and
// decoding every row and checking every container's monitor on each call
// cost several times what containerd's answers from memory cost. The
// view reads the database again only when something was committed (by
// this server, a monitor recording an exit, or the CLI) and keeps List's
// reconciliation, so the answers are the engine's. The calls that change
// things look their objects up in the engine itself, as before, but for
// RemoveContainer (the last call of a container's life, whose claim
// checks the row again) and CreateContainer's sandbox.

// view is the server's view of the records, made on first use.
func (s *Server) view(ctx context.Context) (*engine.View, error) {
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	if s.records == nil {
		v, err := s.eng.NewView(ctx)
		if err != nil {
			return nil, err
		}
		s.records = v
	}
	return s.records, nil
}

// Close releases what the server holds of the engine (its view, the
// removal intents file); call it once the server is done, before the
// engine's Close.
func (s *Server) Close() error {
	s.intentsOnce.Do(func() {}) // none opened after this
	s.intents.close()           // a removal ending later leaves its line to Recover
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	if s.records == nil {
		return nil
	}
	err := s.records.Close()
	s.records = nil
	return err
}

// viewedContainer is container, from the view.
func (s *Server) viewedContainer(ctx context.Context, id string) (*engine.Container, error) {
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	return s.containerFrom(ctx, id, v.Container)
}

// warm reads container id into the view after a call changed it, as
// kubelet (and critest) ask about it next: a status after a start, a
// removal after a stop. That call then reads it from memory, the row
// read and the monitor's pidfd opened in the call that changed it
// (StartContainer, StopContainer: a fraction of a millisecond in calls
// of milliseconds) rather than in the next.
func (s *Server) warm(ctx context.Context, id string) {
	if v, err := s.view(ctx); err == nil {
		v.Container(ctx, id)
	}
}

// warmPod reads pod id into the view after a call changed it, as warm
// does a container: CreateContainer reads the pod next (kubelet and
// critest create its first container in the next call), and its row
// then costs no query and its configuration no decoding there.
func (s *Server) warmPod(ctx context.Context, id string) {
	if v, err := s.view(ctx); err == nil {
		v.Pod(ctx, id)
	}
}

// viewedImage is the stored image ref names, from the view's image
// records as of its last call (engine View.ResolveImage); nil if it
// cannot tell (the engine then resolves it itself, with its errors).
func (s *Server) viewedImage(ctx context.Context, ref string) *engine.Image {
	v, err := s.view(ctx)
	if err != nil {
		return nil
	}
	r, err := v.ResolveImage(ctx, ref)
	if err != nil {
		return nil
	}
	return r
}

// viewedPodContainers is podContainers, from the view.
func (s *Server) viewedPodContainers(ctx context.Context, p *engine.Pod) ([]*engine.Container, error) {
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := v.PodContainers(ctx, p.ID)
	return slices.DeleteFunc(cs, s.removing), err
}

// viewedPods are every pod, and viewedContainers every container, from
// the view (the list calls filter them).
func (s *Server) viewedPods(ctx context.Context) ([]*engine.Pod, error) {
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	return v.Pods(ctx)
}

func (s *Server) viewedContainers(ctx context.Context) ([]*engine.Container, error) {
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	return v.Containers(ctx)
}

// viewedSandbox is sandbox, from the view.
func (s *Server) viewedSandbox(ctx context.Context, id string) (*engine.Pod, error) {
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	return s.sandboxFrom(ctx, id, v.Pod)
}
