package cri

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcError is the one place an engine error becomes a gRPC status: its
// errdefs class picks the code kubelet acts on, and the message is kept
// (it names the object and the cause). The generated stubs' Unimplemented
// ("method X not implemented") gets hull's message saying the RPC is not
// there yet.
func grpcError(fullMethod string, err error) error {
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.Unimplemented && strings.HasPrefix(st.Message(), "method ") && strings.HasSuffix(st.Message(), " not implemented") {
			return errNotYet(path.Base(fullMethod))
		}
		return err
	}
	return status.Error(errorCode(err), err.Error())
}

// errorCode maps errdefs classes (and context ends) to gRPC codes.
func errorCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errdefs.IsNotFound(err):
		return codes.NotFound
	case errdefs.IsAlreadyExists(err):
		return codes.AlreadyExists
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument
	case errdefs.IsFailedPrecondition(err), errdefs.IsConflict(err):
		return codes.FailedPrecondition
	case errdefs.IsUnavailable(err):
		return codes.Unavailable
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented
	case errdefs.IsPermissionDenied(err):
		return codes.PermissionDenied
	case errdefs.IsUnauthorized(err):
		return codes.Unauthenticated
	case errdefs.IsResourceExhausted(err):
		return codes.ResourceExhausted
	case errdefs.IsCanceled(err):
		return codes.Canceled
	case errdefs.IsDeadlineExceeded(err):
		return codes.DeadlineExceeded
	case errdefs.IsOutOfRange(err):
		return codes.OutOfRange
	case errdefs.IsDataLoss(err):
		return codes.DataLoss
	case errdefs.IsAborted(err):
		return codes.Aborted
	}
	return codes.Unknown
}
