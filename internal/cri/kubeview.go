package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
