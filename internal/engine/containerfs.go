package engine

// A container's writable layer is its snapshot (snapshotKey): the
// overlay upper dir, or with the copy driver a whole tree compared with
// the image's. Commit makes the layer the top of a new image.

// runtimeMountpoints are where the runtime mounts what hull gives every
// container (its /etc files, /proc, /sys, /dev): made in the writable
// layer when the image lacks them, they are not the container's changes
// (docker keeps them in an "init" layer of their own), so Diff and
// Commit leave them out while they are empty.
var runtimeMountpoints = []string{
	"/dev", "/dev/console", "/dev/mqueue", "/dev/pts", "/dev/shm",
	"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys",
}
