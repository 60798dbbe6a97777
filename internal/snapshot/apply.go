package snapshot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"hull/internal/digest"
)

// WhiteoutMode says what an OCI whiteout entry becomes in the target tree.
type WhiteoutMode int

const (
	// WhiteoutOverlay turns `.wh.NAME` into an overlay whiteout (a 0/0
	// character device) and `.wh..wh..opq` into trusted.overlay.opaque=y on
	// the directory: the target is one overlay layer and the lower layers are
	// hidden at mount time.
	WhiteoutOverlay WhiteoutMode = iota
	// WhiteoutDelete removes what a whiteout names from the target, which
	// holds the full tree of the parent layers (the copy snapshotter).
	WhiteoutDelete
)

// DevicePolicy says what happens to character and block device entries.
type DevicePolicy int

const (
	// DevicesCreate makes device nodes as the layer says (needs CAP_MKNOD).
	DevicesCreate DevicePolicy = iota
	// DevicesReject fails the layer at the first device entry.
	DevicesReject
	// DevicesSkip leaves device entries out, as rootless runtimes do.
	DevicesSkip
)

// Limits bound what a layer, and an image's stack of layers, may make a
// host do; they turn decompression bombs into errors. Zero fields take the
// defaults.
type Limits struct {
	// MaxBytes bounds the uncompressed layer stream (tar headers, contents
	// and trailing padding), and separately the file contents it expands
	// to: a sparse entry counts at its logical size, holes included, though
	// its holes take no disk (reading them still costs a scan of zeros).
	MaxBytes int64
	// MaxEntries bounds the number of tar entries.
	MaxEntries int64
	// MaxImageBytes bounds the file contents of a whole layer stack (an
	// image): the sum of its layers' logical content sizes. Without it, an
	// image of many layers each under MaxBytes could still fill a disk.
	// Apply counts one layer's contents, on top of ApplyOptions.Below; the
	// Snapshotter supplies Below and checks the whole sum.
	MaxImageBytes int64
}

// DefaultLimits are generous for real images (the largest public images are
// a few tens of GiB uncompressed) and stop bombs long before a disk fills.
var DefaultLimits = Limits{MaxBytes: 64 << 30, MaxEntries: 4 << 20, MaxImageBytes: 128 << 30}

// The hull.toml keys that set the size limits, for the errors that say
// which one to raise.
const (
	layerSizeKey = "[storage] max_layer_size"
	imageSizeKey = "[storage] max_image_size"
)

// ApplyOptions control one Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	Devices   DevicePolicy
	Limits    Limits
	// DiffID, if set ("sha256:<hex>"), is the digest the uncompressed stream
	// must have; a mismatch fails Apply after the whole stream is read.
	DiffID string
	// Below is the content bytes of the layers under this one, which count
	// with this layer's against Limits.MaxImageBytes (0: a base layer, or
	// a layer whose parent is not unpacked yet, checked alone).
	Below int64
}

// ApplyResult describes an applied layer.
type ApplyResult struct {
	// DiffID is the sha256 of the uncompressed stream.
	DiffID string
	// Bytes is the length of the uncompressed stream.
	Bytes int64
	// Entries counts tar entries; ContentBytes sums regular file sizes.
	Entries      int64
	ContentBytes int64
	// ImplicitDirs are directories Apply created because an entry needed a
	// parent the layer did not list, parents first. In overlay mode they
	// should take their owner and mode from the lower layers (see fixImplicitDirs).
	ImplicitDirs []string
}

// LimitError reports a layer that exceeded a Limits bound. Its class is
// errdefs.ErrResourceExhausted: the bounds are quotas set in hull.toml.
type LimitError struct {
	What  string // "uncompressed size" or "entry count"
	Limit int64
}

func (e *LimitError) Error() string {
	if e.What == "uncompressed size" {
		return fmt.Sprintf("layer exceeds the %s limit of %s (decompression bomb? if the image is legitimate, raise %s in hull.toml)", e.What, sizeString(e.Limit), layerSizeKey)
	}
	return fmt.Sprintf("layer exceeds the %s limit of %d (decompression bomb?)", e.What, e.Limit)
}

func (e *LimitError) Is(target error) bool { return target == errdefs.ErrResourceExhausted }

