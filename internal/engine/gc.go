package engine

import (
	"context"

	"github.com/containerd/errdefs"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/snapshot"
)

// Hull's one garbage collector. What it may remove is what nothing
// refers to, and the references are, from the top:
//
//   - containers: a container retains its image's layer chains (owner
//     "container:ID") and has an active snapshot, its writable layer, on
//     the top one; a stopped container is itself removable (Prune);
//   - image mounts (`image mount`): a view snapshot on the image's top
//     chain;
//   - images: an image's name keeps it; an image retains its layer chains
//     (owner "image:DIGEST") and its blobs;
//   - volumes: a container names the volumes it mounts; an anonymous one
//     no container names is removable;
//   - layers (committed snapshots): kept while an owner retains them or a
//     snapshot is built on them (snapshot.Prune);
//   - blobs: kept while a stored image references them (image.Collect);
//   - networks: a container names the networks it joins (Config.Net); a
//     user-defined network no container names is removable, after the
//     containers in Prune.
//
// Pods, when they come, refer to containers and are referred to by them:
// their collection goes between containers and images in Prune, and
// their usage beside Containers in DiskUsage.

// Snapshot describes one snapshot: an unpacked layer or a container's
// writable layer.
type Snapshot = snapshot.Info

// DiskUsage is what hull keeps on disk, and what of it Prune would
// reclaim.
type DiskUsage struct {
	Images     []ImageUsage
	Layers     []LayerUsage
	Containers []ContainerUsage
	// ImagesSize is the images' layers unpacked, each layer counted
	// once (docker's Images SIZE); ImagesReclaimable the part no
	// container's image uses.
	ImagesSize, ImagesReclaimable int64
}

// ImageUsage is one stored image and the containers built on it.
type ImageUsage struct {
	*Image
	// InUse is true when a container's writable layer is on the image's
	// layers: Prune keeps the image.
	InUse bool
	// Containers counts the writable layers on the image's top layer.
	Containers int
	// SharedSize is the unpacked size of the image's layers that other
	// images have too; UniqueSize that of the rest (docker's df -v).
	SharedSize, UniqueSize int64
	chains                 []string
	// topChain is the chain ID of the image's top layer.
	topChain string
}

// LayerUsage is one unpacked layer.
type LayerUsage struct {
	Snapshot
	// Reclaimable is true when nothing retains the layer or builds on it.
	Reclaimable bool
}

// ContainerUsage is one container's writable layer.
type ContainerUsage struct {
	Snapshot
	// Size is the disk the writable layer takes now.
	Size int64
}

// DiskUsage reads what is stored: images, unpacked layers and the
// containers' writable layers.
func (e *Engine) DiskUsage(ctx context.Context) (*DiskUsage, error) {
	images, err := e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := e.snap.List(ctx)
	if err != nil {
		return nil, err
	}
	unused, err := e.snap.Unused(ctx)
	if err != nil {
		return nil, err
	}
	reclaimable := map[string]bool{}
	for _, u := range unused {
		reclaimable[u.Name] = true
	}
	du := &DiskUsage{}
	inUseTops := map[string]bool{} // chain IDs writable layers are on
	for _, s := range snaps {
		switch s.Kind {
		case snapshot.KindCommitted:
			du.Layers = append(du.Layers, LayerUsage{Snapshot: s, Reclaimable: reclaimable[s.Name]})
		case snapshot.KindActive:
			u, err := e.snap.Usage(ctx, s.Name)
			if err != nil {
				return nil, err
			}
			du.Containers = append(du.Containers, ContainerUsage{Snapshot: s, Size: u.Size})
			if s.Parent != "" {
				inUseTops[s.Parent] = true
			}
		}
	}
	for _, r := range images {
		chains, err := e.imageChains(r)
		if err != nil {
			return nil, err
		}
		iu := ImageUsage{Image: r, chains: chains}
		if len(chains) > 0 {
			iu.topChain = chains[len(chains)-1]
		}
		iu.InUse = inUseTops[iu.topChain]
		for _, c := range du.Containers {
			if c.Parent == iu.topChain {
				iu.Containers++
			}
		}
		du.Images = append(du.Images, iu)
	}
	du.sizeImages()
	return du, nil
}

