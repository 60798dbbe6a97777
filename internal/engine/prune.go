package engine

import (
	"context"
	"errors"
)

// PruneContainers removes every container that is not running, paused or
// restarting, except those keep spares (docker's container prune). It
// returns the removed IDs and the bytes their writable layers held.
func (e *Engine) PruneContainers(ctx context.Context, keep func(*Container) bool) ([]string, int64, error) {
	cs, err := e.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	e.sweepAside()
	var removed []string
	var freed int64
	var errs []error
	for _, c := range cs {
		if c.active() || c.State == StateRemoving || (keep != nil && keep(c)) {
			continue
		}
		u, _ := e.snap.Usage(ctx, snapshotKey(c.ID))
		if err := e.Remove(ctx, c.ID, false); err != nil {
			if !IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, c.ID)
		freed += u.Size
	}
	return removed, freed, errors.Join(errs...)
}
