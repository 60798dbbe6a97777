// Package snapshot turns image layers into root filesystems.
//
// A snapshot is a directory tree with a name. There are three kinds, and
// their lifecycle is the whole API:
//
//   - Committed snapshots are image layers. Unpack applies a layer blob on
//     top of a parent committed snapshot and names the result by its chain
//     ID (chainID(L0) = diffID(L0), chainID(Ln) = sha256(chainID(Ln-1) + " " +
//     diffID(Ln))), so one layer stack is unpacked once on the node and shared
//     by every image that contains it. Committed snapshots never change and
//     are only removed by Prune, once no owner retains them.
//   - Active snapshots are a container's writable root: Prepare(key, parent)
//     creates one on top of a committed snapshot and returns the mounts that
//     assemble it (overlay: the parent chain's directories as lower dirs plus
//     the snapshot's own upper and work dirs). Remove(key) deletes it.
//   - Views are read-only: View(key, parent) returns mounts of a committed
//     snapshot as it is (for `hull image mount`); Remove(key) deletes it.
//
// Nothing here mounts on its own: Prepare and View return []Mount, and the
// caller mounts them where it wants with Mount (or in its own mount
// namespace) and unmounts them with Unmount before Remove.
//
// Owners keep committed snapshots alive: Retain(owner, chainIDs...) records
// that, say, "image:sha256:..." needs those layers; Release(owner) drops all
// of an owner's claims; Prune removes committed snapshots no owner retains
// and no active snapshot or view is built on. A puller should Retain the
// chain IDs of an image (computable from its config) before unpacking them,
// so that a concurrent Prune cannot take a layer between its Unpack and the
// image being recorded.
//
// Two drivers sit behind the same API. "overlay" stores each layer as its
// own diff (whiteouts as overlay whiteouts) and mounts the chain with
// overlayfs. "copy", for filesystems without overlay, stores each layer as
// the full tree of its chain (the parent's tree copied, then the layer
// applied, whiteouts deleting), and gives containers a copy too.
//
// On disk, under <root>/snapshots: <id>/fs (and <id>/work for overlay active
// snapshots), where id is a short number so that 128 lower dirs fit the
// kernel's one-page mount option limit; tmp/ for work in progress; locks/
// for per-chain unpack locks. The metadata database records which ids exist.
// Directories are built in tmp/ and renamed into place in the same database
// transaction that records them, and rows are deleted before their
// directories: a crash at any point leaves at most directories with no row
// or temp directories of a dead process, which the next Open removes.
package snapshot

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/metadata"
	hullperm "hull/internal/perm"
)

func init() {
	metadata.Register(metadata.Migration{Package: "snapshot", Version: 1, Statements: []string{
		`CREATE TABLE snapshots (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			driver  TEXT NOT NULL,
			kind    TEXT NOT NULL,
			name    TEXT NOT NULL,
			parent  TEXT NOT NULL DEFAULT '',
			diff_id TEXT NOT NULL DEFAULT '',
			size    INTEGER NOT NULL DEFAULT 0,
			inodes  INTEGER NOT NULL DEFAULT 0,
			created INTEGER NOT NULL,
			UNIQUE(driver, name)
		)`,
		`CREATE INDEX snapshots_parent ON snapshots(driver, parent)`,
		`CREATE TABLE snapshot_refs (
			owner    TEXT NOT NULL,
			chain_id TEXT NOT NULL,
			PRIMARY KEY(owner, chain_id)
		)`,
		`CREATE INDEX snapshot_refs_chain ON snapshot_refs(chain_id)`,
	}})
}

// Drivers.
const (
	Overlay = "overlay"
	Copy    = "copy"
)

// Kind is what a snapshot is for.
type Kind string

const (
	KindCommitted Kind = "committed"
	KindActive    Kind = "active"
	KindView      Kind = "view"
)

// Options configure a Snapshotter.
type Options struct {
	// Driver is Overlay (the default) or Copy.
	Driver string
	// Devices and Limits apply to every unpacked layer.
	Devices DevicePolicy
	Limits  Limits
	// NoSweep skips the removal of what crashed processes left (see
	// cleanup), for a process that opens the snapshotter alongside the
	// command that started it, which has just swept (a spare monitor):
	// meeting that command's snapshot half-made, the sweep would wait for
	// its write lock.
	NoSweep bool
}

