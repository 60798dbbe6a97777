package engine

import (
	"context"
	"fmt"
	"io"
	"strings"

	"hull/internal/config"
	"hull/internal/image"
	"hull/internal/reference"
)

// The image service's types, as the engine's callers see them.
type (
	// Image is one stored image: its manifest, config and names.
	Image = image.Record
	// ImageDetails is `image inspect`'s document.
	ImageDetails = image.Inspect
	// HistoryEntry is one row of an image's history.
	HistoryEntry = image.HistoryEntry
	// ImageFilter is one `--filter key=value` of an image list.
	ImageFilter = image.Filter
	// Platform is os/arch[/variant].
	Platform     = image.Platform
	PullOptions  = image.PullOptions
	PullResult   = image.PullResult
	PushResult   = image.PushResult
	LoadResult   = image.LoadResult
	RemoveResult = image.RemoveResult
	Remote       = image.Remote
	Progress     = image.Progress
	LayerState   = image.LayerState
	NoProgress   = image.Discard
)

// Archive formats of ImageSave.
const (
	ArchiveDocker = image.FormatDocker
	ArchiveOCI    = image.FormatOCI
)

// ParseImageFilters parses docker's --filter arguments for images.
func ParseImageFilters(args []string) ([]ImageFilter, error) { return image.ParseFilters(args) }

// ParsePlatform parses os/arch[/variant] ("" is the host's platform).
func ParsePlatform(s string) (Platform, error) { return image.ParsePlatform(s) }

// Dial starts connecting to refStr's registry, and fetching its manifest,
// before the engine is open: the round trips overlap opening the store.
// Pass the result to Pull in PullOptions.Remote; unused, it costs nothing.
func Dial(ctx context.Context, cfg config.Config, refStr string) *Remote {
	return image.Dial(ctx, cfg, refStr)
}

// Pull fetches an image from its registry, unpacking its layers as they
// arrive.
func (e *Engine) Pull(ctx context.Context, ref string, o PullOptions) (*PullResult, error) {
	return e.images.Pull(ctx, ref, o)
}

// Push uploads a stored image to the registry its name says.
func (e *Engine) Push(ctx context.Context, ref string, p Progress) (*PushResult, error) {
	return e.images.Push(ctx, ref, p)
}

// ImageList returns the stored images that pass filters, newest first.
func (e *Engine) ImageList(ctx context.Context, filters []ImageFilter) ([]*Image, error) {
	recs, err := e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	if recs, err = e.images.Match(ctx, recs, filters); err != nil {
		return nil, err
	}
	return recs, e.setUnpacked(ctx, recs...)
}

// layerSizes are the content bytes of each unpacked layer, by chain ID.
func (e *Engine) layerSizes(ctx context.Context) (map[string]int64, error) {
	return e.snap.CommittedSizes(ctx)
}

// setUnpacked fills in each image's unpacked size (docker's SIZE): the
// sum of its unpacked layers.
func (e *Engine) setUnpacked(ctx context.Context, recs ...*Image) error {
	if len(recs) == 0 {
		return nil
	}
	sizes, err := e.layerSizes(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		chains, err := e.imageChains(r)
		if err != nil {
			return err
		}
		r.Unpacked = 0
		for _, c := range chains {
			r.Unpacked += sizes[c]
		}
	}
	return nil
}

// unpackedSize is image r's unpacked size as setUnpacked sums it, its
// layers looked up by key (one image's: ImageInspect, the view's Image);
// whole says every layer is unpacked (the size is then final).
func (e *Engine) unpackedSize(ctx context.Context, r *Image) (size int64, whole bool, err error) {
	chains, err := e.imageChains(r)
	if err != nil {
		return 0, false, err
	}
	whole = true
	for _, c := range chains {
		n, ok, err := e.snap.CommittedSize(ctx, c)
		if err != nil {
			return 0, false, err
		}
		size, whole = size+n, whole && ok
	}
	return size, whole, nil
}

// ImageCount is the number of stored images.
func (e *Engine) ImageCount(ctx context.Context) (int, error) { return e.images.Count(ctx) }

