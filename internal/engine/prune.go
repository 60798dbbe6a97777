package engine

import (
	"context"
	"errors"
	"fmt"
)

// PruneContainers removes every container that is not running, paused or
// restarting and that f matches (docker's container prune). It returns
// the removed IDs and the bytes their writable layers held.
func (e *Engine) PruneContainers(ctx context.Context, f PruneFilter) ([]string, int64, error) {
	cs, err := e.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	e.sweepAside()
	var removed []string
	var freed int64
	var errs []error
	for _, c := range cs {
		if c.active() || c.State == StateRemoving || !f.Match(c.Created, c.Config.Labels) {
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

// PruneImages removes the untagged images (f.All: every image) that no
// container uses and f matches, then the layers and blobs nothing needs
// any more (docker's image prune). It returns docker's lines
// ("untagged: NAME", "deleted: ID") and the bytes freed.
func (e *Engine) PruneImages(ctx context.Context, f PruneFilter) ([]string, int64, error) {
	lines, freed, err := e.pruneImages(ctx, f)
	if err != nil {
		return lines, freed, err
	}
	pr, err := e.snap.Prune(ctx)
	if err != nil {
		return lines, freed, err
	}
	freed += pr.Bytes
	_, err = e.images.Collect(ctx)
	return lines, freed, err
}

// CollectBlobs deletes the stored blobs no image references: what a
// failed pull or load kept for its retry, or one killed midway left. It
// does nothing while a pull or load holds the store (their blobs are not
// recorded yet). It returns the digests deleted.
func (e *Engine) CollectBlobs(ctx context.Context) ([]string, error) { return e.images.Collect(ctx) }

// pruneImages removes the images of PruneImages, leaving their layers
// and blobs to the caller.
func (e *Engine) pruneImages(ctx context.Context, f PruneFilter) ([]string, int64, error) {
	du, err := e.DiskUsage(ctx)
	if err != nil {
		return nil, 0, err
	}
	var lines []string
	var freed int64
	for _, iu := range du.Images {
		r := iu.Image
		if iu.InUse || (!f.All && len(r.Names) > 0) {
			continue
		}
		if !f.Until.IsZero() || len(f.Labels) > 0 || len(f.NotLabels) > 0 {
			cf, err := e.images.Config(r)
			if err != nil {
				return lines, freed, err
			}
			if !f.Match(r.Created, cf.Config.Labels) {
				continue
			}
		}
		res, err := e.images.Remove(ctx, r.Digest.String(), true)
		if err != nil {
			return lines, freed, fmt.Errorf("prune image %s: %w", r.ConfigID.Hex[:12], err)
		}
		for _, u := range res.Untagged {
			lines = append(lines, "untagged: "+u)
		}
		lines = append(lines, "deleted: "+r.ConfigID.String())
		freed += r.Size
	}
	return lines, freed, nil
}
