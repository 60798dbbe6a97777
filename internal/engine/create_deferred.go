package engine

// Deferred creation (CreateOptions.Deferred). A CRI client creates a
// container in one call and starts it in the next; what the start needs
// of the creation beyond the record (the writable layer mounted, the
// /etc files, the spec, config.json, the spec sent to the container's
// spare monitor) is then made after Create has answered, in a goroutine,
// while the record names this process as the container's creator, as
// Create itself would have. The record exists from the answer on, with its
// image and stage create: a status or a list shows the container
// created. What acts on the container in this engine waits for the
// goroutine first: Start (then finds a failure recorded: stage create,
// with the error, and returns it), Update, the removals (removeClaimOf)
// and RemovePod of its pod; Close waits for every one. A server killed
// midway leaves a created container without config.json whose creator is
// gone: reconcile records the creation as interrupted (creationAbandoned),
// and the container is removed as any other.
//
// The goroutine starts a moment after the answer (afterAnswer, later.go),
// or at once when something waits for it (Start, mostly: kubelet and
// critest start a container in the call after the create).

// creation is a deferred creation under way.
type creation struct {
	pod string
	*later
}

// deferCreation runs finish, the rest of container c's creation, in the
// background (see above).
func (e *Engine) deferCreation(c *Container, finish func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.creating == nil {
		e.creating = map[string]creation{}
	}
	e.purging.Add(1)
	e.creating[c.ID] = creation{pod: c.Config.Pod, later: startLater(func() {
		defer e.purging.Done()
		finish()
		e.mu.Lock()
		delete(e.creating, c.ID)
		e.mu.Unlock()
	})}
}

// AwaitCreation waits for the deferred creation of container id under way
// in this engine, if any (see above): a caller that hands the container's
// spare monitor elsewhere (the CRI closing a spare never started) does
// so only once the creation has sent it what it sends.
func (e *Engine) AwaitCreation(id string) {
	e.mu.Lock()
	cr, ok := e.creating[id]
	e.mu.Unlock()
	if ok {
		cr.wait()
	}
}

// awaitPodCreations waits for the deferred creations of pod's containers
// (all of them with pod "*": Close).
func (e *Engine) awaitPodCreations(pod string) {
	e.mu.Lock()
	var waits []chan struct{}
	for _, cr := range e.creating {
		if cr.pod == pod || pod == "*" {
			cr.now()
			waits = append(waits, cr.done)
		}
	}
	e.mu.Unlock()
	for _, w := range waits {
		<-w
	}
}
