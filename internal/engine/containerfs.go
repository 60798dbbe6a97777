package engine

import (
	"context"
	"fmt"

	"hull/internal/snapshot"
)

// A container's writable layer is its snapshot (snapshotKey): the
// overlay upper dir, or with the copy driver a whole tree compared with
// the image's. Diff lists what it changed, and Commit makes the layer
// the top of a new image.

// runtimeMountpoints are where the runtime mounts what hull gives every
// container (its /etc files, /proc, /sys, /dev): made in the writable
// layer when the image lacks them, they are not the container's changes
// (docker keeps them in an "init" layer of their own), so Diff and
// Commit leave them out while they are empty.
var runtimeMountpoints = []string{
	"/dev", "/dev/console", "/dev/mqueue", "/dev/pts", "/dev/shm",
	"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys",
}

// Change is one path a container added (A), changed (C) or deleted (D).
type Change = snapshot.Change

// Diff lists what the container changed in its image's filesystem,
// docker's way (see snapshot.Changes).
func (e *Engine) Diff(ctx context.Context, ref string) ([]Change, error) {
	c, err := e.usable(ctx, ref)
	if err != nil {
		return nil, err
	}
	changes, err := e.snap.Changes(ctx, snapshotKey(c.ID), runtimeMountpoints)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.Name, err)
	}
	return changes, nil
}
