package cri

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"hull/internal/engine"
)

// sandboxNotRunning is StartContainer's answer for a container whose
// sandbox is not ready: containerd's (code Unknown, "sandbox container
// ID is not running"), so kubelet treats it as it does there (the pod's
// next sync makes a new sandbox). The engine's Start would otherwise
// start the stopped pod again, reviving a sandbox kubelet is stopping.
// Other errors pass unchanged.
func sandboxNotRunning(err error) error {
	var pe *engine.PodNotRunningError
	if !errors.As(err, &pe) {
		return err
	}
	return status.Error(codes.Unknown, fmt.Sprintf("sandbox container %q is not running", pe.Pod.ID))
}
