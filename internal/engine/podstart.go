package engine

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// PodNotRunningError is Start's refusal, with StartOptions.InRunningPod,
// of a container whose pod is stopped: a CRI sandbox that is not ready
// takes no container start (kubelet makes a new sandbox instead). Its
// class is FailedPrecondition.
type PodNotRunningError struct {
	Container string // the container's name
	Pod       *Pod
}

func (e *PodNotRunningError) Error() string {
	return fmt.Sprintf("container %s: its pod %s is %s, not running (start the pod first)", e.Container, e.Pod.Name, e.Pod.State)
}

func (e *PodNotRunningError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// checkPodRunning refuses a start in a pod that is not running.
func checkPodRunning(c *Container, p *Pod) error {
	if p.State != PodRunning {
		return &PodNotRunningError{Container: c.Name, Pod: p}
	}
	return nil
}
