package engine

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/klauspost/compress/zstd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/ulikunitz/xz"

	"hull/internal/snapshot"
)

// `hull cp` works on the container's root filesystem as mounted on the
// host, which the container's processes may change at any moment. Every
// path is therefore resolved as if that directory were / (a symlink
// /evil -> /etc leads to the container's /etc, one to ../../.. stays at
// its root): the starting directory with openat2(RESOLVE_IN_ROOT) through
// filepath-securejoin, and everything below it through an os.Root, which
// refuses any step outside. What is copied never reaches the host's
// files, whatever symlinks the container plants, even while copying.

// RootfsPath returns a container and the host path of its root
// filesystem, mounting it again if it is not mounted (after a reboot).
func (e *Engine) RootfsPath(ctx context.Context, ref string) (*Container, string, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	if c.State == StateRemoving {
		return nil, "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is being removed", c.Name))
	}
	if err := e.mountRootfs(ctx, c.ID, c.Config.AutoRemove, &c.Config.Spec); err != nil {
		return nil, "", err
	}
	return c, e.rootfs(c.ID), nil
}

// TreeFor maps a container path to the host directory tree it lives on
// and its path inside that tree: the source of the volume or bind mount
// that holds it (the deepest), else the root filesystem. cp then reaches
// what the container sees at that path, not what a mount hides. Mounts
// the engine does not keep on the host (tmpfs) are not reachable.
func (e *Engine) TreeFor(c *Container, p string) (root, rel string) {
	p = path.Clean("/" + p)
	root, rel, best := e.rootfs(c.ID), p, ""
	for _, m := range c.Config.Spec.Mounts {
		dest := path.Clean(m.Destination)
		if (m.Type != "volume" && m.Type != "bind") || len(dest) <= len(best) || !filepath.IsAbs(m.Source) {
			continue
		}
		if p == dest || strings.HasPrefix(p, dest+"/") {
			root, rel, best = m.Source, "/"+strings.TrimPrefix(strings.TrimPrefix(p, dest), "/"), dest
		}
	}
	return root, rel
}

// OpenInRoot opens the directory p of the tree at root, resolving p's
// symlinks and ".." as if root were /.
func OpenInRoot(root, p string) (*os.Root, error) {
	h, err := pathrs.OpenInRoot(root, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	r, err := os.OpenRoot(fmt.Sprintf("/proc/self/fd/%d", h.Fd()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return r, nil
}

// StatInRoot is os.Stat of p in the tree at root, resolved as if root
// were / (symlinks followed, inside).
func StatInRoot(root, p string) (fs.FileInfo, error) {
	h, err := pathrs.OpenInRoot(root, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.Stat()
}

// StatInRootNoFollow is os.Lstat of p in the tree at root: p's directory
// is resolved as if root were /, its last component is not followed.
func StatInRootNoFollow(root, p string) (fs.FileInfo, error) {
	dir, err := OpenInRoot(root, path.Dir(path.Clean("/"+p)))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return dir.Lstat(path.Base(path.Clean("/" + p)))
}

// WriteTar archives name (a path in root; "." for root itself) as a tar
// stream whose top entry is called as (see snapshot.WriteTreeAs).
// Symlinks are archived as links, never followed.
func WriteTar(w io.Writer, root *os.Root, name, as string) error {
	return snapshot.WriteTreeAs(context.Background(), w, root, name, as)
}

// ExtractOptions tune ExtractTar.
type ExtractOptions struct {
	// Rename maps the archive's top-level name (its first path
	// component) to another; "" drops the top directory itself and puts
	// its contents in place.
	Rename     bool
	From, To   string
	KeepOwners bool // chown to the archive's uid/gid (cp -a)
	// UIDMap and GIDMap, when set, are the mappings of the user namespace
	// the tree is seen from (TreeIDMaps): what is extracted is owned by
	// the host ids of its owners there (root's without KeepOwners).
	UIDMap, GIDMap []specs.LinuxIDMapping
}

// ExtractTar unpacks a tar stream, plain or compressed with gzip, bzip2,
// xz or zstd (as docker's cp accepts), into root. Entries cannot leave
// root: ".." and absolute names are refused, and symlinks (planted or from
// the archive) are never followed out of it.
func ExtractTar(root *os.Root, r io.Reader, o ExtractOptions) error {
	plain, done, err := uncompressed(r)
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(plain)
	type dirTimes struct {
		name string
		hdr  *tar.Header
	}
	var dirs []dirTimes
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name, ok := extractName(hdr.Name, o)
		if !ok {
			continue
		}
		if name == "" || name == "." {
			if hdr.Typeflag == tar.TypeDir {
				dirs = append(dirs, dirTimes{".", hdr})
				continue
			}
			return fmt.Errorf("archive entry %q: a file cannot replace the destination directory", hdr.Name)
		}
		if err := extractEntry(root, tr, hdr, name, o); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTimes{name, hdr})
		}
	}
	// Directories last, children first: writing into them changed their
	// times, and a read-only mode would have blocked the writes.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if d.name != "." {
			root.Chmod(d.name, fs.FileMode(d.hdr.Mode)&fs.ModePerm|modeBits(d.hdr.Mode))
		}
		root.Chtimes(d.name, d.hdr.AccessTime, d.hdr.ModTime)
	}
	return nil
}

