package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The layered fixture stacks three layers on the busybox layer. Each one
// exercises a rule of the OCI layer format that an unpacker or an overlay
// snapshotter must get right:
//
// Layer 1 adds ordinary content: files, a hardlink, relative, absolute and
// dangling symlinks, a setuid program, a file with the xattr user.x, a fifo,
// a file owned by app (1000:1000), and directories that later layers delete
// or replace.
//
// Layer 2 changes it: whiteouts (.wh.NAME) delete a file, a whole directory,
// a symlink and a busybox applet from the base layer; an opaque marker
// (.wh..wh..opq) empties /opaque before adding new.txt; a regular file
// replaces a directory and a directory replaces a regular file; keep.txt is
// overwritten; a second hardlink pair lives entirely in this layer.
//
// Layer 3 brings back a deleted file under its old name and recreates a
// directory under the opaque one (whose old content must stay hidden).
//
// LayeredMerged lists what the merged root filesystem must and must not
// contain; CheckTree compares a directory against it.
func layeredLayers() [][]entry {
	owned := file("data/owned.txt", 0o640, "owned by app\n")
	owned.uid, owned.gid = 1000, 1000
	withXattr := file("data/xattr.txt", 0o644, "xattr\n")
	withXattr.xattrs = map[string]string{"user.x": "hull"}

	layer1 := []entry{
		dir("data", 0o755),
		file("data/keep.txt", 0o644, "keep v1\n"),
		file("data/remove-me.txt", 0o644, "remove me\n"),
		dir("data/dir-to-remove", 0o755),
		file("data/dir-to-remove/a.txt", 0o644, "a\n"),
		dir("data/dir-becomes-file", 0o755),
		file("data/dir-becomes-file/child.txt", 0o644, "child of a dir\n"),
		file("data/file-becomes-dir", 0o644, "a file\n"),
		withXattr,
		fifo("data/fifo", 0o644),
		owned,
		dir("opaque", 0o755),
		file("opaque/old1.txt", 0o644, "old1\n"),
		dir("opaque/sub", 0o755),
		file("opaque/sub/old2.txt", 0o644, "old2\n"),
		dir("links", 0o755),
		file("links/target.txt", 0o644, "target\n"),
		hardlink("links/hard.txt", "links/target.txt"),
		symlink("links/rel", "target.txt"),
		symlink("links/abs", "/links/target.txt"),
		symlink("links/up", "../data/keep.txt"),
		symlink("links/dangling", "/nonexistent"),
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
		file("usr/local/bin/suid", 0o4755, "#!/bin/sh\nid\n"),
	}
	layer2 := []entry{
		dir("bin", 0o755),
		whiteout("bin", "wc"),
		dir("data", 0o755),
		whiteout("data", "remove-me.txt"),
		whiteout("data", "dir-to-remove"),
		file("data/keep.txt", 0o644, "keep v2\n"),
		file("data/dir-becomes-file", 0o644, "now a file\n"),
		dir("data/file-becomes-dir", 0o755),
		file("data/file-becomes-dir/child.txt", 0o644, "child\n"),
		dir("opaque", 0o755),
		opaque("opaque"),
		file("opaque/new.txt", 0o644, "new\n"),
		dir("links", 0o755),
		whiteout("links", "dangling"),
		file("links/fresh.txt", 0o644, "fresh\n"),
		hardlink("links/hard2.txt", "links/fresh.txt"),
	}
	layer3 := []entry{
		dir("data", 0o755),
		file("data/remove-me.txt", 0o644, "back again\n"),
		file("data/late.txt", 0o644, "late\n"),
		hardlink("data/late-link", "data/late.txt"),
		dir("opaque", 0o755),
		dir("opaque/sub", 0o755),
		file("opaque/sub/again.txt", 0o644, "again\n"),
	}
	return [][]entry{layer1, layer2, layer3}
}

// Kind is the type of a path in an expected tree.
type Kind string

const (
	Absent  Kind = "absent"
	Regular Kind = "file"
	Dir     Kind = "dir"
	Symlink Kind = "symlink"
	Fifo    Kind = "fifo"
)