// ImageLimitError reports a layer that takes its layer stack (the image
// being unpacked) over Limits.MaxImageBytes. The layers below it stay.
// Its class is errdefs.ErrResourceExhausted, as LimitError's.
type ImageLimitError struct {
	Below int64 // content bytes of the layers below this one
	// Size is the content bytes of the stack with this layer, or -1 if
	// the layer was stopped as soon as it went over.
	Size  int64
	Limit int64
}

func (e *ImageLimitError) Error() string {
	total := "more than the image size limit of " + sizeString(e.Limit)
	if e.Size >= 0 {
		total = sizeString(e.Size) + ", over the image size limit of " + sizeString(e.Limit) + ","
	}
	return fmt.Sprintf("the image's layers unpack to %s with %s in the layers below this one; if the image is legitimate, raise %s in hull.toml",
		total, sizeString(e.Below), imageSizeKey)
}

func (e *ImageLimitError) Is(target error) bool { return target == errdefs.ErrResourceExhausted }

// sizeString writes n in the binary units hull.toml takes, exactly.
func sizeString(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v {
			if n%u.v == 0 {
				return strconv.FormatInt(n/u.v, 10) + u.s
			}
			return fmt.Sprintf("%.1f%s (%d bytes)", float64(n)/float64(u.v), u.s, n)
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// DiffIDError is a layer whose uncompressed content does not hash to the
// diffID the image config names. Its class is errdefs.ErrDataLoss.
type DiffIDError struct{ Want, Got string }

func (e *DiffIDError) Error() string {
	return fmt.Sprintf("layer diffID mismatch: image config says %s, content hashes to %s (corrupt or tampered layer)", e.Want, e.Got)
}

func (e *DiffIDError) Is(target error) bool { return target == errdefs.ErrDataLoss }

const copyBufSize = 1 << 20

// Apply unpacks the layer stream r (a tar, optionally gzip or zstd
// compressed; detected by magic bytes) into the directory dir, in one pass,
// hashing the uncompressed bytes as they stream by.
//
// Every entry is placed inside dir whatever its name says: names are cleaned
// as if rooted at dir (so `../x` and `/x` both mean dir/x), and every parent
// path is resolved by the kernel with RESOLVE_IN_ROOT, so a symlink planted
// by an earlier entry (or an earlier layer, in the copy snapshotter's tree)
// is followed as if dir were `/`. The last path component is never followed:
// files are created with O_EXCL|O_NOFOLLOW, an existing entry is unlinked
// first, hardlink targets are resolved inside dir too.
//
// A hardlink's target must already be in dir: in overlay mode that means
// in this layer (as docker and containerd require), in copy mode anywhere in
// the tree. Overlay's own xattrs (trusted.overlay.*, user.overlay.*) in a
// layer are dropped: only whiteout entries may steer how layers merge.
//
// On error dir holds a partial layer; callers unpack into a private temp
// directory and discard it (the snapshotter does).
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	if opts.Limits.MaxBytes <= 0 {
		opts.Limits.MaxBytes = DefaultLimits.MaxBytes
	}
	if opts.Limits.MaxEntries <= 0 {
		opts.Limits.MaxEntries = DefaultLimits.MaxEntries
	}
	if opts.Limits.MaxImageBytes <= 0 {
		opts.Limits.MaxImageBytes = DefaultLimits.MaxImageBytes
	}
	stream, closeStream, err := decompress(r)
	if err != nil {
		return ApplyResult{}, err
	}
	defer closeStream()
	hr := &hashReader{r: stream, h: digest.NewSHA256(), limit: opts.Limits.MaxBytes}

	a, err := newApplier(dir, opts)
	if err != nil {
		return ApplyResult{}, err
	}
	defer a.close()

	tr := tar.NewReader(hr)
	for {
		if err := ctx.Err(); err != nil {
			return ApplyResult{}, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ApplyResult{}, fmt.Errorf("read layer after %d entries: %w", a.res.Entries, err)
		}
		a.res.Entries++
		if a.res.Entries > opts.Limits.MaxEntries {
			return ApplyResult{}, fmt.Errorf("entry %q: %w", hdr.Name, &LimitError{What: "entry count", Limit: opts.Limits.MaxEntries})
		}
		// Both the stream and what it expands to (a sparse file's logical
		// size, holes included) count against MaxBytes.
		if hdr.Size > opts.Limits.MaxBytes-max(hr.n, a.res.ContentBytes) {
			return ApplyResult{}, fmt.Errorf("entry %q (%d bytes): %w", hdr.Name, hdr.Size, &LimitError{What: "uncompressed size", Limit: opts.Limits.MaxBytes})
		}
		if hdr.Size > opts.Limits.MaxImageBytes-opts.Below-a.res.ContentBytes {
			return ApplyResult{}, fmt.Errorf("entry %q (%d bytes): %w", hdr.Name, hdr.Size, &ImageLimitError{Below: opts.Below, Size: -1, Limit: opts.Limits.MaxImageBytes})
		}
		if err := a.entry(hdr, tr); err != nil {
			return ApplyResult{}, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// The diffID covers the whole stream, including what follows the tar
	// end marker; reading it to EOF also makes gzip check its CRC.
	if _, err := io.CopyBuffer(io.Discard, hr, a.buf); err != nil {
		return ApplyResult{}, fmt.Errorf("read layer trailer: %w", err)
	}
	if err := a.finish(); err != nil {
		return ApplyResult{}, err
	}
	a.res.Bytes = hr.n
	implicit := a.res.ImplicitDirs[:0]
	for _, d := range a.res.ImplicitDirs {
		if a.implicit[d] {
			implicit = append(implicit, d)
		}
	}
	a.res.ImplicitDirs = implicit
	a.res.DiffID = "sha256:" + hex.EncodeToString(hr.h.Sum(nil))
	if opts.DiffID != "" && opts.DiffID != a.res.DiffID {
		return ApplyResult{}, &DiffIDError{Want: opts.DiffID, Got: a.res.DiffID}
	}
	return a.res, nil
}

// decompress detects the stream's compression from its first bytes.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, copyBufSize)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("layer gzip header: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxWindow(256<<20))
		if err != nil {
			return nil, nil, fmt.Errorf("layer zstd header: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// hashReader hashes and counts what passes through it and fails once more
// than limit bytes have.
type hashReader struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if h.n > h.limit {
		return n, &LimitError{What: "uncompressed size", Limit: h.limit}
	}
	return n, err
}

// applier is the state of one Apply: the root directory fd every path is
// resolved against, and what must be done after the last entry.
type applier struct {
	dir    string
	rootfd int
	opts   ApplyOptions
	buf    []byte
	res    ApplyResult

	// The parent directory of the previous entry, kept open: tar entries
	// come grouped by directory. Dropped whenever a directory is removed.
	cachedRel  string
	cachedFd   int
	cacheStale bool

	dirTimes []dirTime
	implicit map[string]bool

	// For WhiteoutDelete: opaque directories are emptied of everything this
	// layer did not write, after the last entry (an opaque marker applies
	// to the lower layers only).
	opaque  []string
	written map[string]bool
}

type dirTime struct {
	rel   string
	mtime time.Time
}

func newApplier(dir string, opts ApplyOptions) (*applier, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open unpack target %s: %w", dir, err)
	}
	return &applier{
		dir: dir, rootfd: fd, opts: opts, buf: make([]byte, copyBufSize),
		cachedFd: -1, implicit: map[string]bool{}, written: map[string]bool{},
	}, nil
}

func (a *applier) close() {
	a.dropCache()
	unix.Close(a.rootfd)
}

func (a *applier) dropCache() {
	if a.cachedFd >= 0 {
		unix.Close(a.cachedFd)
	}
	a.cachedFd, a.cachedRel = -1, ""
}

// cleanName maps a tar name to a path relative to the root, neutralizing
// `..` and leading slashes the way containerd does: the name is read as if
// the root were `/`. "" is the root itself.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

var resolveHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
}

// openInRoot opens the directory rel inside the root, following symlinks as
// if the root were `/`.
func openInRoot(rootfd int, rel string, how unix.OpenHow) (int, error) {
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// parent returns an fd (owned by the cache; do not close) for the directory
// rel, creating missing directories as the layer implies them.
func (a *applier) parent(rel string) (int, error) {
	if rel == "" {
		return a.rootfd, nil
	}
	if a.cachedFd >= 0 && a.cachedRel == rel && !a.cacheStale {
		return a.cachedFd, nil
	}
	fd, err := openInRoot(a.rootfd, rel, resolveHow)
	if err == unix.ENOENT {
		fd, err = a.mkdirAll(rel)
	}
	if err != nil {
		return -1, fmt.Errorf("parent directory %q: %w", rel, err)
	}
	a.dropCache()
	a.cachedFd, a.cachedRel, a.cacheStale = fd, rel, false
	return fd, nil
}

// mkdirAll creates the missing directories of rel, each inside the root.
func (a *applier) mkdirAll(rel string) (int, error) {
	parts := strings.Split(rel, "/")
	pfd := a.rootfd
	defer func() {
		if pfd != a.rootfd {
			unix.Close(pfd)
		}
	}()
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openInRoot(a.rootfd, prefix, resolveHow)
		if err == unix.ENOENT {
			if err := unix.Mkdirat(pfd, parts[i], 0o755); err != nil {
				if err == unix.EEXIST {
					// A dangling symlink is in the way; following it would
					// need creating its target, which we do not guess.
					return -1, fmt.Errorf("%q exists but does not resolve to a directory: %w", prefix, unix.ENOTDIR)
				}
				return -1, err
			}
			a.implicit[prefix] = true
			a.res.ImplicitDirs = append(a.res.ImplicitDirs, prefix)
			fd, err = openInRoot(a.rootfd, prefix, resolveHow)
		}
		if err != nil {
			return -1, err
		}
		if pfd != a.rootfd {
			unix.Close(pfd)
		}
		pfd = fd
	}
	fd := pfd
	pfd = a.rootfd // ownership moves to the caller
	return fd, nil
}

func (a *applier) entry(hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel := cleanName(hdr.Name)
	dirRel, base := splitRel(rel)

	if strings.HasPrefix(base, ".wh.") {
		return a.whiteout(rel, dirRel, base)
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("the root can only be a directory, not type %q", hdr.Typeflag)
		}
		return a.rootDir(hdr)
	}
	if a.opts.Whiteouts == WhiteoutDelete {
		a.markWritten(rel)
	}

	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		switch a.opts.Devices {
		case DevicesReject:
			return fmt.Errorf("device node %d:%d not allowed in this layer", hdr.Devmajor, hdr.Devminor)
		case DevicesSkip:
			return nil
		}
	}

	pfd, err := a.parent(dirRel)
	if err != nil {
		return err
	}
	mode := uint32(hdr.Mode & 0o7777)

	switch hdr.Typeflag {
	case tar.TypeDir:
		delete(a.implicit, rel)
		if err := unix.Mkdirat(pfd, base, 0o700); err == unix.EEXIST {
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err := unix.Unlinkat(pfd, base, 0); err != nil {
					return err
				}
				if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
					return err
				}
				// A directory replacing this layer's whiteout of the same
				// name replaces the lower directory too: overlay calls that
				// opaque.
				if isWhiteout(&st) {
					if err := setOpaque(pfd, base); err != nil {
						return err
					}
				}
			}
		} else if err != nil {
			return err
		}
		if err := a.setMeta(pfd, base, hdr, mode, false); err != nil {
			return err
		}
		a.dirTimes = append(a.dirTimes, dirTime{rel, hdr.ModTime})
		return nil

	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		// archive/tar reads a sparse entry's map (old GNU 'S', or PAX
		// GNU.sparse.* on a regular entry) and gives its contents whole.
		return a.regular(pfd, base, hdr, mode, tr)

	case tar.TypeSymlink:
		if err := a.create(pfd, base, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
			return err
		}
		return a.setMeta(pfd, base, hdr, 0, true)

	case tar.TypeLink:
		target := cleanName(hdr.Linkname)
		if target == "" {
			return fmt.Errorf("hardlink to the layer root")
		}
		tDir, tBase := splitRel(target)
		tfd, err := openInRoot(a.rootfd, tDir, resolveHow)
		if err == unix.ENOENT {
			return fmt.Errorf("hardlink target %q is not in this layer: %w", hdr.Linkname, err)
		}
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(tfd)
		err = a.create(pfd, base, func() error { return unix.Linkat(tfd, tBase, pfd, base, 0) })
		if err == unix.ENOENT {
			return fmt.Errorf("hardlink target %q is not in this layer: %w", hdr.Linkname, err)
		}
		return err

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		ft := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := a.create(pfd, base, func() error { return unix.Mknodat(pfd, base, ft|0o600, dev) }); err != nil {
			return err
		}
		return a.setMeta(pfd, base, hdr, mode, false)
	}
	return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}

