package cri

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
	"hull/internal/reference"
)

// The image service. A CRI image is what kubelet counts and collects:
// one image ID (the config digest, as containerd's), all the names and
// repo digests pointing at it. hull keeps a record per manifest, and two
// manifests can share a config (the same image pushed as Docker and OCI),
// so the CRI view groups records by config digest; removing an image
// removes every record of the group, whichever of its names was given
// (the CRI's RemoveImage contract).

// imageGroup is the records of one config digest.
type imageGroup struct {
	id   string
	recs []*engine.Image
}

// groups groups recs by image ID, in the order of each ID's first record.
func groups(recs []*engine.Image) []*imageGroup {
	var out []*imageGroup
	byID := map[string]*imageGroup{}
	for _, r := range recs {
		g := byID[r.ID()]
		if g == nil {
			g = &imageGroup{id: r.ID()}
			byID[g.id] = g
			out = append(out, g)
		}
		g.recs = append(g.recs, r)
	}
	return out
}

// find returns the group of the image ref names (a name, name@digest, ID
// or ID prefix), or nil if there is none.
func (s *Server) find(ctx context.Context, ref string) (*imageGroup, error) {
	if ref == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("image spec: no image given (set image.image to a name, name@digest or image ID)")
	}
	// From the view: the records read again only once an image
	// changed, the sizes kept (engine View.Image).
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := v.Image(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return groups(recs)[0], nil
}

// ListImages lists the stored images; a filter's image spec narrows the
// list to the image it names.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.listImages(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListImagesResponse{Images: imgs}, nil
}

// streamBatch is how many images one StreamImages message carries.
const streamBatch = 200

// StreamImages is ListImages in messages of streamBatch images, for
// nodes whose image list exceeds a gRPC message.
func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	imgs, err := s.listImages(stream.Context(), req.GetFilter())
	if err != nil {
		return err
	}
	for len(imgs) > 0 {
		n := min(len(imgs), streamBatch)
		if err := stream.Send(&runtimeapi.StreamImagesResponse{Images: imgs[:n]}); err != nil {
			return err
		}
		imgs = imgs[n:]
	}
	return nil
}

func (s *Server) listImages(ctx context.Context, f *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	var gs []*imageGroup
	if want := f.GetImage().GetImage(); want != "" {
		g, err := s.find(ctx, want)
		if err != nil || g == nil {
			return nil, err
		}
		gs = []*imageGroup{g}
	} else {
		all, err := s.eng.ImageList(ctx, nil)
		if err != nil {
			return nil, err
		}
		gs = groups(all)
	}
	out := make([]*runtimeapi.Image, 0, len(gs))
	for _, g := range gs {
		img, err := s.criImage(g)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// ImageStatus describes one image, or answers with no image when it is
// not stored (not an error: kubelet then pulls). Verbose adds the image's
// inspect document as info["info"].
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	g, err := s.find(ctx, req.GetImage().GetImage())
	if err != nil || g == nil {
		return &runtimeapi.ImageStatusResponse{}, err
	}
	img, err := s.criImage(g)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: img}
	if req.GetVerbose() {
		d, err := s.eng.ImageInspect(ctx, g.recs[0].Digest.String())
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

// criImage is the CRI's view of one image.
func (s *Server) criImage(g *imageGroup) (*runtimeapi.Image, error) {
	img := &runtimeapi.Image{Id: g.id, Spec: &runtimeapi.ImageSpec{Image: g.id}}
	var size int64
	for _, r := range g.recs {
		img.RepoTags = appendNew(img.RepoTags, r.Names...)
		img.RepoDigests = appendNew(img.RepoDigests, r.RepoDigests...)
		// The unpacked size is what the image takes once usable (and
		// what kubelet's image GC frees); the stored size until known.
		n := r.Unpacked
		if n == 0 {
			n = r.Size
		}
		size = max(size, n)
	}
	img.Size = uint64(size)
	img.Pinned = s.pinned(img.RepoTags)
	// The manifest's annotations (a checkpoint image's among them), as
	// CRI-O shows them; read-only, shared with the record.
	img.Spec.Annotations = g.recs[0].Annotations
	cf, err := s.eng.ImageConfig(g.recs[0])
	if err != nil {
		return nil, err
	}
	img.Uid, img.Username = imageUser(cf.Config.User)
	return img, nil
}

// imageUser splits an image's USER (user[:group]) into the CRI's uid or
// username: kubelet checks runAsNonRoot with them.
func imageUser(user string) (*runtimeapi.Int64Value, string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &runtimeapi.Int64Value{Value: uid}, ""
	}
	return nil, u
}

// pinned reports whether one of names is a configured pinned image.
func (s *Server) pinned(names []string) bool {
	for _, p := range s.opts.PinnedImages {
		want := p
		if ref, err := reference.Parse(p); err == nil {
			want = ref.String()
		}
		for _, n := range names {
			if n == want {
				return true
			}
		}
	}
	return false
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		dup := false
		for _, have := range list {
			dup = dup || have == it
		}
		if !dup {
			list = append(list, it)
		}
	}
	return list
}

// PullImage pulls an image (with the request's credentials, if any) and
// answers its image ID, which kubelet then uses as the image_ref of the
// containers it creates.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("pull: no image given (set image.image)")
	}
	defer s.pulls.start()() // pullmem.go
	res, err := s.eng.Pull(ctx, ref, engine.PullOptions{Credentials: credentials(req.GetAuth())})
	s.recordPull(ctx, req.GetSandboxConfig(), ref, err) // kubeview.go
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: res.ConfigID.String()}, nil
}

// credentials are the request's AuthConfig, or nil when it has none (the
// credentials file is used then). server_address is not needed: the
// credentials are for the image's own registry.
func credentials(a *runtimeapi.AuthConfig) *engine.Credentials {
	if a.GetUsername() == "" && a.GetPassword() == "" && a.GetAuth() == "" && a.GetIdentityToken() == "" && a.GetRegistryToken() == "" {
		return nil
	}
	return &engine.Credentials{
		Username: a.GetUsername(), Password: a.GetPassword(), Auth: a.GetAuth(),
		IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken(),
	}
}

// RemoveImage removes the image the spec names with all its names,
// whichever was given; an image that is not there is not an error.
// Containers made from it keep their layers (as with `hull rmi -f`); an
// image a container mounts as a volume is not removed (imagevolume.go).
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	g, err := s.find(ctx, req.GetImage().GetImage())
	if err != nil || g == nil {
		return &runtimeapi.RemoveImageResponse{}, err
	}
	if err := s.checkNoImageVolume(ctx, g.id); err != nil {
		return nil, err
	}
	for _, r := range g.recs {
		if _, err := s.eng.ImageRemove(ctx, r.Digest.String(), true); err != nil && !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image filesystem's use (blobs and unpacked
// layers). Containers' writable layers live on the same filesystem, so
// no separate container filesystem is reported.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	u, err := s.eng.ImageFsUsage(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		Timestamp:  u.Timestamp.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: u.UsedBytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: u.Inodes},
	}}}, nil
}
