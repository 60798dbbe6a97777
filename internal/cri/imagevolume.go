package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
	"hull/internal/spec"
)

// Image volumes (CRI Mount.image, Kubernetes' image volume source,
// KEP-4639): another image's root filesystem, or a directory of it
// (image_sub_path), mounted read-only at a path of the container.
//
// Lifecycle. kubelet pulls the image first and sends its image_ref (the
// image ID). CreateContainer mounts the image with engine.MountImage (a
// read-only view snapshot of its layers at <run-root>/mounts/<short ID>,
// nosuid and nodev: the same mount `hull image mount` makes) and binds it,
// or the sub path resolved inside it, read-only into the container. The
// volumes are recorded in the container's reserved label
// io.hull.cri.image-volumes (ContainerStatus reports them from it, with
// the image's ID as image_ref). StartContainer mounts the images again if
// the run root lost them (a reboot). When a container goes (RemoveContainer,
// RemovePodSandbox), each image it mounted is unmounted unless another
// container still binds it. The binds in a running container's mount
// namespace keep their own reference, so an unmount never takes a volume
// from a container.
//
// A volume must be read-only (readonly true, as kubelet sends it): the
// spec makes image mounts read-only, and one asked writable is refused
// rather than silently made read-only. An image mount made by `hull image
// mount` and used by a CRI container is unmounted with the container's
// removal too (one mount point per image).

// labelImageVolumes records a container's image volumes (JSON).
const labelImageVolumes = labelPrefix + "image-volumes"

// imageVolume is one image volume of a container.
type imageVolume struct {
	Path          string `json:"path"`           // in the container
	Image         string `json:"image"`          // ImageSpec.image as sent
	UserSpecified string `json:"user,omitempty"` // ImageSpec.user_specified_image
	ImageRef      string `json:"ref"`            // the image ID
	SubPath       string `json:"subPath,omitempty"`
	MountPoint    string `json:"mountPoint"` // the image's mount (engine.MountImage)
}

// imageVolumes reads a container's image volumes from its label.
func imageVolumes(c *engine.Container) []imageVolume {
	var ivs []imageVolume
	if v := c.Config.Labels[labelImageVolumes]; v != "" {
		json.Unmarshal([]byte(v), &ivs)
	}
	return ivs
}

// mountImageVolume mounts the image a CRI mount names and returns the
// bind of it (or of its sub path) for the container. The caller holds
// s.imageVolumes.
func (s *Server) mountImageVolume(ctx context.Context, m *runtimeapi.Mount) (spec.Mount, imageVolume, error) {
	img := m.GetImage().GetImage()
	path := m.GetContainerPath()
	fail := func(format string, args ...any) (spec.Mount, imageVolume, error) {
		return spec.Mount{}, imageVolume{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("image volume %s at %q: ", img, path) + fmt.Sprintf(format, args...))
	}
	switch {
	case path == "":
		return fail("a container path is required")
	case m.GetHostPath() != "":
		return fail("host_path %q is given too: a mount is either a host path or an image", m.GetHostPath())
	case !m.GetReadonly():
		return fail("image volumes are read-only: set readonly")
	case m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return fail("an image volume takes no mount propagation (its content never changes)")
	}
	sub := m.GetImageSubPath()
	if sub != "" && (filepath.IsAbs(sub) || slices.Contains(strings.Split(filepath.ToSlash(sub), "/"), "..")) {
		return fail("image_sub_path %q must be a relative path inside the image, without ..", sub)
	}
	rec, err := s.eng.ImageResolve(ctx, img)
	if errdefs.IsNotFound(err) {
		return spec.Mount{}, imageVolume{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("image volume %s at %q: the image is not on this node: pull it first (%v)", img, path, err))
	}
	if err != nil {
		return spec.Mount{}, imageVolume{}, fmt.Errorf("image volume %s at %q: %w", img, path, err)
	}
	mp, err := s.eng.MountImage(ctx, rec.ConfigID.String())
	if err != nil {
		return spec.Mount{}, imageVolume{}, fmt.Errorf("image volume %s at %q: %w", img, path, err)
	}
	iv := imageVolume{Path: path, Image: img, UserSpecified: m.GetImage().GetUserSpecifiedImage(), ImageRef: rec.ConfigID.String(), SubPath: sub, MountPoint: mp}
	src := mp
	if sub != "" {
		// Symlinks in the image resolve inside it, never to the host.
		if src, err = securejoin.SecureJoin(mp, sub); err == nil {
			_, err = os.Stat(src)
		}
		if err != nil {
			s.releaseImageVolumesLocked(ctx, []imageVolume{iv})
			return fail("image_sub_path %q does not exist in the image (%v)", sub, err)
		}
	}
	return spec.Mount{Type: "bind", Source: src, Destination: path, ReadOnly: true, Options: []string{"rprivate", "nosuid", "nodev"}}, iv, nil
}