// extractName cleans an archive name and applies the rename; false skips it.
func extractName(name string, o ExtractOptions) (string, bool) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if !o.Rename {
		return name, true
	}
	from := strings.Trim(path.Clean(o.From), "/")
	switch {
	case from == "." || from == "":
		return path.Join(o.To, name), true
	case name == from:
		return o.To, true
	case strings.HasPrefix(name, from+"/"):
		return path.Join(o.To, strings.TrimPrefix(name, from+"/")), true
	}
	return "", false
}

func modeBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

func extractEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string, o ExtractOptions) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	existing, err := root.Lstat(name)
	if err == nil && !(existing.IsDir() && hdr.Typeflag == tar.TypeDir) {
		if existing.IsDir() {
			return fmt.Errorf("cannot overwrite directory %q with non-directory", name)
		}
		if err := root.Remove(name); err != nil {
			return err
		}
	}
	mode := fs.FileMode(hdr.Mode)&fs.ModePerm | modeBits(hdr.Mode)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA:
		// O_EXCL: a symlink planted since the Lstat is not followed.
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := root.Chmod(name, mode); err != nil {
			return err
		}
	case tar.TypeSymlink:
		return root.Symlink(hdr.Linkname, name) // owner and times of links are left as made
	case tar.TypeLink:
		target, ok := extractName(hdr.Linkname, o)
		if !ok {
			return fmt.Errorf("hard link to %q outside the copied tree", hdr.Linkname)
		}
		return root.Link(target, name)
	default:
		return nil // devices and fifos are not copied
	}
	if o.KeepOwners || len(o.UIDMap) > 0 {
		uid, gid := hdr.Uid, hdr.Gid
		if len(o.UIDMap) > 0 {
			if !o.KeepOwners {
				uid, gid = 0, 0
			}
			uid, gid = mapOwner(o.UIDMap, uid), mapOwner(o.GIDMap, gid)
		}
		if err := root.Lchown(name, uid, gid); err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		root.Chtimes(name, hdr.AccessTime, hdr.ModTime)
	}
	return nil
}

// SplitContainerPath reports whether arg is CONTAINER:PATH (docker's
// rule: a colon before any slash; a local path with a colon starts with
// / or ./).
func SplitContainerPath(arg string) (container, p string, ok bool) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg, false
	}
	i := strings.IndexByte(arg, ':')
	if i <= 0 || strings.Contains(arg[:i], "/") {
		return "", arg, false
	}
	return arg[:i], arg[i+1:], true
}

// uncompressed returns r decompressed by what its first bytes say it is
// compressed with, or r itself; done releases the decompressor.
func uncompressed(r io.Reader) (_ io.Reader, done func(), err error) {
	plain, _, done, err := decompressed(r)
	return plain, done, err
}

// decompressed is uncompressed that also names the compression found:
// "gzip", "bzip2", "xz", "zstd" or "" for none.
func decompressed(r io.Reader) (_ io.Reader, kind string, done func(), err error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("read archive: gzip: %w", err)
		}
		return zr, "gzip", func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), "bzip2", func() {}, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("read archive: xz: %w", err)
		}
		return xr, "xz", func() {}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", nil, fmt.Errorf("read archive: zstd: %w", err)
		}
		return zr, "zstd", zr.Close, nil
	}
	return br, "", func() {}, nil
}