// Info describes one snapshot.
type Info struct {
	ID      int64
	Name    string // chain ID (committed) or key (active, view)
	Kind    Kind
	Parent  string // chain ID, "" for a base layer or an empty active snapshot
	DiffID  string // committed only
	Size    int64  // committed: bytes of file content in the layer (logical: holes count)
	Inodes  int64  // committed: entries in the layer
	Created time.Time
	// Owners counts the owners retaining a committed snapshot.
	Owners int
}

// Usage is the disk a snapshot's own directory takes.
type Usage struct {
	Size   int64
	Inodes int64
}

// Mount is one mount(2) call; MountAll performs a list of them on a target.
type Mount struct {
	Type    string // "overlay" or "bind"
	Source  string
	Options []string
}

// Errors callers test for with errors.Is; their classes are
// errdefs.ErrNotFound and errdefs.ErrAlreadyExists.
var (
	ErrNotFound = errdefs.ErrNotFound.WithMessage("snapshot not found")
	ErrExists   = errdefs.ErrAlreadyExists.WithMessage("snapshot already exists")
)

// Snapshotter stores snapshots under a root, recorded in the metadata DB.
// It is safe for concurrent use, and several processes may use the same
// root at once.
type Snapshotter struct {
	db   *metadata.DB
	dir  string // <root>/snapshots
	opts Options

	mu        sync.Mutex
	committed chan struct{} // closed and replaced at each commit by this process
}

// Open prepares <root>/snapshots and removes what crashed processes left
// behind: their temp directories, snapshot directories the database does not
// record, and records whose directory is gone.
func Open(db *metadata.DB, root string, opts Options) (*Snapshotter, error) {
	if opts.Driver == "" {
		opts.Driver = Overlay
	}
	if opts.Driver != Overlay && opts.Driver != Copy {
		return nil, fmt.Errorf("snapshotter %q unknown (use overlay or copy)", opts.Driver)
	}
	if opts.Limits.MaxImageBytes <= 0 {
		opts.Limits.MaxImageBytes = DefaultLimits.MaxImageBytes
	}
	s := &Snapshotter{db: db, dir: filepath.Join(root, "snapshots"), opts: opts, committed: make(chan struct{})}
	for _, d := range []string{s.dir, s.lockDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshots: create %s: %w", d, err)
		}
	}
	if err := MkdirSpread(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	if opts.NoSweep {
		return s, nil
	}
	if err := s.cleanup(context.Background()); err != nil {
		return nil, fmt.Errorf("snapshots: clean up after a crash: %w", err)
	}
	return s, nil
}

// MkdirSpread makes dir, if it is missing, as the top of unrelated
// directory trees (ext4's "T" attribute), so each directory made under it
// (a snapshot being built, a container's state) gets a block group of its
// own instead of its parent's. Without a journal, ext4 skips inodes freed
// in the last minute when it allocates, each skip a lookup: a group that
// just lost a removed image's or container's files makes every file made
// there next slower (a fifth of a pull's time here). Other filesystems
// lack the flag; that is fine.
//
// A directory that exists already is given no more group and other bits
// than perm allows (one an older hull made wider is tightened).
func MkdirSpread(dir string, perm os.FileMode) error {
	if st, err := os.Stat(dir); err == nil {
		return hullperm.Tighten(dir, st.Mode(), perm)
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	spreadSubdirs(dir)
	return nil
}

func spreadSubdirs(dir string) {
	const fsTopdirFL = 0x00020000 // FS_TOPDIR_FL in linux/fs.h
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFL != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFL))
}

// Driver is the driver this snapshotter uses.
func (s *Snapshotter) Driver() string { return s.opts.Driver }

func (s *Snapshotter) tmpDir() string  { return filepath.Join(s.dir, "tmp") }
func (s *Snapshotter) lockDir() string { return filepath.Join(s.dir, "locks") }
func (s *Snapshotter) snapDir(id int64) string {
	return filepath.Join(s.dir, strconv.FormatInt(id, 10))
}
func (s *Snapshotter) fsDir(id int64) string   { return filepath.Join(s.snapDir(id), "fs") }
func (s *Snapshotter) workDir(id int64) string { return filepath.Join(s.snapDir(id), "work") }
func (s *Snapshotter) lockPath(chain string) string {
	return filepath.Join(s.lockDir(), s.opts.Driver+"-"+strings.TrimPrefix(chain, "sha256:"))
}

// ChainID names the layer stack parent + diffID ("" parent: a base layer).
func ChainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	sum := sha256.Sum256([]byte(parent + " " + diffID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ChainIDs are the chain IDs of each prefix of an image's diffIDs.
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	parent := ""
	for i, d := range diffIDs {
		parent = ChainID(parent, d)
		out[i] = parent
	}
	return out
}

func checkDigest(what, d string) error {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return fmt.Errorf("%s %q is not a sha256 digest", what, d)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return fmt.Errorf("%s %q is not a sha256 digest", what, d)
	}
	return nil
}

