package image

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"hull/internal/reference"
)

// PushResult says what was pushed.
type PushResult struct {
	Ref    reference.Reference
	Digest v1.Hash
	Size   int64 // manifest size, as docker prints it
}

// layoutImage opens a stored image through go-containerregistry's OCI
// layout reader: the store is a standard layout, so no copy is needed.
func (s *Service) layoutImage(r *Record) (v1.Image, error) {
	lp, err := layout.FromPath(s.store.Dir())
	if err != nil {
		return nil, err
	}
	img, err := lp.Image(r.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.ConfigID.Hex[:12], err)
	}
	return img, nil
}

// Push uploads the local image named refStr to the registry it names.
// Blobs the registry already has are not sent again.
func (s *Service) Push(ctx context.Context, refStr string, p Progress) (*PushResult, error) {
	ref, err := reference.Parse(refStr)
	if err != nil {
		return nil, &Error{Op: "push", Ref: refStr, Kind: ErrInvalidReference, Err: err}
	}
	if p == nil {
		p = Discard{}
	}
	r, err := s.Resolve(ctx, refStr)
	if err != nil {
		return nil, err
	}
	img, err := s.layoutImage(r)
	if err != nil {
		return nil, err
	}
	sess, err := s.connect(ctx, "push", ref, transport.PushScope, nil)
	if err != nil {
		return nil, err
	}
	gref := sess.ref(ref)
	m, err := s.Manifest(r)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		p.Update(shortID(l.Digest.Hex), StatePushing, 0, l.Size)
	}
	if err := remote.Write(gref, img, sess.opts...); err != nil {
		return nil, classify("push", ref, err)
	}
	for _, l := range m.Layers {
		p.Update(shortID(l.Digest.Hex), StatePushed, l.Size, l.Size)
	}
	size, _ := s.store.Stat(r.Digest)
	// The pushed content is now known by this repository digest too.
	if _, err := s.putRecord(ctx, recordInput{digest: r.Digest, config: r.ConfigID, mediaType: r.MediaType, size: r.Size,
		created: r.Created, repoDigest: ref.Name() + "@" + r.Digest.String()}); err != nil {
		return nil, err
	}
	return &PushResult{Ref: ref, Digest: r.Digest, Size: size}, nil
}
