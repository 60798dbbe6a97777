package engine

import (
	"context"
	"database/sql"
	"errors"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/trace"
)

// RemoveDeferred removes a container as Remove does, but answers once the
// removal is claimed (the record says removing, by this process) and the
// container's process is killed: the rest (waiting for the monitor,
// runtime state and cgroups, unmounts, the layer, the directories, the
// record) goes on in a goroutine started a moment after the answer
// (afterAnswer, later.go), which Close waits for. The claim frees
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
	c, err := e.getStarted(ctx, ref)
	if err != nil {
		return err
	}
	return e.removeDeferred(ctx, c, ref, force)
}

// RemoveDeferredOf is RemoveDeferred of c, a container its caller has
// just read (Get): the CRI's RemoveContainer, which reads it to check it
// is the CRI's, so saves a second read on the path of its answer. A
// start under way (no process recorded yet) is waited for, as by
// RemoveDeferred; the claim checks the state again.
func (e *Engine) RemoveDeferredOf(ctx context.Context, c *Container, force bool) error {
	if c.State == StateRunning && c.Pid == 0 {
		return e.RemoveDeferred(ctx, c.ID, force)
	}
	return e.removeDeferred(ctx, c, c.ID, force)
}

func (e *Engine) removeDeferred(ctx context.Context, c *Container, ref string, force bool) error {
	c, err := e.removeClaimOf(ctx, c, ref, force, true)
	if err != nil {
		return err
	}
	if c.active() {
		// The process goes now, as with Remove; removeFinish's own kill
		// finds it dead.
		e.rt.Kill(c.ID, unix.SIGKILL, true)
		trace.Mark("rm: killed")
	}
	e.deferRemoval(c, func() error { return e.removeFinish(context.WithoutCancel(ctx), c) }, nil)
	return nil
}

// deferRemoval runs work, the rest of container c's removal, in the
// background (startLater) as this engine's removal of c: RemovalPending
// says so until it ends, and waitDeferredRemoval and Close wait for it.
// Its error is warned of and given to done (if not nil). false: one was
// under way already, and nothing is started.
func (e *Engine) deferRemoval(c *Container, work func() error, done func(error)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.deferred[c.ID]; ok {
		return false
	}
	if e.deferred == nil {
		e.deferred = map[string]*later{}
	}
	e.purging.Add(1)
	e.deferred[c.ID] = startLater(func() {
		defer e.purging.Done()
		err := work()
		e.mu.Lock()
		delete(e.deferred, c.ID)
		e.mu.Unlock()
		if err != nil {
			e.warn("remove container %s: %v", c.Name, err)
		}
		if done != nil {
			done(err)
		}
	})
	return true
}

// RemoveIntended is RemoveDeferredOf with the claim itself left to the
// goroutine too: it answers at once. For a caller that has already
// recorded, where a crash cannot lose it, that it will remove c (the
// CRI's removal intents, which its Recover carries out) and that hides c
// from its own callers from now on (RemovalPending): the claim's commit
// is then off the answer's path. done, if not nil, is called once the
// removal has ended, with its error (nil also when another removal, of
// this process or another, took the container first). A container whose
// start is under way (no process recorded yet) is removed as by
// RemoveDeferredOf.
func (e *Engine) RemoveIntended(ctx context.Context, c *Container, force bool, done func(error)) error {
	if c.State == StateRunning && c.Pid == 0 {
		err := e.RemoveDeferred(ctx, c.ID, force)
		if done != nil {
			done(err)
		}
		return err
	}
	e.AwaitCreation(c.ID)
	ctx = context.WithoutCancel(ctx)
	work := func() error {
		claimed, err := e.claimOf(ctx, c, c.ID, force, true)
		if IsNotFound(err) || errdefs.IsConflict(err) {
			return nil // another removal took it
		}
		if err != nil {
			return err
		}
		if claimed.active() {
			e.rt.Kill(claimed.ID, unix.SIGKILL, true)
			trace.Mark("rm: killed")
		}
		return e.removeFinish(ctx, claimed)
	}
	if !e.deferRemoval(c, work, done) && done != nil {
		go done(nil) // the one under way ends it
	}
	return nil
}

// RemovalPending says whether a removal of container id is under way in
// this engine (RemoveDeferred, RemoveIntended), claimed or not yet.
func (e *Engine) RemovalPending(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.deferred[id]
	return ok
}

// awaitRemovalNamed waits for a removal under way in this engine of the
// container named name, and says whether the name may be free now (it
// was being removed, or is no longer in use): a name is freed by the
// claim, which a RemoveIntended makes after its answer, so a create that
// meets the name in use waits for that.
func (e *Engine) awaitRemovalNamed(ctx context.Context, name string) bool {
	var id string
	err := e.db.QueryRowContext(ctx, `SELECT id FROM containers WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return true // freed since
	}
	return err == nil && e.waitDeferredRemoval(id)
}

// waitDeferredRemoval waits for a RemoveDeferred of container id under way
// in this engine, and says whether there was one.
func (e *Engine) waitDeferredRemoval(id string) bool {
	e.mu.Lock()
	l, ok := e.deferred[id]
	e.mu.Unlock()
	if ok {
		l.wait()
	}
	return ok
}

// claimRemoval is the removal claim of container id (see removeClaim) in
// one statement, where nothing stands in its way: not being removed
// already, and with force or not running. Otherwise (nothing changed:
// an error) the transaction of removeClaim decides, with its messages.
// One statement holds the write lock for less than a transaction's
// BEGIN, SELECT, UPDATE and COMMIT, on the path of RemoveContainer's
// answer.
func (e *Engine) claimRemoval(ctx context.Context, id string, force, freeName bool) error {
	pid, start := self()
	res, err := e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET state = ?, stop_requested = 1, claim_pid = ?, claim_start = ?,
		name = CASE WHEN ? THEN ? ELSE name END WHERE id = ? AND state != ? AND (? OR state NOT IN (?, ?, ?))`,
		StateRemoving, pid, start, freeName, ".removing-"+id, id, StateRemoving, force, StateRunning, StatePaused, StateRestarting)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errNotClaimed
	}
	return nil
}

var errNotClaimed = errors.New("not claimed in one statement")
