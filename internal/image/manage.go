package image

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/reference"
)

// List returns the stored images, newest first.
func (s *Service) List(ctx context.Context) ([]*Record, error) { return s.records(ctx) }

// Config reads an image's config file from the store.
func (s *Service) Config(r *Record) (*v1.ConfigFile, error) {
	if cf := s.configs.get(r.ConfigID); cf != nil {
		return cf, nil
	}
	data, err := s.store.ReadAll(r.ConfigID)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", r.ConfigID.Hex[:12], err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", r.ConfigID.Hex[:12], err)
	}
	s.configs.put(r.ConfigID, cf)
	return cf, nil
}

// configCache keeps the image configs a long-lived process (hull-cri)
// parsed, by digest: a config is immutable under its digest, and reading
// and decoding it again for every image status and container creation
// cost more than the rest of those calls. Each caller gets a copy of its
// own to change. Bounded: emptied when full.
type configCache struct {
	mu sync.Mutex
	m  map[v1.Hash]*v1.ConfigFile
}

// configCacheSize bounds configCache: a node's images, more or less.
const configCacheSize = 256

func (c *configCache) get(h v1.Hash) *v1.ConfigFile {
	c.mu.Lock()
	cf := c.m[h]
	c.mu.Unlock()
	if cf == nil {
		return nil
	}
	return cf.DeepCopy()
}

func (c *configCache) put(h v1.Hash, cf *v1.ConfigFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= configCacheSize {
		c.m = map[v1.Hash]*v1.ConfigFile{}
	}
	c.m[h] = cf.DeepCopy()
}

// Manifest reads an image's manifest from the store.
func (s *Service) Manifest(r *Record) (*v1.Manifest, error) {
	data, err := s.store.ReadAll(r.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", r.ConfigID.Hex[:12], err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", r.ConfigID.Hex[:12], err)
	}
	return m, nil
}

// Tag points target (a new name[:tag]) at the image source names.
func (s *Service) Tag(ctx context.Context, source, target string) error {
	r, err := s.Resolve(ctx, source)
	if err != nil {
		return err
	}
	ref, err := reference.Parse(target)
	if err != nil {
		return err
	}
	if ref.Digest != "" {
		return fmt.Errorf("tag %s: a target cannot be a digest (digests name content; tags name it)", target)
	}
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := setName(tx, ref.Tagged(), r.Digest, time.Now().UnixNano())
		return err
	}); err != nil {
		return err
	}
	return s.syncIndex(ctx)
}

// RemoveResult lists what Remove did, in docker's words.
type RemoveResult struct {
	Untagged []string // familiar names and repo digests
	Deleted  []string // image ID, then blobs
}

// Remove untags or deletes an image as `docker rmi` does. Removing by
// name drops that name; when it was the image's last name, the image goes
// too. Removing by ID deletes the image, which needs force if several
// repositories still name it. Blobs shared with other images are kept.
func (s *Service) Remove(ctx context.Context, str string, force bool) (*RemoveResult, error) {
	recs, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	r, err := ResolveIn(recs, str)
	if err != nil {
		return nil, err
	}
	res := &RemoveResult{}
	byName := ""
	if ref, err := reference.Parse(str); err == nil && ref.Digest == "" {
		for _, n := range r.Names {
			if n == ref.String() {
				byName = n
			}
		}
	}
	deleteImage := true
	if byName != "" && len(r.Names) > 1 {
		deleteImage = false
	}
	if byName == "" && !force && distinctRepos(r.Names) > 1 {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories (%s); remove by name, or use -f",
			r.ConfigID.Hex[:12], strings.Join(familiar(r.Names), ", ")))
	}
	own := map[string]bool{} // the image's blobs: what "Deleted:" may list
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if !deleteImage {
			_, err := tx.Exec(`DELETE FROM image_names WHERE name = ?`, byName)
			return err
		}
		rows, err := tx.Query(`SELECT blob FROM image_blobs WHERE digest = ?`, r.Digest.String())
		if err != nil {
			return err
		}
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return err
			}
			own[b] = true
		}
		rows.Close()
		_, err = tx.Exec(`DELETE FROM images WHERE digest = ?`, r.Digest.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("remove image %s: %w", str, err)
	}
	if !deleteImage {
		res.Untagged = familiar([]string{byName})
		return res, s.syncIndex(ctx)
	}
	res.Untagged = append(familiar(r.Names), familiarDigests(r.RepoDigests)...)
	res.Deleted = append(res.Deleted, r.ConfigID.String())
	if s.unpacker != nil {
		if err := s.unpacker.Release(ctx, ownerKey(r.Digest)); err != nil {
			return res, err
		}
	}
	if err := s.syncIndex(ctx); err != nil {
		return res, err
	}
	// Blobs of no image (a failed load's) go too, but are not this
	// image's to report.
	gone, err := s.collect(ctx)
	for _, b := range gone {
		if own[b] && b != r.ConfigID.String() {
			res.Deleted = append(res.Deleted, b)
		}
	}
	return res, err
}

