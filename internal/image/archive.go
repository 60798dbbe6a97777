package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"hull/internal/reference"
)

// Archive formats for save and load.
const (
	FormatDocker = "docker-archive" // docker save / docker load
	FormatOCI    = "oci-archive"    // a tar of an OCI image layout
)

// Save writes the named images to w as one archive.
func (s *Service) Save(ctx context.Context, names []string, format string, w io.Writer) error {
	type item struct {
		rec  *Record
		name string // full tagged name, or "" when saved by ID
	}
	var items []item
	for _, n := range names {
		r, err := s.Resolve(ctx, n)
		if err != nil {
			return err
		}
		full := ""
		if ref, err := reference.Parse(n); err == nil && ref.Digest == "" && contains(r.Names, ref.String()) {
			full = ref.String()
		}
		items = append(items, item{r, full})
	}
	switch format {
	case FormatDocker, "":
		refs := map[name.Reference]v1.Image{}
		for _, it := range items {
			img, err := s.layoutImage(it.rec)
			if err != nil {
				return err
			}
			var names []string
			if it.name != "" {
				names = []string{it.name}
			}
			if len(names) == 0 {
				// Saved by ID or digest, or untagged: docker saves it
				// without RepoTags, and loads it as <none>:<none>.
				d, _ := name.NewDigest("hull.invalid/untagged@" + it.rec.Digest.String())
				refs[d] = img
			}
			for _, n := range names {
				t, err := name.NewTag(n)
				if err != nil {
					return fmt.Errorf("save %s: %w", n, err)
				}
				refs[t] = img
			}
		}
		if err := tarball.MultiRefWrite(refs, w); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		return nil
	case FormatOCI:
		var descs []v1.Descriptor
		blobs := map[v1.Hash]bool{}
		for _, it := range items {
			m, err := s.Manifest(it.rec)
			if err != nil {
				return err
			}
			size, err := s.store.Stat(it.rec.Digest)
			if err != nil {
				return err
			}
			d := v1.Descriptor{MediaType: types.MediaType(it.rec.MediaType), Digest: it.rec.Digest, Size: size}
			if n := it.name; n != "" { // by ID: untagged, as above
				d.Annotations = map[string]string{"org.opencontainers.image.ref.name": n, "io.containerd.image.name": n}
			}
			descs = append(descs, d)
			blobs[it.rec.Digest], blobs[m.Config.Digest] = true, true
			for _, l := range m.Layers {
				blobs[l.Digest] = true
			}
		}
		return s.writeOCIArchive(w, descs, blobs)
	}
	return fmt.Errorf("save: unknown format %q (use %s or %s)", format, FormatDocker, FormatOCI)
}

func (s *Service) writeOCIArchive(w io.Writer, descs []v1.Descriptor, blobs map[v1.Hash]bool) error {
	tw := tar.NewWriter(w)
	idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs})
	for _, f := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", idx}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for d := range blobs {
		f, err := s.store.Open(d)
		if err != nil {
			return err
		}
		fi, _ := f.Stat()
		err = tw.WriteHeader(&tar.Header{Name: "blobs/" + d.Algorithm + "/" + d.Hex, Mode: 0o444, Size: fi.Size(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("save blob %s: %w", d, err)
		}
	}
	return tw.Close()
}

// LoadResult lists what Load stored.
type LoadResult struct {
	Names []string // "Loaded image: NAME"
	IDs   []string // "Loaded image ID: ID", for untagged images
}

// Load reads a docker-archive or oci-archive from path (format detected)
// into the store. Every blob is verified; a corrupt archive stores nothing
// that is not whole.
func (s *Service) Load(ctx context.Context, path string) (*LoadResult, error) {
	format, err := detectArchive(path)
	if err != nil {
		return nil, err
	}
	release, err := s.store.Use()
	if err != nil {
		return nil, err
	}
	defer release()
	res := &LoadResult{}
	switch format {
	case FormatDocker:
		opener := func() (io.ReadCloser, error) { return os.Open(path) }
		mf, err := tarball.LoadManifest(opener)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		for _, entry := range mf {
			var tags []string
			for _, t := range entry.RepoTags {
				ref, err := reference.Parse(t)
				if err != nil {
					return nil, fmt.Errorf("load %s: tag %q: %w", path, t, err)
				}
				tags = append(tags, ref.Tagged())
			}
			var tagp *name.Tag
			if len(entry.RepoTags) > 0 {
				t, err := name.NewTag(entry.RepoTags[0])
				if err != nil {
					return nil, fmt.Errorf("load %s: %w", path, err)
				}
				tagp = &t
			}
			img, err := tarball.Image(opener, tagp)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			if err := s.loadImage(ctx, res, img, tags); err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
		}
	case FormatOCI:
		dir, err := os.MkdirTemp(filepath.Join(s.store.Dir(), "ingest"), "load-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := extractLayout(path, dir); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		lp, err := layout.FromPath(dir)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		idx, err := lp.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() {
				continue
			}
			img, err := lp.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			var tags []string
			for _, key := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
				if ref, err := reference.Parse(d.Annotations[key]); err == nil && ref.Digest == "" && strings.ContainsAny(d.Annotations[key], "/:") {
					tags = append(tags, ref.Tagged())
					break
				}
			}
			if err := s.loadImage(ctx, res, img, tags); err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
		}
	}
	return res, s.syncIndex(ctx)
}

