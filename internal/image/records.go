package image

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/metadata"
	"hull/internal/reference"
)

// The image records: which manifests are stored, the names (tags) that point
// at them, the repository digests they were pulled by, and the blobs each
// one needs (for garbage collection). Blobs themselves live in the store.
func init() {
	metadata.Register(metadata.Migration{Package: "image", Version: 1, Statements: []string{
		`CREATE TABLE images (
			digest        TEXT PRIMARY KEY,
			config_digest TEXT NOT NULL,
			media_type    TEXT NOT NULL,
			size          INTEGER NOT NULL,
			created       INTEGER NOT NULL,
			added         INTEGER NOT NULL
		)`,
		`CREATE INDEX images_config ON images(config_digest)`,
		`CREATE TABLE image_names (
			name    TEXT PRIMARY KEY,
			digest  TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
			updated INTEGER NOT NULL
		)`,
		`CREATE INDEX image_names_digest ON image_names(digest)`,
		`CREATE TABLE image_repo_digests (
			digest      TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
			repo_digest TEXT NOT NULL,
			PRIMARY KEY (digest, repo_digest)
		)`,
		`CREATE TABLE image_blobs (
			digest TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
			blob   TEXT NOT NULL,
			PRIMARY KEY (digest, blob)
		)`,
		`CREATE INDEX image_blobs_blob ON image_blobs(blob)`,
	}})
}

// GenerationQuery reads the image generation (below): a long-lived
// reader with a connection of its own (the engine's View) prepares it.
const GenerationQuery = `SELECT n FROM image_generation`

// The image generation: a number every change of the image records
// (images, image_names, image_repo_digests: any writer, any hull
// version from this schema on) moves, through triggers, so that a
// long-lived process can keep the records it read until the number moves
// (recordsCache). It starts at a random value: a database made again
// (system check --repair) does not count from where the last one did.
func init() {
	st := []string{
		`CREATE TABLE image_generation (n INTEGER NOT NULL)`,
		`INSERT INTO image_generation(n) VALUES (abs(random() % 1000000000000))`,
	}
	for _, t := range []string{"images", "image_names", "image_repo_digests"} {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			st = append(st, fmt.Sprintf(`CREATE TRIGGER %s_%s_generation AFTER %s ON %s
				BEGIN UPDATE image_generation SET n = n + 1; END`, t, strings.ToLower(op), op, t))
		}
	}
	metadata.Register(metadata.Migration{Package: "image", Version: 2, Statements: st})
}

// The manifest's annotations, as JSON (”: none), kept with the record so
// that what they say is known without reading the manifest: a checkpoint
// image (package checkpoint) is told from others at every container
// creation by them. Images stored before this column were recorded
// without theirs (a pull or load records them again).
func init() {
	metadata.Register(metadata.Migration{Package: "image", Version: 3, Statements: []string{
		`ALTER TABLE images ADD COLUMN annotations TEXT NOT NULL DEFAULT ''`,
	}})
}

// Record is one stored image as the metadata database knows it.
type Record struct {
	Digest      v1.Hash // manifest digest
	ConfigID    v1.Hash // config digest: the image ID docker shows
	MediaType   string  // manifest media type
	Size        int64
	Created     time.Time
	Added       time.Time
	Names       []string // full tagged names, sorted
	RepoDigests []string // name@digest it is known by in registries, sorted
	// Unpacked is the content bytes of the image's layers once unpacked:
	// the size docker shows. The engine sets it from the snapshots (0:
	// not known); Size is what the image takes stored, compressed.
	Unpacked int64
	// Annotations are the manifest's (nil: none). Shared between the
	// copies of a cached record: never modify it.
	Annotations map[string]string
}

// ID is the docker-style image ID, the config digest.
func (r *Record) ID() string { return r.ConfigID.String() }

type recordInput struct {
	digest     v1.Hash
	config     v1.Hash
	mediaType  string
	size       int64
	created    time.Time
	blobs      []v1.Hash
	repoDigest string // may be ""
	name       string // tagged name to point here, may be ""
	// annotations are the manifest's (nil: none).
	annotations map[string]string
}

