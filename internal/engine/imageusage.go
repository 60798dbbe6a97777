package engine

import (
	"context"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/image"
	"hull/internal/snapshot"
)

// ImageConfigFile is an image's config (entrypoint, user, env, ...).
type ImageConfigFile = v1.ConfigFile

// ImageConfig reads a stored image's config from the store.
func (e *Engine) ImageConfig(r *Image) (*ImageConfigFile, error) { return e.images.Config(r) }

// Credentials authenticate one pull instead of the credentials file
// (PullOptions.Credentials; the CRI's AuthConfig).
type Credentials = image.Credentials

// ImageFsUsage is what images take on the filesystem under the root:
// the stored blobs (compressed layers, manifests, configs) and the
// unpacked layers, for the CRI's ImageFsInfo (kubelet's image GC and
// disk-pressure eviction read it).
type ImageFsUsage struct {
	// Mountpoint is the directory images are kept under (the root).
	Mountpoint string
	// UsedBytes are the blobs' bytes and the unpacked layers' content
	// bytes, each layer counted once; Inodes the files of both.
	UsedBytes, Inodes uint64
	Timestamp         time.Time
}

// ImageFsUsage measures the image store and the unpacked layers. It
// reads sizes the snapshotter recorded when it unpacked each layer and
// one directory listing of the blobs, so it is cheap enough for kubelet
// to call every few seconds.
func (e *Engine) ImageFsUsage(ctx context.Context) (*ImageFsUsage, error) {
	u := &ImageFsUsage{Mountpoint: e.cfg.Root, Timestamp: time.Now()}
	blobs, err := e.images.Store().List()
	if err != nil {
		return nil, err
	}
	for _, b := range blobs {
		u.UsedBytes += uint64(b.Size)
		u.Inodes++
	}
	snaps, err := e.snap.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if s.Kind == snapshot.KindCommitted {
			u.UsedBytes += uint64(s.Size)
			u.Inodes += uint64(s.Inodes)
		}
	}
	return u, nil
}
