package cri

import "hull/internal/engine"

// GiveSpare hands the server one spare monitor of the caller's (engine
// NewSpare) for the next CreateContainer to bind, as if it were one of
// the pool's (spares.go): Create sends it the container's spec, it starts
// the container's process in the pod's namespaces, and StartContainer
// hands it the container. The server starts no other in its place. This
// is for `hull kube`'s supervisor (internal/kube/spare.go), whose
// in-process server keeps no pool (Options.Spares 0): a new pod's first
// container then starts from a monitor that was ready, its process
// started, when the supervisor asked for the start. Call it before the
// server's first call; nil gives nothing.
func (s *Server) GiveSpare(spare *engine.Spare) {
	if spare == nil {
		return
	}
	if s.spares == nil {
		// A pool of size 0: it holds what it is given and fills
		// nothing back.
		s.spares = &sparePool{eng: s.eng, bound: map[string]boundSpare{}, podNext: map[string]podSpare{}}
	}
	s.spares.mu.Lock()
	s.spares.idle = append(s.spares.idle, spare)
	s.spares.mu.Unlock()
}

// CloseSpares closes the spares the server holds, idle or bound to a
// container never started, and waits for them to end what they prepared.
func (s *Server) CloseSpares() { s.spares.close() }
