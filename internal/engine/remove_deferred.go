package engine

import (
	"context"

	"golang.org/x/sys/unix"

	"hull/internal/trace"
)

// RemoveDeferred removes a container as Remove does, but answers once the
// removal is claimed (the record says removing, by this process) and the
// container's process is killed: the rest (waiting for the monitor,
// runtime state and cgroups, unmounts, the layer, the directories, the
// record) goes on in a goroutine, which Close waits for. The claim frees
// the container's name: a new container may take it at once. It is for a
// long-lived server (the CRI's RemoveContainer) whose clients must treat
// a container being removed as gone: the CRI hides the removing state.
//
// A server killed midway leaves the record in state removing with a dead
// claimer: the next engine that reads it ends what is left of it
// (reconcile: abandonRemoval, which records it dead), and a removal, a
// prune or the CRI's Recover deletes it. A Remove or RemovePod of this
// engine that meets the container meanwhile waits for the goroutine.
func (e *Engine) RemoveDeferred(ctx context.Context, ref string, force bool) error {
	c, err := e.removeClaim(ctx, ref, force, true)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	e.mu.Lock()
	if e.deferred == nil {
		e.deferred = map[string]chan struct{}{}
	}
	e.deferred[c.ID] = done
	e.purging.Add(1)
	e.mu.Unlock()
	if c.active() {
		// The process goes now, as with Remove; removeFinish's own kill
		// finds it dead.
		e.rt.Kill(c.ID, unix.SIGKILL, true)
		trace.Mark("rm: killed")
	}
	go func() {
		defer e.purging.Done()
		removeErr := e.removeFinish(context.WithoutCancel(ctx), c)
		e.mu.Lock()
		delete(e.deferred, c.ID)
		e.mu.Unlock()
		close(done)
		if removeErr != nil {
			e.warn("remove container %s: %v", c.Name, removeErr)
		}
	}()
	return nil
}

// waitDeferredRemoval waits for a RemoveDeferred of container id under way
// in this engine, and says whether there was one.
func (e *Engine) waitDeferredRemoval(id string) bool {
	e.mu.Lock()
	done, ok := e.deferred[id]
	e.mu.Unlock()
	if ok {
		<-done
	}
	return ok
}