// moved reports a tag that pointed elsewhere before this record.
type moved struct {
	name     string
	from, to v1.Hash
}

func (s *Service) putRecord(ctx context.Context, in recordInput) (mv *moved, err error) {
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		ann := ""
		if len(in.annotations) > 0 {
			b, err := json.Marshal(in.annotations)
			if err != nil {
				return fmt.Errorf("record image %s: %w", in.digest, err)
			}
			ann = string(b)
		}
		if _, err := tx.Exec(`INSERT INTO images(digest, config_digest, media_type, size, created, added, annotations) VALUES(?,?,?,?,?,?,?)
			ON CONFLICT(digest) DO UPDATE SET annotations = excluded.annotations
				WHERE images.annotations = '' AND excluded.annotations != ''`,
			in.digest.String(), in.config.String(), in.mediaType, in.size, in.created.UnixNano(), now, ann); err != nil {
			return fmt.Errorf("record image %s: %w", in.digest, err)
		}
		for _, b := range in.blobs {
			if _, err := tx.Exec(`INSERT OR IGNORE INTO image_blobs(digest, blob) VALUES(?,?)`, in.digest.String(), b.String()); err != nil {
				return fmt.Errorf("record image %s: %w", in.digest, err)
			}
		}
		if in.repoDigest != "" {
			if _, err := tx.Exec(`INSERT OR IGNORE INTO image_repo_digests(digest, repo_digest) VALUES(?,?)`, in.digest.String(), in.repoDigest); err != nil {
				return fmt.Errorf("record image %s: %w", in.digest, err)
			}
		}
		if in.name != "" {
			prev, err := setName(tx, in.name, in.digest, now)
			if err != nil {
				return err
			}
			if prev != nil && *prev != in.digest {
				mv = &moved{name: in.name, from: *prev, to: in.digest}
			}
		}
		return nil
	})
	return mv, err
}

