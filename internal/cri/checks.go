package cri

import (
	"errors"
	"fmt"
	"os"

	"github.com/containerd/errdefs"

	"hull/internal/spec"
)

// Checks of a CreateContainer's host paths, made before anything of the
// container exists so that kubelet gets InvalidArgument with the cause,
// not an engine failure halfway.

// ensureHostPath makes a bind mount's missing source a directory, as
// containerd and CRI-O do (kubelet's hostPath volumes with no type rely
// on it, as they did on docker); a source that cannot be made is
// InvalidArgument naming it.
func ensureHostPath(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount source %s: %v", path, err))
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount source %s does not exist and cannot be made a directory: %v", path, err))
	}
	return nil
}

// checkSeccompProfile says whether path is a seccomp profile hull can
// load (a Localhost profile): InvalidArgument naming it if not.
func checkSeccompProfile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("seccomp localhost profile %s: %v", path, err))
	}
	if _, err := spec.ParseSeccompProfile(b, nil); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("seccomp localhost profile %s: %v", path, err))
	}
	return nil
}
