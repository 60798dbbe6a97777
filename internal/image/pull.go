package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"hull/internal/config"
	"hull/internal/reference"
	"hull/internal/trace"
)

// PullOptions tune a pull.
type PullOptions struct {
	// Platform selects from a multi-platform index (default: the host's).
	Platform Platform
	// PlatformExplicit makes a single-platform image that does not match
	// Platform an error (as docker does when --platform is given).
	PlatformExplicit bool
	Progress         Progress
	// Remote, from Dial for the same reference, is the registry connection
	// and manifest fetched while the caller opened the store.
	Remote *Remote
	// Credentials, when set, authenticate this pull instead of the
	// credentials file (the CRI's PullImageRequest.auth).
	Credentials *Credentials
}

// Remote is a registry connection made ahead of the image store: `hull
// pull` connects and fetches the manifest while the database opens (the
// schema of a new store takes as long as the round trips).
type Remote struct {
	refStr string
	done   chan struct{}
	sess   *session
	top    *remote.Descriptor
	err    error
	// config is the image config's bytes, with its digest, when top is an
	// image manifest (nil if that fetch failed: the pull fetches it
	// again). The store verifies it like any blob.
	config       []byte
	configDigest v1.Hash
}

// Dial starts connecting to refStr's registry, and fetching its manifest,
// in the background. Pass the result to Pull in PullOptions.Remote; it
// costs nothing if unused.
func Dial(ctx context.Context, cfg config.Config, refStr string) *Remote {
	r := &Remote{refStr: refStr, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		ref, err := reference.Parse(refStr)
		if err != nil {
			r.err = err
			return
		}
		s := &Service{cfg: cfg}
		if r.sess, r.top, r.err = s.resolve(ctx, ref, nil); r.err != nil || !r.top.MediaType.IsImage() {
			return
		}
		if m, err := v1.ParseManifest(bytes.NewReader(r.top.Manifest)); err == nil && m.Config.Size <= maxPrefetchedConfig {
			if rc, err := r.sess.fetchBlob(ctx, blobFetch{digest: m.Config.Digest, size: m.Config.Size, what: "config"}); err == nil {
				data, err := io.ReadAll(io.LimitReader(rc, m.Config.Size+1))
				rc.Close()
				if err == nil && int64(len(data)) == m.Config.Size {
					r.config, r.configDigest = data, m.Config.Digest
				}
			}
		}
	}()
	return r
}

// maxPrefetchedConfig bounds what Dial holds in memory.
const maxPrefetchedConfig = 4 << 20

// prefetchedConfig is the config with digest d if Dial fetched it for
// refStr. A Dial for another reference is not waited for (nor read: it
// may still be fetching).
func (r *Remote) prefetchedConfig(refStr string, d v1.Hash) []byte {
	if r == nil || r.refStr != refStr {
		return nil
	}
	<-r.done
	if r.config == nil || r.configDigest != d {
		return nil
	}
	return r.config
}

// session waits for the connection and manifest Dial started, if r is
// for ref.
func (r *Remote) session(refStr string) (*session, *remote.Descriptor, bool, error) {
	if r == nil || r.refStr != refStr {
		return nil, nil, false, nil
	}
	<-r.done
	return r.sess, r.top, true, r.err
}

// TagMove is a tag found pointing at different content than before: the
// seed's point that tags are mutable and digests are not, made visible.
type TagMove struct {
	Name     string
	From, To v1.Hash
}

// PullResult says what a pull did.
type PullResult struct {
	Ref reference.Reference
	// RepoDigest is the digest the registry serves the reference by (the
	// index's digest for a multi-platform image): docker's "Digest:" line.
	RepoDigest v1.Hash
	// Manifest is the platform-specific manifest stored.
	Manifest v1.Hash
	ConfigID v1.Hash
	// UpToDate is true when the name already pointed at this content.
	UpToDate bool
	// Moved is set when the tag pointed at other content before.
	Moved *TagMove
}