// Expect is one path of an expected root filesystem. Zero fields are not
// checked.
type Expect struct {
	Path    string // absolute inside the rootfs
	Kind    Kind
	Content string      // Regular: exact content
	Target  string      // Symlink: the link text, not resolved
	Mode    fs.FileMode // permission bits with fs.ModeSetuid/Setgid/Sticky
	Owner   string      // "uid:gid"
	// SameFileAs names a path that must be the same inode (a hardlink).
	SameFileAs string
	// Xattrs must be present with these values (user.* needs a filesystem
	// that supports user xattrs).
	Xattrs map[string]string
	// Children, for a Dir, is its exact sorted listing.
	Children []string
	// Why says which layer rule the path exercises.
	Why string
}

// LayeredMerged is the merged view of the layered fixture (busybox layer plus
// the three layers described at layeredLayers).
var LayeredMerged = []Expect{
	{Path: "/bin/busybox", Kind: Regular, Mode: 0o755, Why: "base layer content shows through"},
	{Path: "/bin/sh", Kind: Symlink, Target: "busybox", Why: "base layer symlink shows through"},
	{Path: "/bin/wc", Kind: Absent, Why: "layer 2 whiteout of a base-layer file"},
	{Path: "/bin/.wh.wc", Kind: Absent, Why: "whiteout markers never appear"},

	{Path: "/data", Kind: Dir, Children: []string{"dir-becomes-file", "fifo", "file-becomes-dir", "keep.txt", "late-link", "late.txt", "owned.txt", "remove-me.txt", "xattr.txt"}, Why: "merged listing across layers 1-3"},
	{Path: "/data/keep.txt", Kind: Regular, Content: "keep v2\n", Why: "layer 2 overwrites layer 1"},
	{Path: "/data/remove-me.txt", Kind: Regular, Content: "back again\n", Why: "deleted in layer 2, recreated in layer 3"},
	{Path: "/data/.wh.remove-me.txt", Kind: Absent, Why: "whiteout markers never appear"},
	{Path: "/data/dir-to-remove", Kind: Absent, Why: "layer 2 whiteout of a directory"},
	{Path: "/data/dir-to-remove/a.txt", Kind: Absent, Why: "content of a whited-out directory"},
	{Path: "/data/dir-becomes-file", Kind: Regular, Content: "now a file\n", Why: "layer 2 file replaces a layer 1 directory"},
	{Path: "/data/dir-becomes-file/child.txt", Kind: Absent, Why: "content of a replaced directory"},
	{Path: "/data/file-becomes-dir", Kind: Dir, Children: []string{"child.txt"}, Why: "layer 2 directory replaces a layer 1 file"},
	{Path: "/data/file-becomes-dir/child.txt", Kind: Regular, Content: "child\n"},
	{Path: "/data/xattr.txt", Kind: Regular, Content: "xattr\n", Xattrs: map[string]string{"user.x": "hull"}, Why: "PAX SCHILY.xattr record"},
	{Path: "/data/fifo", Kind: Fifo, Mode: 0o644, Why: "fifo entry"},
	{Path: "/data/owned.txt", Kind: Regular, Content: "owned by app\n", Mode: 0o640, Owner: "1000:1000", Why: "tar uid/gid"},
	{Path: "/data/late.txt", Kind: Regular, Content: "late\n"},
	{Path: "/data/late-link", Kind: Regular, Content: "late\n", SameFileAs: "/data/late.txt", Why: "hardlink in layer 3"},

	{Path: "/opaque", Kind: Dir, Children: []string{"new.txt", "sub"}, Why: "layer 2 opaque marker hides layer 1 content"},
	{Path: "/opaque/.wh..wh..opq", Kind: Absent, Why: "opaque markers never appear"},
	{Path: "/opaque/old1.txt", Kind: Absent, Why: "hidden by the opaque marker"},
	{Path: "/opaque/new.txt", Kind: Regular, Content: "new\n"},
	{Path: "/opaque/sub", Kind: Dir, Children: []string{"again.txt"}, Why: "recreated in layer 3 under the opaque dir; layer 1 content stays hidden"},
	{Path: "/opaque/sub/old2.txt", Kind: Absent, Why: "hidden by the opaque marker even after sub is recreated"},
	{Path: "/opaque/sub/again.txt", Kind: Regular, Content: "again\n"},

	{Path: "/links", Kind: Dir, Children: []string{"abs", "fresh.txt", "hard.txt", "hard2.txt", "rel", "target.txt", "up"}},
	{Path: "/links/target.txt", Kind: Regular, Content: "target\n"},
	{Path: "/links/hard.txt", Kind: Regular, Content: "target\n", SameFileAs: "/links/target.txt", Why: "hardlink in layer 1"},
	{Path: "/links/rel", Kind: Symlink, Target: "target.txt", Why: "relative symlink kept verbatim"},
	{Path: "/links/abs", Kind: Symlink, Target: "/links/target.txt", Why: "absolute symlink kept verbatim (not resolved on the host)"},
	{Path: "/links/up", Kind: Symlink, Target: "../data/keep.txt", Why: "relative symlink with .."},
	{Path: "/links/dangling", Kind: Absent, Why: "layer 2 whiteout of a symlink"},
	{Path: "/links/fresh.txt", Kind: Regular, Content: "fresh\n"},
	{Path: "/links/hard2.txt", Kind: Regular, Content: "fresh\n", SameFileAs: "/links/fresh.txt", Why: "hardlink in layer 2"},

	{Path: "/usr/local/bin/suid", Kind: Regular, Content: "#!/bin/sh\nid\n", Mode: 0o755 | fs.ModeSetuid, Owner: "0:0", Why: "setuid bit survives unpacking"},
}