// Has reports whether the layer stack chainID is unpacked.
func (s *Snapshotter) Has(ctx context.Context, chainID string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM snapshots WHERE driver = ? AND name = ? AND kind = ?`,
		s.opts.Driver, chainID, KindCommitted).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("snapshot %s: %w", chainID, err)
	}
	return n > 0, nil
}

// Unpack applies the layer blob (tar, tar+gzip or tar+zstd) with the given
// diffID on top of the committed snapshot parentChainID ("" for a base
// layer) and returns the new snapshot's chain ID.
//
// It is idempotent and returns at once, leaving blob unread, if the chain is
// already unpacked. Concurrent calls for one chain, in this process or
// others, unpack it once: the others wait on a per-chain file lock and then
// find it done. The uncompressed stream must hash to diffID; if it does not,
// or anything else fails, nothing is kept.
//
// The parent need not be unpacked yet when Unpack is called: with the
// overlay driver the layer is applied at once (layers are independent
// diffs) and Unpack then waits for the parent before recording the child;
// the copy driver waits before it starts. So a puller may unpack all layers
// of an image concurrently, as their blobs arrive. Unpack waits until ctx
// ends, so a puller must cancel ctx if it will not unpack the parent.
//
// Besides the per-layer Limits, the stack's content (this layer's and its
// ancestors') must fit Limits.MaxImageBytes. Layers below that are unpacked
// when Unpack starts bound this one as it unpacks; otherwise the layer is
// bounded alone, and the sum is checked once the parent is in. A layer
// that goes over is an *ImageLimitError, and its parents stay.
func (s *Snapshotter) Unpack(ctx context.Context, parentChainID, diffID string, blob io.Reader) (string, error) {
	if err := checkDigest("diffID", diffID); err != nil {
		return "", err
	}
	if parentChainID != "" {
		if err := checkDigest("parent chain ID", parentChainID); err != nil {
			return "", err
		}
	}
	chain := ChainID(parentChainID, diffID)
	if ok, err := s.Has(ctx, chain); err != nil || ok {
		return chain, err
	}
	unlock, err := lockFile(ctx, s.lockPath(chain))
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer unlock()
	if ok, err := s.Has(ctx, chain); err != nil || ok {
		return chain, err
	}

	tmp, err := s.mkTemp("unpack")
	if err != nil {
		return "", err
	}
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	fsDir := filepath.Join(tmp, "fs")
	mode := WhiteoutOverlay
	if s.opts.Driver == Copy {
		mode = WhiteoutDelete
		if err := s.copyParent(ctx, parentChainID, fsDir); err != nil {
			return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
		}
	} else if err := os.Mkdir(fsDir, 0o755); err != nil {
		return "", err
	}
	var below int64
	if parentChainID != "" {
		if ok, err := s.Has(ctx, parentChainID); err != nil {
			return "", err
		} else if ok {
			if below, err = s.chainSize(ctx, parentChainID); err != nil {
				return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
			}
		}
	}
	res, err := Apply(ctx, fsDir, blob, ApplyOptions{
		Whiteouts: mode, Devices: s.opts.Devices, Limits: s.opts.Limits, DiffID: diffID, Below: below,
	})
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if s.opts.Driver == Overlay && parentChainID != "" {
		if err := s.waitFor(ctx, parentChainID); err != nil {
			return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
		}
		lowers, err := s.lowerDirs(ctx, parentChainID)
		if err != nil {
			return "", err
		}
		if err := fixImplicitDirs(fsDir, lowers, res.ImplicitDirs); err != nil {
			return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
		}
	}
	if below, err = s.chainSize(ctx, parentChainID); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if limit := s.opts.Limits.MaxImageBytes; res.ContentBytes > limit-below {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, &ImageLimitError{Below: below, Size: below + res.ContentBytes, Limit: limit})
	}
	info := Info{Name: chain, Kind: KindCommitted, Parent: parentChainID, DiffID: diffID, Size: res.ContentBytes, Inodes: res.Entries}
	if err := s.record(ctx, &info, tmp); err != nil {
		if errors.Is(err, ErrExists) {
			return chain, nil // another process without our lock file won
		}
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	tmp = ""
	return chain, nil
}

// copyParent fills dst with the full tree of the committed snapshot parent
// (copy driver), waiting for it first.
func (s *Snapshotter) copyParent(ctx context.Context, parent, dst string) error {
	if parent == "" {
		return os.Mkdir(dst, 0o755)
	}
	if err := s.waitFor(ctx, parent); err != nil {
		return err
	}
	info, err := s.get(ctx, parent)
	if err != nil {
		return err
	}
	return copyTree(ctx, s.fsDir(info.ID), dst)
}

// copyTree copies src to dst (which must not exist) with everything a root
// filesystem has: owners, modes, times, xattrs, hardlinks, devices.
func copyTree(ctx context.Context, src, dst string) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src+"/.", dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copy %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// waitFor returns once the committed snapshot chain exists. Commits in this
// process wake it at once; commits by other processes are seen by polling.
func (s *Snapshotter) waitFor(ctx context.Context, chain string) error {
	for {
		s.mu.Lock()
		ch := s.committed
		s.mu.Unlock()
		ok, err := s.Has(ctx, chain)
		if err != nil || ok {
			return err
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("wait for parent layer %s: %w", chain, ctx.Err())
		}
	}
}

func (s *Snapshotter) notifyCommit() {
	s.mu.Lock()
	close(s.committed)
	s.committed = make(chan struct{})
	s.mu.Unlock()
}

// record inserts info and moves the built directory tmp to its id, in one
// transaction: if the process dies before the commit, the directory is an
// orphan that the next Open removes.
func (s *Snapshotter) record(ctx context.Context, info *Info, tmp string) error {
	moved := ""
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if moved != "" { // an earlier attempt of this transaction rolled back
			if err := os.Rename(moved, tmp); err != nil {
				return err
			}
			moved = ""
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM snapshots WHERE driver = ? AND name = ?`, s.opts.Driver, info.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s: %w", info.Name, ErrExists)
		}
		if info.Parent != "" {
			err := tx.QueryRow(`SELECT COUNT(*) FROM snapshots WHERE driver = ? AND name = ? AND kind = ?`, s.opts.Driver, info.Parent, KindCommitted).Scan(&n)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("parent layer %s: %w (pruned meanwhile? retain chain IDs before unpacking)", info.Parent, ErrNotFound)
			}
		}
		info.Created = time.Now()
		r, err := tx.Exec(`INSERT INTO snapshots(driver, kind, name, parent, diff_id, size, inodes, created) VALUES(?,?,?,?,?,?,?,?)`,
			s.opts.Driver, info.Kind, info.Name, info.Parent, info.DiffID, info.Size, info.Inodes, info.Created.UnixNano())
		if err != nil {
			return err
		}
		if info.ID, err = r.LastInsertId(); err != nil {
			return err
		}
		dst := s.snapDir(info.ID)
		// A directory already at dst was left by a crash before its commit
		// (ids of rolled-back rows are handed out again).
		if _, err := os.Lstat(dst); err == nil {
			if err := s.discard(dst); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		moved = dst
		return nil
	})
	if err != nil {
		if moved != "" {
			os.RemoveAll(moved)
		}
		return err
	}
	s.notifyCommit()
	return nil
}

