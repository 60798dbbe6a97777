// Package store keeps content-addressed blobs in a standard OCI image layout
// (oci-layout, index.json, blobs/sha256/<hex>), so skopeo, umoci and crane
// can read hull's images and nothing hides in a private format.
//
// A blob becomes visible only whole and verified: Write streams into a
// private temp file under ingest/, hashes as it goes, checks size and digest,
// fsyncs, and renames into blobs/. A process killed at any moment leaves at
// most a temp file, which the next Open removes; a completed blob is reused
// by every later write of the same digest. Writers of the same digest
// serialize on a per-digest lock, so concurrent pulls store each blob once.
package store

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"hull/internal/digest"
	"hull/internal/perm"
)

const (
	layoutFile    = "oci-layout"
	indexFile     = "index.json"
	layoutVersion = `{"imageLayoutVersion":"1.0.0"}`
)

// Store is an OCI image layout on disk.
type Store struct {
	dir string
}

// Open prepares dir as an OCI image layout (creating it if needed) and
// removes temp files left by writers that died.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir}
	// The layout is readable by skopeo and umoci run as root; other users
	// must not read private images through it.
	if err := perm.PrivateDir(dir); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for _, d := range []string{s.blobDir(), s.ingestDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, layoutFile)); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(filepath.Join(dir, layoutFile), []byte(layoutVersion)); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, indexFile)); errors.Is(err, fs.ErrNotExist) {
		if err := s.WriteIndex(nil); err != nil {
			return nil, err
		}
	}
	s.cleanIngest()
	return s, nil
}

// Dir is the layout's root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobDir() string   { return filepath.Join(s.dir, "blobs", "sha256") }
func (s *Store) ingestDir() string { return filepath.Join(s.dir, "ingest") }

// Path is where the blob with digest d lives (whether or not it exists).
func (s *Store) Path(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

// Stat reports the size of blob d, or fs.ErrNotExist.
func (s *Store) Stat(d v1.Hash) (int64, error) {
	if err := checkDigest(d); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Has reports whether blob d is stored.
func (s *Store) Has(d v1.Hash) bool {
	_, err := s.Stat(d)
	return err == nil
}

// Open opens blob d for reading.
func (s *Store) Open(d v1.Hash) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// ReadAll returns the content of a (small) blob.
func (s *Store) ReadAll(d v1.Hash) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// DigestError is content that does not hash to the digest it was named by:
// corrupt in transit or tampered with. Nothing is stored. Its class is
// errdefs.ErrDataLoss.
type DigestError struct {
	Want, Got v1.Hash
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("blob %s: digest mismatch: content hashes to %s (corrupt or tampered content; nothing was stored)", e.Want, e.Got)
}

func (e *DigestError) Is(target error) bool { return target == errdefs.ErrDataLoss }

// SizeError is content whose length differs from its descriptor's size.
// Its class is errdefs.ErrDataLoss.
type SizeError struct {
	Digest    v1.Hash
	Want, Got int64
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("blob %s: size mismatch: expected %d bytes, got %d (truncated or corrupt content; nothing was stored)", e.Digest, e.Want, e.Got)
}

func (e *SizeError) Is(target error) bool { return target == errdefs.ErrDataLoss }

// ErrDiskFull wraps ENOSPC and EDQUOT while writing (class
// errdefs.ErrResourceExhausted).
var ErrDiskFull = errdefs.ErrResourceExhausted.WithMessage("disk full")

// Write stores the blob read from r under digest want, verifying it. size is
// the expected length, or -1 if unknown. progress, if set, is called with
// the bytes written so far. If the blob already exists, r is not read and
// Write returns (false, nil); otherwise it returns (true, nil) once the blob
// is visible.
func (s *Store) Write(ctx context.Context, want v1.Hash, size int64, r io.Reader, progress func(int64)) (written bool, err error) {
	return s.write(ctx, want, size, func() (io.Reader, error) { return r, nil }, progress)
}

// WriteFrom is Write with the source opened only if the blob is missing
// once this writer holds the digest's lock: a second concurrent puller
// waits for the first and then finds the blob, downloading nothing.
func (s *Store) WriteFrom(ctx context.Context, want v1.Hash, size int64, open func() (io.Reader, error), progress func(int64)) (written bool, err error) {
	return s.write(ctx, want, size, open, progress)
}

func (s *Store) write(ctx context.Context, want v1.Hash, size int64, open func() (io.Reader, error), progress func(int64)) (bool, error) {
	if err := checkDigest(want); err != nil {
		return false, err
	}
	if s.Has(want) {
		return false, nil
	}
	unlock, err := s.lockDigest(ctx, want)
	if err != nil {
		return false, err
	}
	defer unlock()
	if s.Has(want) {
		return false, nil
	}
	r, err := open()
	if err != nil {
		return false, err
	}
	if rc, ok := r.(io.Closer); ok {
		defer rc.Close()
	}
	tmp, err := os.CreateTemp(s.ingestDir(), want.Hex+".*.tmp")
	if err != nil {
		return false, diskErr(fmt.Errorf("store: create temp for %s: %w", want, err))
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := newHash(want.Algorithm)
	if h == nil {
		return false, fmt.Errorf("blob %s: unsupported digest algorithm %q", want, want.Algorithm)
	}
	var src io.Reader = r
	if size >= 0 {
		// Read one byte past the size so an overlong blob is caught.
		src = io.LimitReader(r, size+1)
	}
	n, err := copyCtx(ctx, io.MultiWriter(&writeback{f: tmp}, h), src, progress)
	if err != nil {
		return false, diskErr(fmt.Errorf("blob %s: %w", want, err))
	}
	if size >= 0 && n != size {
		return false, &SizeError{Digest: want, Want: size, Got: n}
	}
	got := v1.Hash{Algorithm: want.Algorithm, Hex: hex.EncodeToString(h.Sum(nil))}
	if got != want {
		return false, &DigestError{Want: want, Got: got}
	}
	if err := tmp.Sync(); err != nil {
		return false, diskErr(fmt.Errorf("blob %s: sync: %w", want, err))
	}
	if err := tmp.Close(); err != nil {
		return false, diskErr(fmt.Errorf("blob %s: close: %w", want, err))
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return false, fmt.Errorf("blob %s: %w", want, err)
	}
	if err := os.Rename(tmp.Name(), s.Path(want)); err != nil {
		return false, fmt.Errorf("blob %s: publish: %w", want, err)
	}
	ok = true
	syncDir(s.blobDir())
	return true, nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(d v1.Hash) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %s: %w", d, err)
	}
	return nil
}

// Blob is one stored blob.
type Blob struct {
	Digest v1.Hash
	Size   int64
}

// List returns every stored blob, sorted by digest.
func (s *Store) List() ([]Blob, error) {
	var out []Blob
	for _, alg := range []string{"sha256", "sha512"} {
		ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", alg))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("store: list blobs: %w", err)
		}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			out = append(out, Blob{Digest: v1.Hash{Algorithm: alg, Hex: e.Name()}, Size: fi.Size()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest.String() < out[j].Digest.String() })
	return out, nil
}

// WriteIndex replaces index.json with the given manifests, atomically.
// Callers hold whatever lock orders their updates (the metadata database);
// index.json is derived from it so other tools can find hull's images.
func (s *Store) WriteIndex(manifests []v1.Descriptor) error {
	if manifests == nil {
		manifests = []v1.Descriptor{}
	}
	idx := struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     []v1.Descriptor `json:"manifests"`
	}{2, "application/vnd.oci.image.index.v1+json", manifests}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, indexFile), data)
}

