package runtime

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Recursive read-only binds (the OCI option "rro", the CRI's
// recursive_read_only): a read-only bind is read-only only at its top;
// mounts below the source stay writable in the container. mount_setattr
// with AT_RECURSIVE (Linux 5.12) makes every mount of the cloned tree
// read-only before it is attached, so no part of it is ever writable in
// the container. There is no fallback: a kernel without it refuses the
// mount rather than give a writable one.

// recursiveReadOnly makes every mount of the detached tree m (from
// cloneTree; nil on a kernel without open_tree) read-only.
func recursiveReadOnly(m *os.File, src, dest string) error {
	if m == nil {
		return fmt.Errorf("bind %s on %s: a recursive read-only mount needs open_tree and mount_setattr (Linux 5.12)", src, dest)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	err := unix.MountSetattr(int(m.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr)
	if errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("bind %s on %s: a recursive read-only mount needs mount_setattr (Linux 5.12)", src, dest)
	}
	if err != nil {
		return fmt.Errorf("bind %s on %s: make it recursively read-only: %w", src, dest, err)
	}
	return nil
}

// RecursiveReadOnlySupported says whether this kernel has mount_setattr,
// which recursive read-only binds need (probed with a descriptor that
// cannot exist: EBADF means the call is there).
func RecursiveReadOnlySupported() bool {
	attr := unix.MountAttr{}
	err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &attr)
	return !errors.Is(err, unix.ENOSYS)
}