// setName points name at digest, returning what it pointed at before.
func setName(tx *sql.Tx, name string, digest v1.Hash, now int64) (*v1.Hash, error) {
	var prev string
	err := tx.QueryRow(`SELECT digest FROM image_names WHERE name = ?`, name).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	if _, err := tx.Exec(`INSERT INTO image_names(name, digest, updated) VALUES(?,?,?)
		ON CONFLICT(name) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`, name, digest.String(), now); err != nil {
		return nil, fmt.Errorf("tag %s: %w", name, err)
	}
	if prev == "" {
		return nil, nil
	}
	h, err := v1.NewHash(prev)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// records loads every image with its names and repository digests,
// newest first.
// records are every image record, newest first: the ones read last if
// the image generation has not moved since (recordsCache), else read
// again. Each caller gets records of its own to change.
func (s *Service) records(ctx context.Context) ([]*Record, error) {
	var gen int64
	genErr := s.db.QueryRowContext(ctx, GenerationQuery).Scan(&gen)
	if genErr == nil {
		if recs, ok := s.recs.get(gen); ok {
			return recs, nil
		}
	}
	recs, err := s.readRecords(ctx)
	if err == nil && genErr == nil {
		s.recs.put(gen, recs)
	}
	return recs, err
}

// recordsCache is the image records as read at one image generation.
// The generation is read before the records: a change between the two
// leaves records newer than their generation, read again next time.
type recordsCache struct {
	mu    sync.Mutex
	gen   int64
	valid bool
	recs  []*Record
}

func (c *recordsCache) get(gen int64) ([]*Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.gen != gen {
		return nil, false
	}
	return cloneRecords(c.recs), true
}

func (c *recordsCache) put(gen int64, recs []*Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen, c.valid, c.recs = gen, true, cloneRecords(recs)
}

func cloneRecords(recs []*Record) []*Record {
	out := make([]*Record, len(recs))
	for i, r := range recs {
		cp := *r
		cp.Names, cp.RepoDigests = slices.Clone(r.Names), slices.Clone(r.RepoDigests)
		out[i] = &cp
	}
	return out
}

// readRecords reads every image record, newest first.
func (s *Service) readRecords(ctx context.Context) ([]*Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, config_digest, media_type, size, created, added, annotations FROM images`)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	byDigest := map[string]*Record{}
	var out []*Record
	for rows.Next() {
		var d, c, mt, ann string
		var size, created, added int64
		if err := rows.Scan(&d, &c, &mt, &size, &created, &added, &ann); err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		r := &Record{MediaType: mt, Size: size, Created: time.Unix(0, created).UTC(), Added: time.Unix(0, added).UTC()}
		if ann != "" {
			if err := json.Unmarshal([]byte(ann), &r.Annotations); err != nil {
				return nil, fmt.Errorf("image record %q: annotations: %w", d, err)
			}
		}
		if r.Digest, err = v1.NewHash(d); err != nil {
			return nil, fmt.Errorf("image record %q: %w", d, err)
		}
		if r.ConfigID, err = v1.NewHash(c); err != nil {
			return nil, fmt.Errorf("image record %q: %w", d, err)
		}
		byDigest[d] = r
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.attach(ctx, `SELECT digest, name FROM image_names`, byDigest, func(r *Record, v string) { r.Names = append(r.Names, v) }); err != nil {
		return nil, err
	}
	if err := s.attach(ctx, `SELECT digest, repo_digest FROM image_repo_digests`, byDigest, func(r *Record, v string) { r.RepoDigests = append(r.RepoDigests, v) }); err != nil {
		return nil, err
	}
	for _, r := range out {
		sort.Strings(r.Names)
		sort.Strings(r.RepoDigests)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func (s *Service) attach(ctx context.Context, q string, by map[string]*Record, add func(*Record, string)) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d, v string
		if err := rows.Scan(&d, &v); err != nil {
			return err
		}
		if r := by[d]; r != nil {
			add(r, v)
		}
	}
	return rows.Err()
}

// NotFoundError is an image that is not in the local store. Its class is
// errdefs.ErrNotFound.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("No such image: %s (list local images with: hull images; fetch it with: hull pull %s)", e.Name, e.Name)
}

func (e *NotFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// Resolve finds the local image a user means by s: a name[:tag], a
// name@digest, a full or short image ID (config digest), or a manifest digest.
func (s *Service) Resolve(ctx context.Context, str string) (*Record, error) {
	recs, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	return ResolveIn(recs, str)
}

// ResolveIn is Resolve among recs (records already read).
func ResolveIn(recs []*Record, str string) (*Record, error) {
	if ref, err := reference.Parse(str); err == nil {
		want := ref.String()
		for _, r := range recs {
			if ref.Digest != "" {
				if r.Digest.String() == ref.Digest {
					return r, nil
				}
				for _, rd := range r.RepoDigests {
					if rd == ref.Name()+"@"+ref.Digest {
						return r, nil
					}
				}
				continue
			}
			for _, n := range r.Names {
				if n == want {
					return r, nil
				}
			}
		}
	}
	if reference.LooksLikeID(str) {
		prefix := strings.TrimPrefix(str, "sha256:")
		var match *Record
		for _, r := range recs {
			if strings.HasPrefix(r.ConfigID.Hex, prefix) || strings.HasPrefix(r.Digest.Hex, prefix) {
				if match != nil && match.ConfigID != r.ConfigID {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("image ID prefix %q is ambiguous: it matches %s and %s (give more digits)", str, match.ConfigID.Hex[:12], r.ConfigID.Hex[:12]))
				}
				if match == nil {
					match = r
				}
			}
		}
		if match != nil {
			return match, nil
		}
	}
	return nil, &NotFoundError{Name: str}
}

// hasRecord reports whether the manifest is already a recorded image.
func (s *Service) hasRecord(ctx context.Context, manifest v1.Hash) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM images WHERE digest = ?`, manifest.String()).Scan(&n); err != nil {
		return false, fmt.Errorf("look up image %s: %w", manifest, err)
	}
	return n > 0, nil
}
