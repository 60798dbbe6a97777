package cri

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CheckpointContainer is not served: a checkpoint is the container's
// process tree dumped by CRIU, which hull does not drive (and which is
// not installed here). kubelet's checkpoint API then answers that the
// runtime cannot do it.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, status.Error(codes.Unimplemented, "hull cri: CheckpointContainer is not supported: checkpoints need CRIU, which hull does not use")
}