// remountImageVolumes mounts again the images of c's volumes that are not
// mounted (the run root was emptied by a reboot since CreateContainer).
func (s *Server) remountImageVolumes(ctx context.Context, c *engine.Container) error {
	ivs := imageVolumes(c)
	if len(ivs) == 0 {
		return nil
	}
	s.imageVolumes.Lock()
	defer s.imageVolumes.Unlock()
	for _, iv := range ivs {
		if _, err := s.eng.MountImage(ctx, iv.ImageRef); err != nil {
			return fmt.Errorf("image volume %s at %q: %w", iv.Image, iv.Path, err)
		}
	}
	return nil
}

// releaseImageVolumes unmounts the images of ivs (volumes of containers
// that are gone) that no remaining container binds.
func (s *Server) releaseImageVolumes(ctx context.Context, ivs []imageVolume) {
	if len(ivs) == 0 {
		return
	}
	s.imageVolumes.Lock()
	defer s.imageVolumes.Unlock()
	s.releaseImageVolumesLocked(ctx, ivs)
}

func (s *Server) releaseImageVolumesLocked(ctx context.Context, ivs []imageVolume) {
	ctx = context.WithoutCancel(ctx)
	cs, err := s.eng.List(ctx)
	if err != nil {
		s.opts.Log.Warn("image volumes: list containers", "error", err)
		return
	}
	inUse := func(mp string) bool {
		for _, c := range cs {
			for _, m := range c.Config.Spec.Mounts {
				if m.Source == mp || strings.HasPrefix(m.Source, mp+"/") {
					return true
				}
			}
		}
		return false
	}
	done := map[string]bool{}
	for _, iv := range ivs {
		if done[iv.MountPoint] || inUse(iv.MountPoint) {
			continue
		}
		done[iv.MountPoint] = true
		if _, err := s.eng.UnmountImage(ctx, iv.ImageRef); err != nil && !errdefs.IsNotFound(err) {
			s.opts.Log.Warn("image volumes: unmount", "image", iv.ImageRef, "error", err)
		}
	}
}

// criMount is how ContainerStatus reports an image volume.
func (iv imageVolume) criMount() *runtimeapi.Mount {
	return &runtimeapi.Mount{
		ContainerPath: iv.Path, Readonly: true, ImageSubPath: iv.SubPath,
		Image: &runtimeapi.ImageSpec{Image: iv.Image, UserSpecifiedImage: iv.UserSpecified, ImageRef: iv.ImageRef},
	}
}

// checkNoImageVolume refuses the removal of the image id (its config
// digest) while a container mounts it as a volume: the volume's mount
// would outlive the image, and nothing could release it.
func (s *Server) checkNoImageVolume(ctx context.Context, id string) error {
	cs, err := s.eng.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		for _, iv := range imageVolumes(c) {
			if iv.ImageRef == id {
				return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("image %s is mounted as a volume at %q by container %s: remove the container first", id, iv.Path, c.Name))
			}
		}
	}
	return nil
}
