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
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// What an active snapshot changed on its parent, for `hull diff` (the
// changes, docker's A/C/D) and `hull commit` (the changes as an OCI
// layer). With the overlay driver the active snapshot's own directory
// is the overlay upper dir: exactly what changed, deletions as
// whiteouts (character devices 0/0) and directories recreated empty as
// opaque (trusted.overlay.opaque=y). With the copy driver it is a full
// tree, compared with the parent's.

// ChangeKind is docker's letter for a change.
type ChangeKind byte

const (
	ChangeAdd    ChangeKind = 'A'
	ChangeModify ChangeKind = 'C'
	ChangeDelete ChangeKind = 'D'
)

func (k ChangeKind) String() string { return string(k) }

// Change is one path an active snapshot added, changed or deleted.
type Change struct {
	Kind ChangeKind
	Path string // absolute, in the container
}

// Changes lists what the active snapshot key changed on its parent as
// docker's diff does: whiteouts are deletions; a directory is listed
// as changed when what it holds had additions or deletions, or when its
// own attributes changed; an opaque directory that was in the parent is
// changed and what it hid is deleted. Sorted in docker's order: depth
// first, the names of a directory in byte order.
//
// mountpoints are paths the runtime may have created only to mount
// something there (docker keeps them in a layer of its own, which diff
// and commit leave out): each is left out while it is an empty file or
// directory the parent did not have, and the modification time of its
// directory is not compared.
func (s *Snapshotter) Changes(ctx context.Context, key string, mountpoints []string) ([]Change, error) {
	info, lowers, err := s.active(ctx, key)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(s.fsDir(info.ID))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var changes []Change
	if s.opts.Driver == Copy {
		old := ""
		if len(lowers) > 0 {
			old = lowers[0]
		}
		changes, err = compareTrees(ctx, old, root, newPlaceholders(root, mountpoints))
	} else {
		changes, err = overlayChanges(ctx, lowerTree(lowers), root, newPlaceholders(root, mountpoints))
	}
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", key, err)
	}
	sort.Slice(changes, func(i, j int) bool { return walkOrder(changes[i].Path) < walkOrder(changes[j].Path) })
	return changes, nil
}

// walkOrder makes paths compare in the order of a depth-first walk.
func walkOrder(p string) string { return strings.ReplaceAll(p, "/", "\x00") }