// create runs mk, and if the name is taken, removes what is there (a whole
// tree if it is a directory) and runs mk again: an entry replaces whatever
// an earlier entry or layer put at its name, and is never written through it.
func (a *applier) create(pfd int, base string, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	if err := a.removeAt(pfd, base); err != nil {
		return err
	}
	return mk()
}

// removeAt removes base (a file or a whole tree) from the directory pfd.
func (a *applier) removeAt(pfd int, base string) error {
	// The cached parent may have been reached through what goes now. It
	// stays open (pfd may be it) but is not reused.
	a.cacheStale = true
	err := unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR || err == unix.EPERM {
		err = os.RemoveAll(fdPath(pfd, base))
	}
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// fdPath names base inside the directory open as fd, for the few calls that
// take only paths (xattrs on symlinks, RemoveAll). The kernel resolves the
// /proc magic link to that exact directory; base is one component.
func fdPath(fd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
}

func (a *applier) regular(pfd int, base string, hdr *tar.Header, mode uint32, tr *tar.Reader) error {
	var fd int
	err := a.create(pfd, base, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	n, err := a.writeContents(f, tr)
	if err != nil {
		return fmt.Errorf("write contents: %w", err)
	}
	a.res.ContentBytes += n
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// After chown, which clears setuid and setgid.
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	ts := []unix.Timespec{timespec(hdr.AccessTime, hdr.ModTime), timespec(hdr.ModTime, hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return f.Close()
}

// holeBlock is the unit in which zeros are left as holes. archive/tar
// gives a sparse entry's holes as runs of zeros, which written out would
// take real disk: a 10 KiB layer could fill hundreds of MiB. A multiple of
// every filesystem block size, so a skipped block frees whole blocks, and
// big enough that a file's data goes out in few writes.
const holeBlock = 64 << 10

var zeroBlock [holeBlock]byte

// writeContents copies a file's contents from r to f, skipping (leaving a
// hole for) every holeBlock-aligned block of zeros, and returns the
// logical size. Testing a block of data costs little: the comparison
// stops at its first non-zero bytes.
func (a *applier) writeContents(f *os.File, r io.Reader) (int64, error) {
	var off, end int64 // bytes read; end of the data written
	for {
		// Fill the whole buffer, so every chunk but the last starts at a
		// multiple of len(a.buf), and so of holeBlock.
		n, rerr := 0, error(nil)
		for n < len(a.buf) && rerr == nil {
			var m int
			m, rerr = r.Read(a.buf[n:])
			n += m
		}
		chunk := a.buf[:n]
		for i := 0; i < len(chunk); {
			j := min(i+holeBlock, len(chunk))
			if bytes.Equal(chunk[i:j], zeroBlock[:j-i]) {
				i = j
				continue
			}
			// Extend the run of data to the next zero block: one write.
			for j < len(chunk) {
				k := min(j+holeBlock, len(chunk))
				if bytes.Equal(chunk[j:k], zeroBlock[:k-j]) {
					break
				}
				j = k
			}
			if _, err := f.WriteAt(chunk[i:j], off+int64(i)); err != nil {
				return off, err
			}
			end = off + int64(j)
			i = j
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	// A file that ends in a hole gets its size here.
	if off > end {
		if err := f.Truncate(off); err != nil {
			return off, err
		}
	}
	return off, nil
}

// setMeta applies ownership, mode, xattrs and (except for directories,
// whose times are set after their contents) times to base in pfd.
func (a *applier) setMeta(pfd int, base string, hdr *tar.Header, mode uint32, symlink bool) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if !symlink {
		// base was just created by us in a directory only we write to, so
		// following it is safe (fchmodat cannot refuse to follow).
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	ts := []unix.Timespec{timespec(hdr.AccessTime, hdr.ModTime), timespec(hdr.ModTime, hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

const paxXattr = "SCHILY.xattr."

func setXattrs(pfd int, base string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		// Overlay's own attributes (opaque, redirect, metacopy) would let a
		// layer steer how overlayfs merges the layers; only whiteout
		// entries may produce them.
		if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		if err := unix.Lsetxattr(fdPath(pfd, base), name, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func timespec(t, fallback time.Time) unix.Timespec {
	if t.IsZero() {
		t = fallback
	}
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func (a *applier) rootDir(hdr *tar.Header) error {
	if err := unix.Chown(a.dir, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown root: %w", err)
	}
	if err := unix.Chmod(a.dir, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod root: %w", err)
	}
	a.dirTimes = append(a.dirTimes, dirTime{"", hdr.ModTime})
	return nil
}

const opaqueMarker = ".wh..wh..opq"

// whiteout handles `.wh.NAME` and `.wh..wh..opq` in the directory dirRel.
func (a *applier) whiteout(rel, dirRel, base string) error {
	if base == opaqueMarker {
		if a.opts.Whiteouts == WhiteoutDelete {
			a.markWritten(dirRel)
			a.opaque = append(a.opaque, dirRel)
			return nil
		}
		pfd, err := a.parent(dirRel)
		if err != nil {
			return err
		}
		if err := setOpaque(pfd, "."); err != nil {
			return fmt.Errorf("mark %q opaque: %w", dirRel, err)
		}
		return nil
	}
	if strings.HasPrefix(base, ".wh..wh.") {
		// aufs metadata (hardlink directory and the like); meaningless here.
		return nil
	}
	name := strings.TrimPrefix(base, ".wh.")
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout of %q is invalid", name)
	}
	pfd, err := a.parent(dirRel)
	if err != nil {
		return err
	}
	// A whiteout hides the lower layers' NAME only; what this layer itself
	// put at NAME stays (a directory of this layer becomes opaque).
	if a.opts.Whiteouts == WhiteoutDelete {
		nameRel := path.Join(dirRel, name)
		if a.written[nameRel] {
			a.opaque = append(a.opaque, nameRel)
			return nil
		}
		return a.removeAt(pfd, name)
	}
	err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	if err != unix.EEXIST {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return setOpaque(pfd, name)
	}
	return nil
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// setOpaque marks the directory base in pfd opaque. O_PATH fds take no
// xattrs; the /proc magic link reaches the same directory.
func setOpaque(pfd int, base string) error {
	return unix.Lsetxattr(fdPath(pfd, base), "trusted.overlay.opaque", []byte("y"), 0)
}

func (a *applier) markWritten(rel string) {
	for rel != "" && !a.written[rel] {
		a.written[rel] = true
		rel, _ = splitRel(rel)
	}
}

// finish empties opaque directories (copy mode) and sets directory times,
// deepest first, now that nothing more is written into them.
func (a *applier) finish() error {
	for _, rel := range a.opaque {
		if err := a.emptyOpaque(rel); err != nil {
			return fmt.Errorf("opaque directory %q: %w", rel, err)
		}
	}
	a.dropCache()
	sort.SliceStable(a.dirTimes, func(i, j int) bool {
		return strings.Count(a.dirTimes[i].rel, "/") > strings.Count(a.dirTimes[j].rel, "/")
	})
	for _, d := range a.dirTimes {
		ts := []unix.Timespec{timespec(d.mtime, d.mtime), timespec(d.mtime, d.mtime)}
		if d.rel == "" {
			if err := unix.UtimesNano(a.dir, ts); err != nil {
				return fmt.Errorf("set times of the root: %w", err)
			}
			continue
		}
		dirRel, base := splitRel(d.rel)
		pfd, err := openInRoot(a.rootfd, dirRel, resolveHow)
		if err != nil {
			continue // replaced or removed by a later entry
		}
		err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
		if err != nil && err != unix.ENOENT {
			return fmt.Errorf("set times of %q: %w", d.rel, err)
		}
	}
	return nil
}

// emptyOpaque removes from the directory rel everything this layer did not
// write: in overlay terms, the lower layers' contents of an opaque directory.
func (a *applier) emptyOpaque(rel string) error {
	fd, err := openInRoot(a.rootfd, rel, unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveHow.Resolve,
	})
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		child := n
		if rel != "" {
			child = rel + "/" + n
		}
		if a.written[child] {
			var st unix.Stat_t
			if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if err := a.emptyOpaque(child); err != nil {
					return err
				}
			}
			continue
		}
		if err := a.removeAt(fd, n); err != nil {
			return fmt.Errorf("remove %q: %w", child, err)
		}
	}
	return nil
}
