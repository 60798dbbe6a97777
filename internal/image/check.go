package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/digest"
)

// What `hull system check` asks of the image records and the store.

// MissingBlob is a blob an image record needs that the store lacks.
type MissingBlob struct {
	Image *Record
	Blob  string
}

// MissingBlobs lists the blobs recorded images need that are not stored.
func (s *Service) MissingBlobs(ctx context.Context) ([]MissingBlob, error) {
	recs, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	var out []MissingBlob
	for _, r := range recs {
		rows, err := s.db.QueryContext(ctx, `SELECT blob FROM image_blobs WHERE digest = ?`, r.Digest.String())
		if err != nil {
			return nil, fmt.Errorf("check image %s: %w", r.Digest, err)
		}
		var blobs []string
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, err
			}
			blobs = append(blobs, b)
		}
		rows.Close()
		for _, b := range append(blobs, r.Digest.String()) {
			h, err := v1.NewHash(b)
			if err != nil || !s.store.Has(h) {
				out = append(out, MissingBlob{Image: r, Blob: b})
			}
		}
	}
	return out, nil
}

// Unreferenced lists the stored blobs no image record needs (what Collect
// would delete).
func (s *Service) Unreferenced(ctx context.Context) ([]v1.Hash, error) {
	blobs, err := s.store.List()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT blob FROM image_blobs UNION SELECT digest FROM images`)
	if err != nil {
		return nil, fmt.Errorf("check blobs: %w", err)
	}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, err
		}
		used[b] = true
	}
	rows.Close()
	var out []v1.Hash
	for _, b := range blobs {
		if !used[b.Digest.String()] {
			out = append(out, b.Digest)
		}
	}
	return out, nil
}

// Corrupt hashes every stored blob again and lists those whose content no
// longer matches their digest (a disk error, or someone writing into the
// store).
func (s *Service) Corrupt(ctx context.Context) ([]v1.Hash, error) {
	blobs, err := s.store.List()
	if err != nil {
		return nil, err
	}
	var out []v1.Hash
	for _, b := range blobs {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		f, err := s.store.Open(b.Digest)
		if err != nil {
			out = append(out, b.Digest)
			continue
		}
		h := digest.NewSHA256()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil || b.Digest.Algorithm != "sha256" || fmt.Sprintf("%x", h.Sum(nil)) != b.Digest.Hex {
			out = append(out, b.Digest)
		}
	}
	return out, nil
}

// DeleteBlob removes one stored blob (a corrupt one: the image that needs
// it then reports it missing, and a pull fetches it again).
func (s *Service) DeleteBlob(d v1.Hash) error { return s.store.Delete(d) }

// SyncIndex writes index.json again from the records, for the tools that
// read the layout (skopeo, umoci).
func (s *Service) SyncIndex(ctx context.Context) error { return s.syncIndex(ctx) }

// Rebuild records again every image index.json names, from the blobs in
// the store, and unpacks its layers: for a database that was lost (`hull
// system check --repair` on a damaged one). It returns the images it
// recorded, by name or digest.
func (s *Service) Rebuild(ctx context.Context) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(s.store.Dir(), "index.json"))
	if err != nil {
		return nil, fmt.Errorf("rebuild images: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("rebuild images: index.json: %w", err)
	}
	var done []string
	for _, d := range idx.Manifests {
		name := d.Annotations["io.containerd.image.name"]
		if err := s.rebuildOne(ctx, d, name); err != nil {
			return done, fmt.Errorf("rebuild image %s %s: %w", name, d.Digest, err)
		}
		if name == "" {
			name = d.Digest.String()
		}
		done = append(done, name)
	}
	return done, nil
}

func (s *Service) rebuildOne(ctx context.Context, d v1.Descriptor, name string) error {
	raw, err := s.store.ReadAll(d.Digest)
	if err != nil {
		return err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	cfgRaw, err := s.store.ReadAll(m.Config.Digest)
	if err != nil {
		return err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("%d layers for %d diff IDs", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	in := recordInput{digest: d.Digest, config: m.Config.Digest, mediaType: string(d.MediaType), size: d.Size,
		created: cf.Created.Time, name: name, blobs: []v1.Hash{d.Digest, m.Config.Digest}, annotations: m.Annotations}
	chains := chainIDs(cf.RootFS.DiffIDs)
	if s.unpacker != nil && len(chains) > 0 {
		if err := s.unpacker.Retain(ctx, ownerKey(d.Digest), chains...); err != nil {
			return err
		}
	}
	for i, l := range m.Layers {
		in.blobs = append(in.blobs, l.Digest)
		if s.unpacker == nil {
			continue
		}
		parent := ""
		if i > 0 {
			parent = chains[i-1]
		}
		if err := s.unpackStored(ctx, parent, cf.RootFS.DiffIDs[i], l.Digest); err != nil {
			return err
		}
	}
	_, err = s.putRecord(ctx, in)
	return err
}