// WriteDiff writes what the active snapshot key changed on its parent
// as an uncompressed OCI layer: additions and changes as entries,
// deletions as `.wh.NAME`, directories recreated empty with
// `.wh..wh..opq`. It returns the number of entries (0: nothing changed).
// mountpoints are left out as Changes leaves them out.
func (s *Snapshotter) WriteDiff(ctx context.Context, key string, w io.Writer, mountpoints []string) (int, error) {
	info, lowers, err := s.active(ctx, key)
	if err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(s.fsDir(info.ID))
	if err != nil {
		return 0, err
	}
	defer root.Close()
	a := newTarAppender(w, root)
	n := 0
	whiteout := func(rel string) error {
		n++
		return a.tw.WriteHeader(whiteoutHeader(path.Join(path.Dir(rel), ".wh."+path.Base(rel))))
	}
	if s.opts.Driver == Copy {
		changes, err := s.Changes(ctx, key, mountpoints)
		if err != nil {
			return 0, err
		}
		for _, c := range changes {
			rel := strings.TrimPrefix(c.Path, "/")
			if c.Kind == ChangeDelete {
				err = whiteout(rel)
			} else if fi, lerr := root.Lstat(rel); lerr != nil {
				err = lerr
			} else {
				n++
				err = a.add(rel, fi)
			}
			if err != nil {
				return 0, fmt.Errorf("diff of %s: %w", key, err)
			}
		}
	} else {
		a.overlayUpper = true
		lower := lowerTree(lowers)
		skip := newPlaceholders(root, mountpoints)
		err = walkRoot(ctx, root, ".", func(rel string, fi fs.FileInfo) error {
			if skip.is(rel, fi, lower) {
				return fs.SkipDir
			}
			if isWhiteoutInfo(fi) {
				return whiteout(rel)
			}
			n++
			opaque, err := a.addEntry(rel, fi)
			if err == nil && opaque {
				err = a.tw.WriteHeader(whiteoutHeader(path.Join(rel, opaqueMarker)))
			}
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("diff of %s: %w", key, err)
		}
	}
	return n, a.tw.Close()
}

// active returns the active snapshot key and the directories of its
// parent chain, top first.
func (s *Snapshotter) active(ctx context.Context, key string) (Info, []string, error) {
	info, err := s.get(ctx, key)
	if err != nil {
		return info, nil, err
	}
	if info.Kind != KindActive {
		return info, nil, fmt.Errorf("snapshot %s is not a writable layer", key)
	}
	if info.Parent == "" {
		return info, nil, nil
	}
	lowers, err := s.lowerDirs(ctx, info.Parent)
	return info, lowers, err
}

func isWhiteoutInfo(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

// overlayChanges is docker's walk of an overlay upper dir.
func overlayChanges(ctx context.Context, lower lowerTree, upper *os.Root, skip placeholders) ([]Change, error) {
	var changes []Change
	listed := map[string]bool{} // directories already in changes
	err := walkRoot(ctx, upper, ".", func(rel string, fi fs.FileInfo) error {
		if skip.is(rel, fi, lower) {
			return fs.SkipDir
		}
		p := "/" + rel
		kind := ChangeAdd
		var hidden []string // what an opaque directory hides
		if isWhiteoutInfo(fi) {
			kind = ChangeDelete
		} else if lfi, ok := lower.lstat(rel); ok {
			kind = ChangeModify
			opaque := false
			if fi.IsDir() {
				opaque = isOpaqueDir(filepath.Join(upper.Name(), rel))
			}
			switch {
			case opaque && lfi.IsDir():
				for _, n := range lower.names(rel) {
					if _, err := upper.Lstat(path.Join(rel, n)); errors.Is(err, fs.ErrNotExist) {
						hidden = append(hidden, path.Join(p, n))
					}
				}
			case fi.IsDir() && lfi.IsDir() && fi.Mode() == lfi.Mode() && fi.Size() == lfi.Size() && (sameTime(fi, lfi) || skip.parents[p]):
				return nil // only the parent of what changed; listed if that is an addition or deletion
			}
		}
		if fi.IsDir() {
			listed[p] = true
		}
		if parent := path.Dir(p); kind != ChangeModify && parent != "/" && !listed[parent] {
			changes = append(changes, Change{ChangeModify, parent})
			listed[parent] = true
		}
		changes = append(changes, Change{kind, p})
		for _, h := range hidden {
			changes = append(changes, Change{ChangeDelete, h})
		}
		return nil
	})
	return changes, err
}

// sameTime compares modification times as docker does: tar keeps whole
// seconds, so a time without nanoseconds matches any in its second.
func sameTime(a, b fs.FileInfo) bool {
	ta, tb := a.ModTime(), b.ModTime()
	return ta.Equal(tb) || ta.Unix() == tb.Unix() && (ta.Nanosecond() == 0 || tb.Nanosecond() == 0)
}

// lowerTree is an overlay's lower layers (top first) as the merged
// mount would show them, read without mounting them: a whiteout or a
// file hides the path below it in lower layers, an opaque directory
// hides the lower layers' contents of it.
type lowerTree []string

// reach says how layer shows rel's parent directories: present (all
// are directories there), hidden (one is a whiteout or a file, which
// hides rel in this layer and below), last (one is opaque: no layer
// below shows rel).
func (l lowerTree) reach(layer, rel string) (present, hidden, last bool) {
	p := layer
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return false, false, last
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, true, last
		}
		if isOpaqueDir(p) {
			last = true
		}
	}
	return true, false, last
}

// lstat is the entry at rel in the merged lower layers.
func (l lowerTree) lstat(rel string) (fs.FileInfo, bool) {
	for _, layer := range l {
		present, hidden, last := l.reach(layer, rel)
		if hidden {
			return nil, false
		}
		if present {
			if fi, err := os.Lstat(filepath.Join(layer, rel)); err == nil {
				if isWhiteoutInfo(fi) {
					return nil, false
				}
				return fi, true
			}
		}
		if last {
			return nil, false
		}
	}
	return nil, false
}

// names lists the directory rel of the merged lower layers.
func (l lowerTree) names(rel string) []string {
	seen := map[string]bool{}
	var out []string
	for _, layer := range l {
		present, hidden, last := l.reach(layer, rel)
		if hidden {
			break
		}
		dir := filepath.Join(layer, rel)
		if fi, err := os.Lstat(dir); present && err == nil {
			if !fi.IsDir() {
				break
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if seen[e.Name()] {
					continue
				}
				seen[e.Name()] = true
				if fi, err := e.Info(); err == nil && isWhiteoutInfo(fi) {
					continue
				}
				out = append(out, e.Name())
			}
			last = last || isOpaqueDir(dir)
		}
		if last {
			break
		}
	}
	sort.Strings(out)
	return out
}