// Pull fetches refStr from its registry into the store.
func (s *Service) Pull(ctx context.Context, refStr string, opts PullOptions) (*PullResult, error) {
	ref, err := reference.Parse(refStr)
	if err != nil {
		return nil, &Error{Op: "pull", Ref: refStr, Kind: ErrInvalidReference, Err: err}
	}
	if opts.Progress == nil {
		opts.Progress = Discard{}
	}
	if opts.Platform.OS == "" {
		opts.Platform = HostPlatform()
	}
	var via endpoint
	res, err := s.pull(ctx, refStr, ref, opts, &via)
	if err != nil {
		err = classify("pull", ref, err)
		var e *Error
		if via.mirror != "" && errors.As(err, &e) {
			// The manifest came from a mirror, and so did what failed.
			e.Hint = strings.TrimPrefix(e.Hint+"; ", "; ") + "pulled through the mirror " + via.mirror + " (registries.mirrors)"
		}
		return nil, err
	}
	return res, nil
}

// pull does Pull's work; via is set to the endpoint that served the
// manifest, once one has.
func (s *Service) pull(ctx context.Context, refStr string, ref reference.Reference, opts PullOptions, via *endpoint) (_ *PullResult, rerr error) {
	release, err := s.store.Use()
	if err != nil {
		return nil, err
	}
	defer release()

	sess, top, dialed, err := opts.Remote.session(refStr)
	if dialed && opts.Credentials != nil {
		dialed = false // Dial used the credentials file
	}
	if err != nil && dialed {
		return nil, err
	}
	if !dialed {
		if sess, top, err = s.resolve(ctx, ref, opts.Credentials); err != nil {
			return nil, err
		}
	}
	*via = sess.via
	trace.Mark("pull: manifest")
	res := &PullResult{Ref: ref, RepoDigest: top.Digest}
	var stored []v1.Hash // blobs this image needs, for GC

	manifestDesc := top.Descriptor
	manifestBytes := top.Manifest
	switch top.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		if err := s.putBlob(ctx, top.Digest, manifestBytes); err != nil {
			return nil, err
		}
		stored = append(stored, top.Digest)
		idx, err := v1.ParseIndexManifest(bytes.NewReader(manifestBytes))
		if err != nil {
			return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported, Err: fmt.Errorf("index %s: %w", top.Digest, err)}
		}
		child, err := opts.Platform.choose(idx)
		if err != nil {
			return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrNoPlatform, Err: err}
		}
		d, err := remote.Get(sess.repo.Digest(child.Digest.String()), sess.opts...)
		if err != nil {
			return nil, err
		}
		manifestDesc, manifestBytes = d.Descriptor, d.Manifest
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported,
			Err: fmt.Errorf("%s is a Docker schema 1 manifest", top.MediaType), Hint: "schema 1 is deprecated; re-push the image with a current client"}
	default:
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported, Err: fmt.Errorf("manifest media type %q is not an image", top.MediaType)}
	}
	if !manifestDesc.MediaType.IsImage() {
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported, Err: fmt.Errorf("manifest media type %q is not an image", manifestDesc.MediaType)}
	}
	man, err := v1.ParseManifest(bytes.NewReader(manifestBytes))
	if err != nil {
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported, Err: fmt.Errorf("manifest %s: %w", manifestDesc.Digest, err)}
	}
	if err := checkManifest(man); err != nil {
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported, Err: fmt.Errorf("manifest %s: %w", manifestDesc.Digest, err)}
	}
	if err := s.putBlob(ctx, manifestDesc.Digest, manifestBytes); err != nil {
		return nil, err
	}
	res.Manifest = manifestDesc.Digest
	res.ConfigID = man.Config.Digest
	stored = append(stored, manifestDesc.Digest)

	// The config is small and needed to check layers: fetch it first
	// (Dial may have).
	if data := opts.Remote.prefetchedConfig(refStr, man.Config.Digest); data != nil {
		if _, err := s.store.Write(ctx, man.Config.Digest, man.Config.Size, bytes.NewReader(data), nil); err != nil {
			return nil, err
		}
	} else if _, err := s.store.WriteFrom(ctx, man.Config.Digest, man.Config.Size, func() (io.Reader, error) {
		return sess.fetchBlob(ctx, blobFetch{digest: man.Config.Digest, size: man.Config.Size, what: "config"})
	}, nil); err != nil {
		return nil, err
	}
	stored = append(stored, man.Config.Digest)
	trace.Mark("pull: config")
	cfgBytes, err := s.store.ReadAll(man.Config.Digest)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfgBytes))
	if err != nil {
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported, Err: fmt.Errorf("image config %s: %w", man.Config.Digest, err)}
	}
	if opts.PlatformExplicit && top.MediaType.IsImage() {
		have := &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if !opts.Platform.matches(have) {
			return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrNoPlatform,
				Err: fmt.Errorf("the image is for %s, not %s", Platform{cf.OS, cf.Architecture, cf.Variant}, opts.Platform)}
		}
	}
	if len(cf.RootFS.DiffIDs) != len(man.Layers) {
		return nil, &Error{Op: "pull", Ref: ref.String(), Kind: ErrUnsupported,
			Err: fmt.Errorf("manifest has %d layers but config lists %d diff IDs", len(man.Layers), len(cf.RootFS.DiffIDs))}
	}

	owner := ownerKey(manifestDesc.Digest)
	known, err := s.hasRecord(ctx, manifestDesc.Digest)
	if err != nil {
		return nil, err
	}
	if s.unpacker != nil {
		// Retain first, so a concurrent prune cannot take layers this pull
		// is building on; a failed pull of a new image lets them go again.
		if err := s.unpacker.Retain(ctx, owner, chainIDs(cf.RootFS.DiffIDs)...); err != nil {
			return nil, err
		}
		defer func() {
			if !known && rerr != nil {
				s.unpacker.Release(context.WithoutCancel(ctx), owner)
			}
		}()
	}
	if err := s.fetchLayers(ctx, sess, man.Layers, cf.RootFS.DiffIDs, opts.Progress); err != nil {
		return nil, err
	}
	trace.Mark("pull: layers")
	size := man.Config.Size
	for _, l := range man.Layers {
		stored = append(stored, l.Digest)
		size += l.Size
	}
	in := recordInput{
		digest: manifestDesc.Digest, config: man.Config.Digest, mediaType: string(manifestDesc.MediaType),
		size: size, created: cf.Created.Time, blobs: stored,
		repoDigest: ref.Name() + "@" + top.Digest.String(), annotations: man.Annotations,
	}
	if ref.Digest == "" {
		in.name = ref.Tagged()
	}
	before, _ := s.Resolve(ctx, ref.String())
	mv, err := s.putRecord(ctx, in)
	if err != nil {
		return nil, err
	}
	trace.Mark("pull: recorded")
	res.UpToDate = before != nil && before.Digest == manifestDesc.Digest
	if mv != nil {
		res.Moved = &TagMove{Name: mv.name, From: mv.from, To: mv.to}
	}
	return res, s.syncIndex(ctx)
}