// collect deletes blobs no image references. It does nothing while a pull
// or load holds the store (they may rely on blobs not yet recorded); the
// next removal or `hull system prune` collects them.
func (s *Service) collect(ctx context.Context) ([]string, error) {
	release, ok, err := s.store.TryCollect()
	if err != nil || !ok {
		return nil, err
	}
	defer release()
	unused, err := s.Unreferenced(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, d := range unused {
		if err := s.store.Delete(d); err != nil {
			return gone, err
		}
		gone = append(gone, d.String())
	}
	return gone, nil
}

// Collect removes unreferenced blobs (for `hull system prune`).
func (s *Service) Collect(ctx context.Context) ([]string, error) { return s.collect(ctx) }

func tagOf(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return ""
}

func distinctRepos(names []string) int {
	seen := map[string]bool{}
	for _, n := range names {
		seen[strings.TrimSuffix(n, ":"+tagOf(n))] = true
	}
	return len(seen)
}

// familiar shortens full names the way docker prints them.
func familiar(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if ref, err := reference.Parse(n); err == nil {
			out = append(out, ref.Familiar())
		} else {
			out = append(out, n)
		}
	}
	return out
}

func familiarDigests(ds []string) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		name, dig, _ := strings.Cut(d, "@")
		out = append(out, reference.FamiliarName(name)+"@"+dig)
	}
	return out
}

// Filter is one `--filter key=value` of `hull images`.
type Filter struct{ Key, Value string }

// ParseFilters parses docker's --filter arguments for images.
func ParseFilters(args []string) ([]Filter, error) {
	var out []Filter
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("bad filter %q: use key=value", a)
		}
		switch k {
		case "reference", "dangling", "label", "before", "since":
		default:
			return nil, fmt.Errorf("bad filter %q: unknown key %q (use reference, dangling, label, before or since)", a, k)
		}
		if k == "dangling" && v != "true" && v != "false" {
			return nil, fmt.Errorf("bad filter %q: dangling takes true or false", a)
		}
		out = append(out, Filter{k, v})
	}
	return out, nil
}

// Match applies filters to the records (labels need the config). As
// docker's, reference filters are alternatives and narrow what a record
// is listed by to its names that match: `images alpine` lists no other
// repository of the same image, `images alpine:3` no other tag.
func (s *Service) Match(ctx context.Context, recs []*Record, filters []Filter) ([]*Record, error) {
	var refs []string
	for _, f := range filters {
		if f.Key == "reference" {
			refs = append(refs, f.Value)
		}
	}
	var out []*Record
	for _, r := range recs {
		if refs != nil {
			var names []string
			for _, n := range r.Names {
				if matchesReference(refs, n) {
					names = append(names, n)
				}
			}
			if names == nil {
				continue
			}
			cp := *r
			cp.Names = names
			r = &cp
		}
		ok := true
		for _, f := range filters {
			m, err := s.matchOne(ctx, recs, r, f)
			if err != nil {
				return nil, err
			}
			ok = ok && m
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// matchesReference reports whether the full name n matches one of the
// patterns, as written in full, familiar, or familiar without its tag.
func matchesReference(patterns []string, n string) bool {
	short := familiar([]string{n})[0]
	for _, p := range patterns {
		for _, cand := range []string{n, short, strings.TrimSuffix(short, ":"+tagOf(n))} {
			if ok, _ := path.Match(p, cand); ok {
				return true
			}
		}
	}
	return false
}

func (s *Service) matchOne(ctx context.Context, all []*Record, r *Record, f Filter) (bool, error) {
	switch f.Key {
	case "dangling":
		return (len(r.Names) == 0) == (f.Value == "true"), nil
	case "reference":
		return true, nil // applied by Match
	case "label":
		cf, err := s.Config(r)
		if err != nil {
			return false, err
		}
		k, v, hasV := strings.Cut(f.Value, "=")
		got, ok := cf.Config.Labels[k]
		return ok && (!hasV || got == v), nil
	case "before", "since":
		other, err := ResolveIn(all, f.Value)
		if err != nil {
			return false, err
		}
		if f.Key == "before" {
			return r.Created.Before(other.Created), nil
		}
		return r.Created.After(other.Created), nil
	}
	return false, nil
}