func isOpaqueDir(p string) bool {
	v, _ := lgetxattr(p, "trusted.overlay.opaque")
	return string(v) == "y"
}

func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// compareTrees is docker's comparison of two whole trees (its vfs
// driver's): newRoot against the tree at old ("" for none).
func compareTrees(ctx context.Context, old string, newRoot *os.Root, skip placeholders) ([]Change, error) {
	var changes []Change
	listed := map[string]bool{}
	var dir func(rel string, oldIsDir bool) error
	addAll := func(rel string) error {
		return walkRoot(ctx, newRoot, rel, func(p string, _ fs.FileInfo) error {
			changes = append(changes, Change{ChangeAdd, "/" + p})
			return nil
		})
	}
	dir = func(rel string, oldIsDir bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		before := len(changes)
		newNames, err := readNames(newRoot, rel)
		if err != nil {
			return err
		}
		names := map[string]bool{}
		for _, n := range newNames {
			names[n] = true
		}
		if oldIsDir && old != "" {
			ents, _ := os.ReadDir(filepath.Join(old, rel))
			for _, e := range ents {
				names[e.Name()] = true
			}
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		for _, n := range sorted {
			p := path.Join(rel, n)
			var ofi fs.FileInfo
			if oldIsDir && old != "" {
				ofi, _ = os.Lstat(filepath.Join(old, p))
			}
			nfi, err := newRoot.Lstat(p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			switch {
			case nfi == nil && ofi == nil:
			case nfi == nil:
				changes = append(changes, Change{ChangeDelete, "/" + p})
			case ofi == nil:
				if skip.is(p, nfi, nil) {
					continue
				}
				changes = append(changes, Change{ChangeAdd, "/" + p})
				if nfi.IsDir() {
					if err := addAll(p); err != nil {
						return err
					}
				}
			default:
				if differs(old, newRoot, p, ofi, nfi) {
					changes = append(changes, Change{ChangeModify, "/" + p})
					listed["/"+p] = true
				}
				if nfi.IsDir() {
					if err := dir(p, ofi.IsDir()); err != nil {
						return err
					}
				}
			}
		}
		if len(changes) > before && rel != "." && !listed["/"+rel] {
			changes = append(changes, Change{ChangeModify, "/" + rel})
			listed["/"+rel] = true
		}
		return nil
	}
	return changes, dir(".", true)
}

// differs is docker's test of a changed entry: type, mode, owner or
// device, or, but for directories, size and modification time; and a
// symlink's target.
func differs(old string, newRoot *os.Root, rel string, ofi, nfi fs.FileInfo) bool {
	os1, ok1 := ofi.Sys().(*syscall.Stat_t)
	ns, ok2 := nfi.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || os1.Mode != ns.Mode || os1.Uid != ns.Uid || os1.Gid != ns.Gid || os1.Rdev != ns.Rdev {
		return true
	}
	if !nfi.IsDir() && (ofi.Size() != nfi.Size() || !sameTime(ofi, nfi)) {
		return true
	}
	if nfi.Mode()&fs.ModeSymlink != 0 {
		a, _ := os.Readlink(filepath.Join(old, rel))
		b, _ := newRoot.Readlink(rel)
		return a != b
	}
	return false
}

// whiteoutHeader is the tar entry of a whiteout file called name.
func whiteoutHeader(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, ModTime: time.Unix(0, 0)}
}

// placeholders are the mountpoints Changes and WriteDiff leave out.
type placeholders struct {
	root    *os.Root
	paths   map[string]bool // "/etc/hosts"
	parents map[string]bool // "/etc"
}

func newPlaceholders(root *os.Root, mountpoints []string) placeholders {
	p := placeholders{root: root, paths: map[string]bool{}, parents: map[string]bool{}}
	for _, m := range mountpoints {
		p.paths[m] = true
		p.parents[path.Dir(m)] = true
	}
	return p
}

// is reports whether rel is a mountpoint the runtime made: listed,
// empty, and not in the lower layers (nil: already known not to be).
func (p placeholders) is(rel string, fi fs.FileInfo, lower lowerTree) bool {
	if !p.paths["/"+rel] {
		return false
	}
	switch {
	case fi.Mode().IsRegular() && fi.Size() == 0:
	case fi.IsDir():
		if names, err := readNames(p.root, rel); err != nil || len(names) > 0 {
			return false
		}
	default:
		return false
	}
	if lower != nil {
		if _, ok := lower.lstat(rel); ok {
			return false
		}
	}
	return true
}
