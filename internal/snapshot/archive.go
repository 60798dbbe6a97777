package snapshot

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Archives of trees that a container can change while they are read
// (its merged root for `hull export`, its writable layer for `hull
// commit`): every path is opened through an os.Root, so a symlink the
// container plants mid-walk is never followed out of the tree, and
// files are opened O_NOFOLLOW.

// WriteTree writes the tree at dir as a tar stream (`hull export`):
// every entry with its owner, mode, times, hardlinks, devices and the
// extended attributes images carry (security.capability, user.*).
// Sockets have no tar form and are left out.
func WriteTree(ctx context.Context, dir string, w io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	a := newTarAppender(w, root)
	if err := walkRoot(ctx, root, ".", a.add); err != nil {
		return err
	}
	return a.tw.Close()
}

// WriteTreeAs writes name (a path in root, "." for root itself) and
// what it holds as WriteTree does, its top entry called as (`hull cp`
// out of a container). Symlinks are archived as links, never followed.
func WriteTreeAs(ctx context.Context, w io.Writer, root *os.Root, name, as string) error {
	name = path.Clean(name)
	fi, err := root.Lstat(name)
	if err != nil {
		return err
	}
	a := newTarAppender(w, root)
	a.rename = func(rel string) string {
		switch {
		case rel == name:
			return as
		case name == ".":
			return path.Join(as, rel)
		}
		return path.Join(as, strings.TrimPrefix(rel, name+"/"))
	}
	if err := a.add(name, fi); err != nil {
		return err
	}
	if fi.IsDir() {
		if err := walkRoot(ctx, root, name, a.add); err != nil {
			return err
		}
	}
	return a.tw.Close()
}

// walkRoot calls fn for every entry below rel in root, depth first, the
// names of each directory in byte order (docker's order). fn returning
// fs.SkipDir for a directory skips what it holds. Entries that vanish
// while walked are skipped.
func walkRoot(ctx context.Context, root *os.Root, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := readNames(root, rel)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(rel, n)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = fn(p, fi)
		if errors.Is(err, fs.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkRoot(ctx, root, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// readNames lists the directory rel of root, sorted.
func readNames(root *os.Root, rel string) ([]string, error) {
	d, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("read directory /%s: %w", rel, err)
	}
	sort.Strings(names)
	return names, nil
}

// tarAppender writes entries of one tree, hardlinks as links to the
// first name written.
type tarAppender struct {
	tw    *tar.Writer
	root  *os.Root
	links map[[2]uint64]string
	// overlayUpper: the tree is an overlay upper dir, whose overlay
	// attributes are refused where they change what a file holds
	// (redirect, metacopy) and otherwise left out.
	overlayUpper bool
	// rename, if set, names the entry of each path in the archive.
	rename func(rel string) string
}

func newTarAppender(w io.Writer, root *os.Root) *tarAppender {
	return &tarAppender{tw: tar.NewWriter(w), root: root, links: map[[2]uint64]string{}}
}

// add writes the entry rel (described by fi).
func (a *tarAppender) add(rel string, fi fs.FileInfo) error {
	_, err := a.addEntry(rel, fi)
	return err
}

// addEntry writes the entry rel and returns its overlay attributes (for
// an overlay upper dir's directories: whether it is opaque).
func (a *tarAppender) addEntry(rel string, fi fs.FileInfo) (opaque bool, err error) {
	if fi.Mode()&fs.ModeSocket != 0 {
		return false, nil
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = a.root.Readlink(rel); err != nil {
			return false, err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return false, fmt.Errorf("/%s: %w", rel, err)
	}
	hdr.Name = rel
	if a.rename != nil {
		hdr.Name = a.rename(rel)
	}
	if fi.IsDir() {
		hdr.Name += "/"
	}
	// Host user names mean nothing in an image; times beyond mtime make
	// every layer differ for nothing.
	hdr.Uname, hdr.Gname = "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := a.links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			if a.rename != nil {
				hdr.Linkname = a.rename(first)
			}
			return false, a.tw.WriteHeader(hdr)
		}
		a.links[key] = rel
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return false, a.tw.WriteHeader(hdr)
	}
	var f *os.File
	if fi.IsDir() {
		f, err = a.root.Open(rel)
	} else {
		f, err = a.root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if opaque, err = a.xattrs(f, rel, hdr); err != nil {
		return false, err
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return false, err
	}
	if fi.Mode().IsRegular() {
		if n, err := io.CopyN(a.tw, f, hdr.Size); err != nil {
			return false, fmt.Errorf("/%s: read %d of %d bytes (did it change while read?): %w", rel, n, hdr.Size, err)
		}
	}
	return opaque, nil
}

// xattrs puts f's image attributes into hdr and reports an overlay
// upper dir's opaque mark.
func (a *tarAppender) xattrs(f *os.File, rel string, hdr *tar.Header) (opaque bool, err error) {
	fd := int(f.Fd())
	names, err := listXattrs(fd)
	if err != nil {
		return false, fmt.Errorf("/%s: list attributes: %w", rel, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "user.overlay.") {
			switch strings.TrimPrefix(strings.TrimPrefix(n, "trusted."), "user.") {
			case "overlay.opaque":
				v, _ := getXattr(fd, n)
				opaque = string(v) == "y"
			case "overlay.redirect", "overlay.metacopy":
				if a.overlayUpper {
					return false, fmt.Errorf("/%s: overlay %s: its content is in a lower layer, which a layer cannot express (mount overlay with redirect_dir=off,metacopy=off)", rel, n)
				}
			}
			continue
		}
		if n != "security.capability" && !strings.HasPrefix(n, "user.") {
			continue
		}
		v, err := getXattr(fd, n)
		if err != nil {
			return false, fmt.Errorf("/%s: attribute %s: %w", rel, n, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+n] = string(v)
		hdr.Format = tar.FormatPAX
	}
	return opaque, nil
}

func listXattrs(fd int) ([]string, error) {
	size, err := unix.Flistxattr(fd, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Flistxattr(fd, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	return names, nil
}

func getXattr(fd int, name string) ([]byte, error) {
	size, err := unix.Fgetxattr(fd, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Fgetxattr(fd, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