// mkTemp makes a private directory under tmp/ named for this process, so
// cleanup can tell whether its owner is alive.
func (s *Snapshotter) mkTemp(what string) (string, error) {
	d, err := os.MkdirTemp(s.tmpDir(), strconv.Itoa(os.Getpid())+"-"+what+"-")
	if err != nil {
		return "", fmt.Errorf("snapshots: temp dir: %w", err)
	}
	return d, nil
}

// discard moves dir out of the way into tmp/ and removes it. The move is
// atomic, so a crash mid-removal leaves only a temp dir of a dead process.
func (s *Snapshotter) discard(dir string) error {
	t, err := s.trash(dir)
	if err != nil {
		return err
	}
	return os.RemoveAll(t)
}

// trash moves dir into tmp/ under a name of this process's (what a crash
// leaves there is swept by pid) and returns where it went, for the caller
// to remove ("" if dir did not exist). A rename, not a directory made to
// hold it: on ext4 each directory made costs an inode and a block.
func (s *Snapshotter) trash(dir string) (string, error) {
	t := filepath.Join(s.tmpDir(), fmt.Sprintf("%d-trash-%d", os.Getpid(), rand.Uint64()))
	if err := os.Rename(dir, t); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	return t, nil
}

func (s *Snapshotter) get(ctx context.Context, name string) (Info, error) {
	var i Info
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT s.id, s.kind, s.parent, s.diff_id, s.size, s.inodes, s.created,
			(SELECT COUNT(*) FROM snapshot_refs r WHERE r.chain_id = s.name)
		FROM snapshots s WHERE s.driver = ? AND s.name = ?`, s.opts.Driver, name).
		Scan(&i.ID, &i.Kind, &i.Parent, &i.DiffID, &i.Size, &i.Inodes, &created, &i.Owners)
	if errors.Is(err, sql.ErrNoRows) {
		return i, fmt.Errorf("snapshot %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return i, fmt.Errorf("snapshot %s: %w", name, err)
	}
	i.Name, i.Created = name, time.Unix(0, created)
	return i, nil
}

// Stat describes the snapshot name (a chain ID or a key).
func (s *Snapshotter) Stat(ctx context.Context, name string) (Info, error) {
	return s.get(ctx, name)
}

// chainSize is the content bytes of the layer stack chain ("" for none):
// what its layers' files hold, holes included, as Limits.MaxImageBytes
// counts them.
func (s *Snapshotter) chainSize(ctx context.Context, chain string) (int64, error) {
	var n int64
	for chain != "" {
		info, err := s.get(ctx, chain)
		if err != nil {
			return 0, err
		}
		n += info.Size
		chain = info.Parent
	}
	return n, nil
}

// lowerDirs are the fs directories of chain and its ancestors, top first.
func (s *Snapshotter) lowerDirs(ctx context.Context, chain string) ([]string, error) {
	var dirs []string
	for chain != "" {
		info, err := s.get(ctx, chain)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, s.fsDir(info.ID))
		chain = info.Parent
	}
	return dirs, nil
}

// Prepare creates the active snapshot key, a writable root on top of the
// committed snapshot parent ("" for an empty root), and returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]Mount, error) {
	return s.create(ctx, KindActive, key, parent)
}

// View creates the read-only snapshot key of the committed snapshot parent
// and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]Mount, error) {
	if parent == "" {
		return nil, fmt.Errorf("view %s: no parent layer to view", key)
	}
	return s.create(ctx, KindView, key, parent)
}

func (s *Snapshotter) create(ctx context.Context, kind Kind, key, parent string) ([]Mount, error) {
	if key == "" || strings.HasPrefix(key, "sha256:") {
		return nil, fmt.Errorf("snapshot key %q: must be non-empty and not a digest", key)
	}
	if parent != "" {
		if ok, err := s.Has(ctx, parent); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%s %s: parent layer %s: %w", kind, key, parent, ErrNotFound)
		}
	}
	tmp, err := s.mkTemp(string(kind))
	if err != nil {
		return nil, err
	}
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	fsDir := filepath.Join(tmp, "fs")
	switch {
	case kind == KindView:
		// Views mount their parent's directories; nothing of their own.
	case s.opts.Driver == Copy:
		if err := s.copyParent(ctx, parent, fsDir); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", key, err)
		}
	default:
		if err := os.Mkdir(fsDir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(tmp, "work"), 0o700); err != nil {
			return nil, err
		}
	}
	info := Info{Name: key, Kind: kind, Parent: parent}
	if err := s.record(ctx, &info, tmp); err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, key, err)
	}
	tmp = ""
	return s.mounts(ctx, info)
}

// Mounts returns the mounts of the active snapshot or view key again.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	info, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if info.Kind == KindCommitted {
		return nil, fmt.Errorf("snapshot %s is a layer; View or Prepare on top of it", key)
	}
	return s.mounts(ctx, info)
}

func (s *Snapshotter) mounts(ctx context.Context, info Info) ([]Mount, error) {
	var lowers []string
	if info.Parent != "" {
		var err error
		if lowers, err = s.lowerDirs(ctx, info.Parent); err != nil {
			return nil, err
		}
	}
	bind := func(src string, ro bool) []Mount {
		opt := "rw"
		if ro {
			opt = "ro"
		}
		return []Mount{{Type: "bind", Source: src, Options: []string{"rbind", opt}}}
	}
	if s.opts.Driver == Copy {
		if info.Kind == KindView {
			return bind(lowers[0], true), nil
		}
		return bind(s.fsDir(info.ID), false), nil
	}
	if info.Kind == KindView {
		if len(lowers) == 1 {
			return bind(lowers[0], true), nil
		}
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"ro", "index=off", "lowerdir=" + strings.Join(lowers, ":"),
		}}}, nil
	}
	if len(lowers) == 0 {
		return bind(s.fsDir(info.ID), false), nil
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + s.fsDir(info.ID), "workdir=" + s.workDir(info.ID),
	}}}, nil
}

// Remove deletes the active snapshot or view key. Unmount it first.
// Committed snapshots go only through Prune.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	trash, err := s.RemoveLater(ctx, key)
	if err != nil || trash == "" {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return nil
}

// RemoveLater is Remove whose slow part, deleting the snapshot's files, is
// left to the caller: the snapshot is already gone from the metadata and
// its directory moved into the returned temp dir ("" if it had none),
// which the caller removes when it suits (a crash leaves only a temp dir of
// a dead process, which the next Open removes). A caller that must answer
// quickly (the monitor of a --rm container) answers first.
func (s *Snapshotter) RemoveLater(ctx context.Context, key string) (string, error) {
	if info, err := s.get(ctx, key); err == nil {
		if target := overlayUsing(s.fsDir(info.ID)); target != "" {
			return "", fmt.Errorf("remove snapshot %s: still mounted on %s (unmount it first)", key, target)
		}
	}
	return s.RemoveUnmounted(ctx, key)
}

// RemoveUnmounted is RemoveLater for a caller that knows the snapshot is
// mounted nowhere (it has just unmounted the one place it mounts it), and
// so skips the search of the mount table.
func (s *Snapshotter) RemoveUnmounted(ctx context.Context, key string) (string, error) {
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var kind Kind
		err := tx.QueryRow(`SELECT id, kind FROM snapshots WHERE driver = ? AND name = ?`, s.opts.Driver, key).Scan(&id, &kind)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("remove snapshot %s: %w", key, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if kind == KindCommitted {
			return fmt.Errorf("remove snapshot %s: it is a layer; release its owners and prune", key)
		}
		_, err = tx.Exec(`DELETE FROM snapshots WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return "", err
	}
	t, err := s.trash(s.snapDir(id))
	if err != nil {
		return "", fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return t, nil
}