// ImageResolve finds a stored image by name, ID or ID prefix.
func (e *Engine) ImageResolve(ctx context.Context, ref string) (*Image, error) {
	return e.images.Resolve(ctx, ref)
}

// ImageInspect describes a stored image.
func (e *Engine) ImageInspect(ctx context.Context, ref string) (*ImageDetails, error) {
	r, err := e.images.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	d, err := e.images.Inspect(ctx, r)
	if err != nil {
		return nil, err
	}
	// docker's Size is the unpacked one; hull keeps the stored size too.
	// (Its layers looked up by key: no scan of every snapshot for one
	// image.)
	if n, _, err := e.unpackedSize(ctx, r); err == nil && n > 0 {
		d.StoredSize, d.Size, d.VirtualSize = d.Size, n, n
	}
	return d, nil
}

// ImageHistory lists how a stored image was built, newest layer first.
func (e *Engine) ImageHistory(ctx context.Context, ref string) ([]HistoryEntry, error) {
	r, err := e.images.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	h, err := e.images.History(ctx, r)
	if err != nil {
		return nil, err
	}
	// docker shows each step's layer unpacked: the entries that made a
	// layer, oldest last, take the layers' sizes bottom up.
	sizes, err := e.layerSizes(ctx)
	if err != nil {
		return h, nil
	}
	chains, err := e.imageChains(r)
	if err != nil {
		return h, nil
	}
	li := 0
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Layer == "" {
			continue
		}
		if li < len(chains) {
			if n, ok := sizes[chains[li]]; ok {
				h[i].StoredSize, h[i].Size = h[i].Size, n
			}
		}
		li++
	}
	return h, nil
}

// ImageTag names the image source also target.
func (e *Engine) ImageTag(ctx context.Context, source, target string) error {
	return e.images.Tag(ctx, source, target)
}

// ImageRemove untags or deletes an image as `docker rmi` does. Without
// force it refuses to delete an image a container was created from
// (removing one of several names is only an untag).
func (e *Engine) ImageRemove(ctx context.Context, ref string, force bool) (*RemoveResult, error) {
	if err := e.checkImageUnused(ctx, ref, force); err != nil {
		return nil, err
	}
	res, err := e.images.Remove(ctx, ref, force)
	if err != nil || len(res.Deleted) == 0 {
		return res, err
	}
	// The image is gone: its unpacked layers go with it, unless another
	// image or a container still has them (docker removes them at once;
	// they were kept until a prune).
	if _, err := e.snap.Prune(ctx); err != nil {
		return res, fmt.Errorf("remove the unpacked layers of %s: %w", ref, err)
	}
	return res, nil
}

// checkImageUnused is ImageRemove's refusal.
func (e *Engine) checkImageUnused(ctx context.Context, ref string, force bool) error {
	r, err := e.images.Resolve(ctx, ref)
	if err != nil || force {
		return nil // Remove reports a missing image
	}
	if parsed, err := reference.Parse(ref); err == nil && parsed.Digest == "" && len(r.Names) > 1 {
		return nil
	}
	users, err := e.ContainersUsing(ctx, r.Digest.String())
	if err != nil || len(users) == 0 {
		return err
	}
	return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by container %s; remove the container first (hull rm) or use -f",
		ref, strings.Join(users, ", "))
}

// ImageSave writes the images as one archive (ArchiveDocker or
// ArchiveOCI) to w.
func (e *Engine) ImageSave(ctx context.Context, refs []string, format string, w io.Writer) error {
	return e.images.Save(ctx, refs, format, w)
}

// ImageLoad stores the images of the archive at path (either format),
// unpacking their layers.
func (e *Engine) ImageLoad(ctx context.Context, path string) (*LoadResult, error) {
	return e.images.Load(ctx, path)
}

// Login checks the credentials with the registry server ("" Docker Hub)
// and stores them.
func (e *Engine) Login(ctx context.Context, server, user, password string) error {
	return e.images.Login(ctx, server, user, password)
}

// Logout forgets the registry server's credentials; false if there were
// none.
func (e *Engine) Logout(server string) (bool, error) { return e.images.Logout(server) }

// ImageStoreDir is where the image store (an OCI image layout) lives.
func (e *Engine) ImageStoreDir() string { return e.images.Store().Dir() }