// lockDigest serializes writers of one digest across processes.
func (s *Store) lockDigest(ctx context.Context, d v1.Hash) (func(), error) {
	path := filepath.Join(s.ingestDir(), d.Hex+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, diskErr(fmt.Errorf("store: lock %s: %w", d, err))
	}
	if err := flockCtx(ctx, int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: lock %s: %w", d, err)
	}
	return func() {
		// Remove while still holding the lock; a waiter that then locks the
		// unlinked file re-checks Has and finds the blob.
		os.Remove(path)
		f.Close()
	}, nil
}

// flockCtx takes an exclusive flock, polling so ctx can cancel the wait.
func flockCtx(ctx context.Context, fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cleanIngest removes temp files whose writer is gone. A live writer holds
// the digest's lock file; a temp file without a locked lock file is stale.
func (s *Store) cleanIngest() {
	ents, err := os.ReadDir(s.ingestDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".tmp") {
			continue
		}
		hexPart, _, _ := strings.Cut(name, ".")
		lock := filepath.Join(s.ingestDir(), hexPart+".lock")
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(filepath.Join(s.ingestDir(), name))
			os.Remove(lock)
		}
		f.Close()
	}
}

func checkDigest(d v1.Hash) error {
	want := 0
	switch d.Algorithm {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Errorf("digest %q: unsupported algorithm (want sha256 or sha512)", d.String())
	}
	if len(d.Hex) != want {
		return fmt.Errorf("digest %q: want %d hex digits", d.String(), want)
	}
	for _, c := range d.Hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("digest %q: not lowercase hex", d.String())
		}
	}
	return nil
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "sha256":
		return digest.NewSHA256()
	case "sha512":
		return sha512.New()
	}
	return nil
}

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w (free space on the store's filesystem and retry; nothing partial was kept)", ErrDiskFull, err)
	}
	return err
}

// copyCtx copies with a large buffer, reporting progress and honoring ctx.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader, progress func(int64)) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
			if progress != nil {
				progress(n)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// writeback writes a blob and starts its disk writes every few MiB, so the
// fsync that publishes it waits for little more than the last stretch: on
// a pull the big layers finish together, and each fsync starting from a
// whole unwritten layer took as long as a tenth of the pull.
type writeback struct {
	f             *os.File
	done, started int64
}

const writebackEvery = 4 << 20

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.done += int64(n)
	if w.done-w.started >= writebackEvery {
		// Only a hint: a failure shows again, and is reported, at fsync.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.done-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.done
	}
	return n, err
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return diskErr(fmt.Errorf("store: write %s: %w", path, err))
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return diskErr(fmt.Errorf("store: write %s: %w", path, err))
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return diskErr(fmt.Errorf("store: write %s: %w", path, err))
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Use marks the store as in use by a writer that may rely on blobs that are
// not yet recorded as referenced (a pull between finding a blob present and
// recording the image). Garbage collection (TryCollect) waits for no one: it
// skips its run while any user holds the store.
func (s *Store) Use() (release func(), err error) {
	return s.gcLock(unix.LOCK_SH)
}

// TryCollect takes the store exclusively for deleting unreferenced blobs,
// or returns ok=false at once if a writer is using it.
func (s *Store) TryCollect() (release func(), ok bool, err error) {
	release, err = s.gcLock(unix.LOCK_EX | unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, false, nil
	}
	return release, err == nil, err
}

func (s *Store) gcLock(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.ingestDir(), "gc.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: gc lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// LockIndex serializes rewrites of index.json across processes.
func (s *Store) LockIndex() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.ingestDir(), "index.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: index lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: index lock: %w", err)
	}
	return func() { f.Close() }, nil
}