// loadImage copies one image's blobs into the store, unpacks it, and
// records it under the given names.
func (s *Service) loadImage(ctx context.Context, res *LoadResult, img v1.Image, names []string) error {
	rec, err := s.ingestImage(ctx, img)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		res.IDs = append(res.IDs, rec.config.String())
		_, err := s.putRecord(ctx, rec)
		return err
	}
	for _, n := range names {
		rec.name = n
		if _, err := s.putRecord(ctx, rec); err != nil {
			return err
		}
		res.Names = append(res.Names, familiar([]string{n})[0])
	}
	return nil
}

// ingestImage stores every blob of img (verified) and unpacks its layers.
// Callers hold the store with Use.
func (s *Service) ingestImage(ctx context.Context, img v1.Image) (recordInput, error) {
	var rec recordInput
	raw, err := img.RawManifest()
	if err != nil {
		return rec, err
	}
	digest, err := img.Digest()
	if err != nil {
		return rec, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return rec, err
	}
	m, err := img.Manifest()
	if err != nil {
		return rec, err
	}
	if err := checkManifest(m); err != nil {
		return rec, err
	}
	cfgRaw, err := img.RawConfigFile()
	if err != nil {
		return rec, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return rec, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return rec, fmt.Errorf("manifest has %d layers but config lists %d diff IDs", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	if err := s.putBlob(ctx, m.Config.Digest, cfgRaw); err != nil {
		return rec, err
	}
	layers, err := img.Layers()
	if err != nil {
		return rec, err
	}
	size := m.Config.Size
	blobs := []v1.Hash{digest, m.Config.Digest}
	chains := chainIDs(cf.RootFS.DiffIDs)
	if s.unpacker != nil && len(chains) > 0 {
		if err := s.unpacker.Retain(ctx, ownerKey(digest), chains...); err != nil {
			return rec, err
		}
	}
	for i, l := range layers {
		d := m.Layers[i].Digest
		if _, err := s.store.WriteFrom(ctx, d, m.Layers[i].Size, func() (io.Reader, error) { return l.Compressed() }, nil); err != nil {
			return rec, fmt.Errorf("layer %s: %w", d, err)
		}
		if s.unpacker != nil {
			parent := ""
			if i > 0 {
				parent = chains[i-1]
			}
			if err := s.unpackStored(ctx, parent, cf.RootFS.DiffIDs[i], d); err != nil {
				return rec, err
			}
		}
		blobs = append(blobs, d)
		size += m.Layers[i].Size
	}
	// The manifest goes last: a visible manifest implies its blobs are there.
	if err := s.putBlob(ctx, digest, raw); err != nil {
		return rec, err
	}
	return recordInput{digest: digest, config: m.Config.Digest, mediaType: string(mt), size: size, created: cf.Created.Time, blobs: blobs, annotations: m.Annotations}, nil
}

// detectArchive tells a docker-archive (manifest.json) from an oci-archive
// (oci-layout) by the entries it holds.
func detectArchive(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("load %s: not a tar archive (%w); give a file made by hull save, docker save or skopeo copy ... oci-archive:FILE", path, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			return FormatDocker, nil
		case "oci-layout":
			oci = true
		}
	}
	if oci {
		return FormatOCI, nil
	}
	return "", fmt.Errorf("load %s: neither a docker-archive (no manifest.json) nor an oci-archive (no oci-layout)", path)
}

// extractLayout unpacks an oci-archive into dir. Only the layout's own
// files are taken: oci-layout, index.json and regular files under blobs/
// with digest names; anything else (links, traversal) is refused.
func extractLayout(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		n := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir {
			continue
		}
		ok := n == "oci-layout" || n == "index.json"
		if parts := strings.Split(n, "/"); len(parts) == 3 && parts[0] == "blobs" {
			_, herr := v1.NewHash(parts[1] + ":" + parts[2])
			ok = herr == nil
		}
		if !ok || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("unexpected entry %q in oci-archive", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		out.Close()
		if err != nil {
			return err
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Add stores img, built by the caller (import, commit), as Load stores
// each image of an archive: its blobs verified, its layers unpacked, and
// the image named name ("" leaves it untagged; a name already on another
// image moves).
func (s *Service) Add(ctx context.Context, img v1.Image, name string) error {
	release, err := s.store.Use()
	if err != nil {
		return err
	}
	defer release()
	var names []string
	if name != "" {
		names = []string{name}
	}
	if err := s.loadImage(ctx, &LoadResult{}, img, names); err != nil {
		return err
	}
	return s.syncIndex(ctx)
}

// Image opens the stored image r, for building another on it (commit).
func (s *Service) Image(r *Record) (v1.Image, error) { return s.layoutImage(r) }