// Empty deletes what an active snapshot's writable layer holds, without
// recording anything: for a removal on a full disk, which must free the
// space before it can record the removal (Remove then does the rest).
// The snapshot must be mounted nowhere.
func (s *Snapshotter) Empty(ctx context.Context, key string) error {
	info, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	if info.Kind != KindActive {
		return fmt.Errorf("empty snapshot %s: only a writable layer can be emptied", key)
	}
	dir := s.fsDir(info.ID)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("empty snapshot %s: %w", key, err)
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// Usage is the disk the snapshot name uses by itself, in allocated blocks:
// for a layer, its tree as unpacked (a sparse file's holes take none, where
// Info.Size counts file contents whole); for an active snapshot, its
// writable layer (or copy) as it is now; views use nothing.
func (s *Snapshotter) Usage(ctx context.Context, name string) (Usage, error) {
	info, err := s.get(ctx, name)
	if err != nil {
		return Usage{}, err
	}
	if info.Kind == KindView {
		return Usage{}, nil
	}
	return DiskUsage(s.fsDir(info.ID))
}

// DiskUsage is the space the files under dir take, as `du -x` counts
// it (and containerd's snapshotters and kubelet's volume metrics): the
// allocated blocks of each inode once however many links it has, and
// the inodes, without crossing into another filesystem mounted below
// dir. The tree may be in use while it is walked (a running container's
// writable layer, a pod's emptyDir): a file removed meanwhile is not
// counted. Snapshot usage and kube's emptyDir sizeLimit both use it.
func DiskUsage(dir string) (Usage, error) {
	var u Usage
	var top unix.Stat_t
	if err := unix.Lstat(dir, &top); err != nil {
		return u, fmt.Errorf("usage of %s: %w", dir, err)
	}
	seen := map[uint64]bool{} // inodes with more than one link
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if st.Dev != top.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", dir, err)
	}
	return u, nil
}