// checkManifest rejects manifests hull cannot turn into a root filesystem.
func checkManifest(m *v1.Manifest) error {
	switch m.Config.MediaType {
	case types.DockerConfigJSON, types.OCIConfigJSON:
	default:
		return fmt.Errorf("config media type %q is not an image config (is this an artifact such as a Helm chart or signature?)", m.Config.MediaType)
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer,
			types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
			types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer:
		default:
			return fmt.Errorf("layer %s has unsupported media type %q", l.Digest, l.MediaType)
		}
	}
	return nil
}

// putBlob stores bytes already fetched (and verified by digest).
func (s *Service) putBlob(ctx context.Context, d v1.Hash, data []byte) error {
	_, err := s.store.Write(ctx, d, int64(len(data)), bytes.NewReader(data), nil)
	return err
}

// syncIndex rewrites index.json from the records so other OCI tools see
// hull's images: one entry per name, plus untagged images by digest.
func (s *Service) syncIndex(ctx context.Context) error {
	unlock, err := s.store.LockIndex()
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := s.records(ctx)
	if err != nil {
		return err
	}
	var descs []v1.Descriptor
	for _, r := range recs {
		size, err := s.store.Stat(r.Digest)
		if err != nil {
			continue // being removed
		}
		base := v1.Descriptor{MediaType: types.MediaType(r.MediaType), Digest: r.Digest, Size: size}
		names := r.Names
		if len(names) == 0 {
			names = r.RepoDigests
		}
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			d := base
			if n != "" {
				d.Annotations = map[string]string{
					"org.opencontainers.image.ref.name": n,
					"io.containerd.image.name":          n,
				}
			}
			descs = append(descs, d)
		}
	}
	sort.SliceStable(descs, func(i, j int) bool {
		return descs[i].Annotations["io.containerd.image.name"] < descs[j].Annotations["io.containerd.image.name"]
	})
	return s.store.WriteIndex(descs)
}