// sizeImages works out the unpacked sizes of the images from their
// layers: each image's, shared and unique, and the whole.
func (du *DiskUsage) sizeImages() {
	sizes := map[string]int64{}
	for _, l := range du.Layers {
		sizes[l.Name] = l.Size
	}
	users := map[string]int{}
	used := map[string]bool{} // by an image a container is built on
	for _, iu := range du.Images {
		for _, c := range iu.chains {
			users[c]++
			used[c] = used[c] || iu.InUse
		}
	}
	for c, n := range users {
		du.ImagesSize += sizes[c]
		if n > 0 && !used[c] {
			du.ImagesReclaimable += sizes[c]
		}
	}
	for i := range du.Images {
		iu := &du.Images[i]
		iu.Unpacked = 0
		for _, c := range iu.chains {
			iu.Unpacked += sizes[c]
			if users[c] > 1 {
				iu.SharedSize += sizes[c]
			} else {
				iu.UniqueSize += sizes[c]
			}
		}
	}
}

// imageChains are the chain IDs of an image's layers, bottom first.
func (e *Engine) imageChains(r *Image) ([]string, error) {
	cf, err := e.images.Config(r)
	if err != nil {
		return nil, err
	}
	return layerChains(cf), nil
}

// layerChains are the chain IDs of the layers an image config lists,
// bottom first: the names of their snapshots.
func layerChains(cf *v1.ConfigFile) []string {
	diffIDs := make([]string, len(cf.RootFS.DiffIDs))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	return snapshot.ChainIDs(diffIDs)
}

// PruneOptions choose what Prune removes beyond what nothing uses.
type PruneOptions struct {
	// AllImages removes every image no container uses, not only the
	// untagged ones (docker's system prune -a).
	AllImages bool
	// Volumes also removes the anonymous volumes no container uses
	// (docker's system prune --volumes).
	Volumes bool
	// Filter spares the containers, images and volumes it does not
	// match (docker's system prune --filter; until= is not for volumes).
	Filter PruneFilter
}

// PruneReport is what Prune removed.
type PruneReport struct {
	Containers []string // IDs
	Networks   []string // names
	// Images are docker's lines: "untagged: NAME", "deleted: ID".
	Images  []string
	Layers  []string // chain IDs
	Blobs   []string // digests
	Volumes []string // names
	// Reclaimed is the bytes the removed containers, images, layers and
	// volumes held.
	Reclaimed int64
}

// Prune removes, in the order their references allow, the stopped
// containers, the user-defined networks no container uses, with o.Volumes the anonymous volumes no container uses, the
// untagged images (o.AllImages: every image) no container uses, the
// layers no image or container needs and the blobs no image references;
// containers, networks, volumes and images only where o.Filter matches. Nothing in
// use is removed. On an error the report says what was removed before it.
func (e *Engine) Prune(ctx context.Context, o PruneOptions) (*PruneReport, error) {
	if o.Volumes && !o.Filter.Until.IsZero() {
		return nil, errdefs.ErrInvalidArgument.WithMessage(`the "until" filter is not supported with "--volumes"`)
	}
	rep := &PruneReport{}
	var err error
	if rep.Containers, rep.Reclaimed, err = e.PruneContainers(ctx, o.Filter); err != nil {
		return rep, err
	}
	// After the containers, as docker's: the user networks only they used.
	if rep.Networks, err = e.PruneNetworks(ctx, o.Filter); err != nil {
		return rep, err
	}
	if o.Volumes {
		// After the containers, whose anonymous volumes become unused.
		var freed int64
		vf := o.Filter
		vf.All = false
		rep.Volumes, freed, err = e.PruneVolumes(ctx, vf)
		rep.Reclaimed += freed
		if err != nil {
			return rep, err
		}
	}
	imgFilter := o.Filter
	imgFilter.All = o.AllImages
	images, freed, err := e.pruneImages(ctx, imgFilter)
	rep.Images = images
	rep.Reclaimed += freed
	if err != nil {
		return rep, err
	}
	pr, err := e.snap.Prune(ctx)
	if err != nil {
		return rep, err
	}
	rep.Layers = pr.Removed
	rep.Reclaimed += pr.Bytes
	rep.Blobs, err = e.images.Collect(ctx)
	return rep, err
}
