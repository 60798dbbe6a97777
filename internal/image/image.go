// Package image is hull's image side: pull, push, tag, remove, inspect,
// history, save and load, over the content-addressed store (blobs) and the
// metadata database (names). An image is a manifest, its config and its
// layers, all blobs in the store; names are mutable pointers to manifests,
// digests never move.
//
// A pull fetches the manifest (choosing the platform from an index), then
// the config and layers concurrently, each verified by the store before it
// becomes visible; layers are unpacked into snapshots as soon as each one and
// its parent are present, so a finished pull is a runnable image. Only then
// is the image recorded and its name pointed at it, in one transaction: a
// pull killed at any moment leaves either no image or a whole one.
package image

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/config"
	"hull/internal/metadata"
	"hull/internal/store"
)

// Unpacker turns layer blobs into snapshots (see internal/snapshot). It is
// optional: without it, images are stored but not unpacked.
type Unpacker interface {
	// Unpack applies the layer blob on top of the snapshot parentChainID ("" for
	// the base) and returns the resulting chain ID. It verifies the
	// uncompressed content against diffID and is a no-op when that chain exists.
	Unpack(ctx context.Context, parentChainID, diffID string, blob io.Reader) (string, error)
	// Retain and Release count references to chains, per owner.
	Retain(ctx context.Context, owner string, chainIDs ...string) error
	Release(ctx context.Context, owner string) error
}

// Service is the image engine over one root.
type Service struct {
	cfg      config.Config
	store    *store.Store
	db       *metadata.DB
	unpacker Unpacker
	configs  configCache  // see Config
	recs     recordsCache // see records
}

// Open opens the image store under cfg.Root/images and the given database.
func Open(cfg config.Config, db *metadata.DB) (*Service, error) {
	st, err := store.Open(filepath.Join(cfg.Root, "images"))
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: st, db: db}, nil
}

// SetUnpacker makes pulls and loads unpack layers into snapshots.
func (s *Service) SetUnpacker(u Unpacker) { s.unpacker = u }

// Store is the underlying blob store.
func (s *Service) Store() *store.Store { return s.store }

// Count is the number of stored images.
func (s *Service) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM images`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count images: %w", err)
	}
	return n, nil
}

// ownerKey names an image as an owner of snapshot references.
func ownerKey(manifest v1.Hash) string { return "image:" + manifest.String() }
