package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// Supplemental groups: kubelet's SupplementalGroupsPolicy (Merge, the
// default, adds the groups the image's /etc/group lists the user in to the
// pod's supplementalGroups; Strict does not) is applied when the
// container is created (spec.Options.GroupsStrict), and ContainerStatus
// reports the identity the process got: uid, gid and every group, the
// primary one included, as kubelet expects.

// containerUser is c's process identity, or an empty user if its
// config.json cannot be read (the status is still worth answering).
func (s *Server) containerUser(ctx context.Context, c *engine.Container) *runtimeapi.ContainerUser {
	if u, ok := s.users.Load(c.ID); ok {
		return u.(*runtimeapi.ContainerUser) // only read: marshalled
	}
	pu, err := s.eng.ContainerProcessUser(c)
	if err != nil {
		return &runtimeapi.ContainerUser{}
	}
	l := &runtimeapi.LinuxContainerUser{Uid: int64(pu.UID), Gid: int64(pu.GID)}
	for _, g := range pu.AdditionalGids {
		l.SupplementalGroups = append(l.SupplementalGroups, int64(g))
	}
	u := &runtimeapi.ContainerUser{Linux: l}
	s.users.Store(c.ID, u)
	return u
}