// List describes every snapshot of this driver, oldest first.
func (s *Snapshotter) List(ctx context.Context) ([]Info, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.id, s.name, s.kind, s.parent, s.diff_id, s.size, s.inodes, s.created,
			(SELECT COUNT(*) FROM snapshot_refs r WHERE r.chain_id = s.name)
		FROM snapshots s WHERE s.driver = ? ORDER BY s.id`, s.opts.Driver)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer rows.Close()
	var out []Info
	for rows.Next() {
		var i Info
		var created int64
		if err := rows.Scan(&i.ID, &i.Name, &i.Kind, &i.Parent, &i.DiffID, &i.Size, &i.Inodes, &created, &i.Owners); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		i.Created = time.Unix(0, created)
		out = append(out, i)
	}
	return out, rows.Err()
}

// CommittedSizes are the content bytes of each committed snapshot (an
// unpacked layer), by name (its chain ID): an image's unpacked size
// without reading the containers' writable layers, as many as there are
// containers, that List also returns.
func (s *Snapshotter) CommittedSizes(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, size FROM snapshots WHERE driver = ? AND kind = ?`, s.opts.Driver, KindCommitted)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer rows.Close()
	sizes := map[string]int64{}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		sizes[name] = size
	}
	return sizes, rows.Err()
}

