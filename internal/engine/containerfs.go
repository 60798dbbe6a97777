package engine

import (
	"context"
	"fmt"
	"io"

	"hull/internal/snapshot"
)

// A container's writable layer is its snapshot (snapshotKey): the
// overlay upper dir, or with the copy driver a whole tree compared with
// the image's. Diff lists what it changed, Export archives the merged
// root filesystem, and Commit makes the layer the top of a new image.

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

// Export writes the container's root filesystem as a tar stream: the
// image's layers and the container's changes, merged (docker export).
// Volumes and bind mounts are not part of it.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := e.usable(ctx, ref)
	if err != nil {
		return err
	}
	_, dir, err := e.RootfsPath(ctx, c.ID)
	if err != nil {
		return err
	}
	if err := snapshot.WriteTree(ctx, dir, w); err != nil {
		return fmt.Errorf("export %s: %w", c.Name, err)
	}
	return nil
}
