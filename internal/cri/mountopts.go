package cri

import (
	"fmt"
	"slices"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/spec"
)

// Bind mount extras of the CRI: recursive read-only mounts and
// mount_options.

// bindOptions are the mount_options a CRI bind may carry: per-mount flags
// that only restrict what the container can do.
var bindOptions = []string{"ro", "noexec", "nosuid", "nodev", "noatime", "nodiratime", "relatime", "strictatime"}

// mountExtras adds to sm what the CRI mount m asks beyond a bind:
// recursive_read_only (the OCI option "rro": every mount below the
// source read-only too, runtime.recursiveReadOnly), which needs readonly
// and private propagation, as kubelet sends it; and mount_options.
func mountExtras(m *runtimeapi.Mount, sm spec.Mount) (spec.Mount, error) {
	if m.GetRecursiveReadOnly() {
		if !m.GetReadonly() {
			return sm, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount %s: recursive_read_only needs readonly too", m.GetContainerPath()))
		}
		if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return sm, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount %s: recursive_read_only needs private propagation, not %s", m.GetContainerPath(), m.GetPropagation()))
		}
		sm.Options = append(sm.Options, "rro")
	}
	for _, o := range m.GetMountOptions() {
		if !slices.Contains(bindOptions, o) {
			return sm, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount %s: mount option %q is not one a bind takes here (use %v)", m.GetContainerPath(), o, bindOptions))
		}
		sm.Options = append(sm.Options, o)
	}
	return sm, nil
}