// CommittedSize is the content bytes of the committed snapshot name (a
// chain ID), found by its key: one image's unpacked size without reading
// every snapshot as CommittedSizes does. false: there is none (the layer
// is not unpacked).
func (s *Snapshotter) CommittedSize(ctx context.Context, name string) (int64, bool, error) {
	var size int64
	err := s.db.QueryRowContext(ctx, `SELECT size FROM snapshots WHERE driver = ? AND name = ? AND kind = ?`, s.opts.Driver, name, KindCommitted).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return size, true, nil
}

// Retain records that owner needs the layer stacks chainIDs. They need not
// be unpacked yet; retaining first protects an unpack from a concurrent Prune.
func (s *Snapshotter) Retain(ctx context.Context, owner string, chainIDs ...string) error {
	if owner == "" {
		return fmt.Errorf("retain: empty owner")
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return RetainIn(tx, owner, chainIDs...) })
}

// RetainIn is Retain as part of tx, a transaction of the caller's that
// records the owner in the same commit (a container's creation records
// its image and retains its layers in one).
func RetainIn(tx *sql.Tx, owner string, chainIDs ...string) error {
	if owner == "" {
		return fmt.Errorf("retain: empty owner")
	}
	for _, c := range chainIDs {
		if err := checkDigest("chain ID", c); err != nil {
			return fmt.Errorf("retain for %s: %w", owner, err)
		}
		if _, err := tx.Exec(`INSERT OR IGNORE INTO snapshot_refs(owner, chain_id) VALUES(?, ?)`, owner, c); err != nil {
			return fmt.Errorf("retain %s for %s: %w", c, owner, err)
		}
	}
	return nil
}

// Owners lists every owner that retains a layer stack.
func (s *Snapshotter) Owners(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT owner FROM snapshot_refs ORDER BY owner`)
	if err != nil {
		return nil, fmt.Errorf("list snapshot owners: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Release drops every claim of owner. The layers stay until Prune.
func (s *Snapshotter) Release(ctx context.Context, owner string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM snapshot_refs WHERE owner = ?`, owner); err != nil {
			return fmt.Errorf("release %s: %w", owner, err)
		}
		return nil
	})
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Removed []string // chain IDs
	Bytes   int64    // their content bytes
}

// Prune removes the committed snapshots (of every driver) that no owner
// retains and that no retained snapshot, active snapshot or view is built
// on. Work in progress (unpacks not yet recorded) is never touched.
func (s *Snapshotter) Prune(ctx context.Context) (PruneResult, error) {
	var res PruneResult
	var victims []snapshotRow
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res = PruneResult{}
		var err error
		if victims, err = unused(ctx, tx); err != nil {
			return err
		}
		for _, v := range victims {
			if _, err := tx.Exec(`DELETE FROM snapshots WHERE id = ?`, v.ID); err != nil {
				return err
			}
			res.Removed = append(res.Removed, v.Name)
			res.Bytes += v.Size
		}
		return nil
	})
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune snapshots: %w", err)
	}
	for _, v := range victims {
		if err := s.discard(s.snapDir(v.ID)); err != nil {
			return res, fmt.Errorf("prune snapshots: remove %s: %w", s.snapDir(v.ID), err)
		}
		// Someone may be waiting on this lock to unpack the chain again; if
		// a third process then creates a new lock file, two unpack it at
		// once and the second to record it finds it done: only work is lost.
		os.Remove(filepath.Join(s.lockDir(), v.driver+"-"+strings.TrimPrefix(v.Name, "sha256:")))
	}
	return res, nil
}

// Unused lists the committed snapshots Prune would remove now.
func (s *Snapshotter) Unused(ctx context.Context) ([]Info, error) {
	victims, err := unused(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("list unused snapshots: %w", err)
	}
	out := make([]Info, len(victims))
	for i, v := range victims {
		out[i] = v.Info
	}
	return out, nil
}

