package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// recordPull keeps how a pull kubelet made for a sandbox ended (the
// request's sandbox config names the pod), so that `hull why pod/NAME`
// names a failed pull and the registry's error: kubelet creates no
// container until the pull succeeds, so nothing else records it.
func (s *Server) recordPull(ctx context.Context, pod *runtimeapi.PodSandboxConfig, image string, err error) {
	if pod.GetMetadata().GetName() == "" {
		return
	}
	if rerr := s.eng.RecordPodPull(context.WithoutCancel(ctx), podName(pod.GetMetadata()), image, err); rerr != nil {
		s.opts.Log.Debug("record pull for pod", "pod", pod.GetMetadata().GetName(), "error", rerr)
	}
}

// recordCreate keeps how a CreateContainer in pod p ended, by the
// container's name in the pod, so that `hull why pod/NAME` names a create
// refused before the container was recorded, with next (what to do): no
// container record tells it. A create of that name that succeeds clears
// it.
func (s *Server) recordCreate(p *engine.Pod, cc *runtimeapi.ContainerConfig, err error, next string) {
	name := cc.GetMetadata().GetName()
	if name == "" {
		return
	}
	if rerr := s.eng.RecordPodCreate(p.ID, name, imageName(cc), err, next); rerr != nil {
		s.opts.Log.Debug("record create for pod", "pod", p.Name, "container", name, "error", rerr)
	}
}

// imageName is the image of a container config as the pod names it.
func imageName(cc *runtimeapi.ContainerConfig) string {
	if u := cc.GetImage().GetUserSpecifiedImage(); u != "" {
		return u
	}
	return cc.GetImage().GetImage()
}
