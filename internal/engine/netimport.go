package engine

import (
	"context"

	"github.com/containerd/errdefs"

	"hull/internal/network"
)

// ImportNetwork makes the CNI conflist data, read from file source (a
// CNI configuration directory's, e.g. /etc/cni/net.d/10-pods.conflist),
// one of hull's networks under the conflist's name, and returns that
// name: what a pod's or container's network mode then names. An import
// of a changed file rewrites the network; pods attached keep what they
// got. See network.Import for what the copy changes.
func (e *Engine) ImportNetwork(ctx context.Context, data []byte, source string) (string, error) {
	m, err := e.networks()
	if err != nil {
		return "", err
	}
	n, err := m.Import(ctx, data, source)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return n.Name, nil
}

// PodConflist is the pod network of a CNI configuration directory (the
// first valid configuration in lexical order; see network.PodConflist).
var PodConflist = network.PodConflist