// CheckTree compares the tree at root with want and returns every mismatch,
// joined, or nil.
func CheckTree(root string, want []Expect) error {
	var errs []error
	for _, w := range want {
		if err := checkPath(root, w); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.Path, err))
		}
	}
	return errors.Join(errs...)
}

func checkPath(root string, w Expect) error {
	p := filepath.Join(root, w.Path)
	fi, err := os.Lstat(p)
	if w.Kind == Absent {
		if err == nil {
			return fmt.Errorf("exists (%s), want absent (%s)", fi.Mode(), w.Why)
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("want %s (%s): %w", w.Kind, w.Why, err)
	}
	var got Kind
	switch {
	case fi.Mode().IsRegular():
		got = Regular
	case fi.IsDir():
		got = Dir
	case fi.Mode()&fs.ModeSymlink != 0:
		got = Symlink
	case fi.Mode()&fs.ModeNamedPipe != 0:
		got = Fifo
	default:
		got = Kind(fi.Mode().Type().String())
	}
	if got != w.Kind {
		return fmt.Errorf("is %s, want %s (%s)", got, w.Kind, w.Why)
	}
	if w.Content != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(b) != w.Content {
			return fmt.Errorf("content %q, want %q (%s)", b, w.Content, w.Why)
		}
	}
	if w.Target != "" {
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if t != w.Target {
			return fmt.Errorf("link target %q, want %q (%s)", t, w.Target, w.Why)
		}
	}
	if w.Mode != 0 {
		const bits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
		if fi.Mode()&bits != w.Mode {
			return fmt.Errorf("mode %s, want %s (%s)", fi.Mode()&bits, w.Mode, w.Why)
		}
	}
	if w.Owner != "" {
		st := fi.Sys().(*syscall.Stat_t)
		if got := strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid)); got != w.Owner {
			return fmt.Errorf("owner %s, want %s (%s)", got, w.Owner, w.Why)
		}
	}
	if w.SameFileAs != "" {
		other, err := os.Lstat(filepath.Join(root, w.SameFileAs))
		if err != nil {
			return err
		}
		if !os.SameFile(fi, other) {
			return fmt.Errorf("not the same inode as %s (%s)", w.SameFileAs, w.Why)
		}
	}
	for name, want := range w.Xattrs {
		buf := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			return fmt.Errorf("xattr %s: %w (%s)", name, err, w.Why)
		}
		if string(buf[:n]) != want {
			return fmt.Errorf("xattr %s = %q, want %q (%s)", name, buf[:n], want, w.Why)
		}
	}
	if w.Children != nil {
		des, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		slices.Sort(names)
		if !slices.Equal(names, w.Children) {
			return fmt.Errorf("lists %q, want %q (%s)", names, w.Children, w.Why)
		}
	}
	return nil
}
