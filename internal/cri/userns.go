package cri

import (
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// User namespaces (kubelet's hostUsers: false). kubelet sends a pod's
// NamespaceOption.userns_options: NODE (the host's, the default) or POD
// with the mappings kubelet chose for the pod (one uid and one gid range
// mapping container id 0, from its idmap allocator). The sandbox is an
// engine pod with a user namespace of those mappings, owning the pod's
// other namespaces (engine pinPod); its containers join it, and all their
// bind mounts are idmapped (kubelet's volumes are owned by the host's
// ids, the container's root is a mapped one). CONTAINER and TARGET are
// not modes kubelet uses for user namespaces; they are refused.

// podUserns puts a sandbox's user namespace options into its pod config.
// POD is the zero mode: options that are absent, or POD with no mapping at
// all (an empty message), are the node's user namespace, as for a kubelet
// that predates user namespaces.
func podUserns(u *runtimeapi.UserNamespace, cfg *engine.PodConfig) error {
	if u.GetMode() == runtimeapi.NamespaceMode_POD && len(u.GetUids()) == 0 && len(u.GetGids()) == 0 {
		return nil
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids()) > 0 || len(u.GetGids()) > 0 {
			return errdefs.ErrInvalidArgument.WithMessage("user namespace mode NODE: uids and gids must be empty (the node's user namespace has no mappings of the pod's)")
		}
		return nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("user namespace mode %s is not supported (use NODE or POD with one uid and one gid mapping)", u.GetMode()))
	}
	uids, err := criIDMaps("uids", u.GetUids())
	if err != nil {
		return err
	}
	gids, err := criIDMaps("gids", u.GetGids())
	if err != nil {
		return err
	}
	cfg.UIDMap, cfg.GIDMap = uids, gids
	return nil
}

// criIDMaps checks what kubelet sends for a pod's user namespace: exactly
// one mapping, of container id 0 (the container's root must map).
func criIDMaps(what string, ms []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	if len(ms) != 1 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("user namespace mode POD: %s must have exactly one mapping, got %d", what, len(ms)))
	}
	m := ms[0]
	if m.GetContainerId() != 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("user namespace mode POD: the %s mapping must start at container id 0 (root), not %d", what, m.GetContainerId()))
	}
	if m.GetLength() == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("user namespace mode POD: the %s mapping's length is 0", what))
	}
	if uint64(m.GetHostId())+uint64(m.GetLength()) > 1<<32 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("user namespace mode POD: the %s mapping %d+%d goes past the last id", what, m.GetHostId(), m.GetLength()))
	}
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// containerUserns checks a container's user namespace options against its
// pod's: a container joins its pod's user namespace (or the node's, with
// the pod), it has none of its own.
func containerUserns(u *runtimeapi.UserNamespace, p *engine.Pod) error {
	if u.GetMode() == runtimeapi.NamespaceMode_POD && len(u.GetUids()) == 0 && len(u.GetGids()) == 0 {
		return nil // absent or empty: whatever the pod has (see podUserns)
	}
	switch mode := u.GetMode(); {
	case mode == runtimeapi.NamespaceMode_POD && len(p.Config.UIDMap) == 0:
		return errdefs.ErrInvalidArgument.WithMessage("container user namespace mode POD: the pod sandbox has no user namespace")
	case mode == runtimeapi.NamespaceMode_NODE && len(p.Config.UIDMap) > 0:
		return errdefs.ErrInvalidArgument.WithMessage("container user namespace mode NODE: the pod sandbox has a user namespace, which its containers share")
	case mode != runtimeapi.NamespaceMode_POD && mode != runtimeapi.NamespaceMode_NODE:
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container user namespace mode %s is not supported (the pod's: POD or NODE)", mode))
	}
	return nil
}

// usernsOptions are a sandbox's user namespace options, for its status.
func usernsOptions(p *engine.Pod) *runtimeapi.UserNamespace {
	if len(p.Config.UIDMap) == 0 {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}
	conv := func(ms []specs.LinuxIDMapping) []*runtimeapi.IDMapping {
		out := make([]*runtimeapi.IDMapping, len(ms))
		for i, m := range ms {
			out[i] = &runtimeapi.IDMapping{ContainerId: m.ContainerID, HostId: m.HostID, Length: m.Size}
		}
		return out
	}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: conv(p.Config.UIDMap), Gids: conv(p.Config.GIDMap)}
}