// snapshotRow is an Info with the driver it belongs to.
type snapshotRow struct {
	Info
	driver string
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// unused finds the committed snapshots of every driver that nothing keeps:
// live are retained chains, active snapshots and views, and every ancestor
// of those.
func unused(ctx context.Context, q querier) ([]snapshotRow, error) {
	type row = snapshotRow
	var all []row
	rows, err := q.QueryContext(ctx, `SELECT id, driver, kind, name, parent, diff_id, size, inodes FROM snapshots ORDER BY id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ID, &r.driver, &r.Kind, &r.Name, &r.Parent, &r.DiffID, &r.Size, &r.Inodes); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, r)
	}
	rows.Close()
	retained := map[string]bool{}
	refs, err := q.QueryContext(ctx, `SELECT DISTINCT chain_id FROM snapshot_refs`)
	if err != nil {
		return nil, err
	}
	for refs.Next() {
		var c string
		if err := refs.Scan(&c); err != nil {
			refs.Close()
			return nil, err
		}
		retained[c] = true
	}
	refs.Close()

	type key struct{ driver, name string }
	byName := map[key]row{}
	for _, r := range all {
		byName[key{r.driver, r.Name}] = r
	}
	live := map[int64]bool{}
	for _, r := range all {
		if r.Kind == KindCommitted && !retained[r.Name] {
			continue
		}
		for name := r.Name; name != ""; {
			a, ok := byName[key{r.driver, name}]
			if !ok || live[a.ID] {
				break
			}
			live[a.ID] = true
			name = a.Parent
		}
	}
	var out []row
	for _, r := range all {
		if !live[r.ID] {
			out = append(out, r)
		}
	}
	return out, nil
}

// cleanup removes what dead processes left: temp dirs named for a dead pid,
// snapshot dirs with no row, and rows whose dir is gone (with anything built
// on them).
func (s *Snapshotter) cleanup(ctx context.Context) error {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		pidStr, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if err == nil && processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return err
		}
	}
	// Every hull command opens the snapshotter: the common case, records
	// and directories in agreement, is found with a read, which takes no
	// write lock that other commands (a container's monitor starting
	// alongside its CLI) would wait for.
	if s.recordsMatchDirs(ctx) {
		return nil
	}
	var orphans []string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		orphans = nil
		ids := map[int64]bool{}
		rows, err := tx.Query(`SELECT id FROM snapshots`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids[id] = true
		}
		rows.Close()
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			return err
		}
		onDisk := map[int64]bool{}
		for _, e := range entries {
			id, err := strconv.ParseInt(e.Name(), 10, 64)
			if err != nil {
				continue // tmp, locks
			}
			onDisk[id] = true
			if !ids[id] {
				// Holding the write lock, no one is between recording and
				// committing this id: it is a crash leftover.
				t, err := s.mkTemp("orphan")
				if err != nil {
					return err
				}
				// Gone meanwhile: a removal, which deletes the record
				// and then moves the directory aside, was between the two.
				if err := os.Rename(filepath.Join(s.dir, e.Name()), filepath.Join(t, "d")); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				orphans = append(orphans, t)
			}
		}
		for id := range ids {
			if !onDisk[id] {
				if _, err := tx.Exec(`DELETE FROM snapshots WHERE id = ?`, id); err != nil {
					return err
				}
			}
		}
		// Drop rows whose parent is gone, until none is left.
		for {
			r, err := tx.Exec(`DELETE FROM snapshots WHERE parent != '' AND NOT EXISTS
				(SELECT 1 FROM snapshots p WHERE p.driver = snapshots.driver AND p.name = snapshots.parent AND p.kind = 'committed')`)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return nil
			}
		}
	})
	for _, o := range orphans {
		os.RemoveAll(o)
	}
	return err
}

// recordsMatchDirs reports whether every recorded snapshot has its
// directory and every snapshot directory its record.
func (s *Snapshotter) recordsMatchDirs(ctx context.Context) bool {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM snapshots`)
	if err != nil {
		return false
	}
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		if rows.Scan(&id) != nil {
			rows.Close()
			return false
		}
		ids[id] = true
	}
	rows.Close()
	if rows.Err() != nil {
		return false
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return false
	}
	onDisk := 0
	for _, e := range entries {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue // tmp, locks
		}
		if !ids[id] {
			return false
		}
		onDisk++
	}
	return onDisk == len(ids)
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// lockBusyHook, if set (by tests), is called once when lockFile finds the
// lock taken and starts waiting.
var lockBusyHook func(path string)

// lockFile takes an exclusive flock on path, waiting until ctx ends. The
// lock is held by the open file, so it dies with the process.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for waited := false; ; waited = true {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited && lockBusyHook != nil {
			lockBusyHook(path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
