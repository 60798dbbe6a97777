// Package perm keeps what hull stores out of other local users' reach.
//
// Everything under hull's roots is container content (volumes, layers,
// writable layers, logs, image mounts) or state that holds secrets (the
// database keeps every container's environment). A local user who can reach
// a setuid binary a container made, or a device node an image carries, has
// root (the CVE-2021-41091 class), and one who can read the database reads
// every -e SECRET=... . So the two roots are 0711 (traversable, not
// listable: a future rootless or user-namespaced container may need to pass
// through) and every directory or file directly in them is 0700 or 0600:
// nothing beneath is reachable by anyone but root.
package perm

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Private modes for what hull makes directly under its roots.
const (
	RootDir fs.FileMode = 0o711 // --root and --run-root themselves
	Dir     fs.FileMode = 0o700
	File    fs.FileMode = 0o600
)

// PrivateDir makes dir (and missing parents, 0711) and leaves it 0700,
// tightening a directory an older hull made wider.
func PrivateDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), RootDir); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
		}
		if err := os.Mkdir(dir, Dir); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		st, err = os.Stat(dir)
		if err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	return Tighten(dir, st.Mode(), Dir)
}

// Tighten removes the group and other bits of path (whose current mode is
// mode) beyond those of want.
func Tighten(path string, mode, want fs.FileMode) error {
	if mode.Perm()&0o077&^want == 0 {
		return nil
	}
	if err := os.Chmod(path, mode.Perm()&^(0o077&^want)); err != nil {
		return fmt.Errorf("make %s private: %w", path, err)
	}
	return nil
}

// Exposure is one path under a root that another local user can reach.
type Exposure struct {
	Path string
	Mode fs.FileMode
	Want fs.FileMode // the group and other bits it may keep (Tighten)
}

// Fix tightens the exposed path.
func (e Exposure) Fix() error { return Tighten(e.Path, e.Mode, e.Want) }

func (e Exposure) String() string {
	return fmt.Sprintf("%s (mode %04o) is reachable by other users", e.Path, uint32(e.Mode.Perm()|e.Mode&(fs.ModeSetuid|fs.ModeSetgid)))
}

// Exposed walks each root and lists every entry below it that a user other
// than root can reach and read, write or execute: it sits below directories
// that all let others (or a non-root group) traverse them, and has a group
// or other permission bit itself. Only the topmost of a subtree is listed. A root is listed only when others may
// write to it; RootDir, or a wider mode a user chose, is not an exposure. Mounted
// filesystems are walked too: what a mount shows is reachable through it.
func Exposed(roots ...string) ([]Exposure, error) {
	w := walk{roots: roots}
	for _, root := range roots {
		if err := w.root(root); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

type walk struct {
	roots []string // a root inside another (the run root in a test's root) is walked as a root
	out   []Exposure
}

func (w *walk) root(root string) error {
	st, err := os.Lstat(root)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o022 != 0 { // others could rename what is in it
		w.out = append(w.out, Exposure{Path: root, Mode: st.Mode(), Want: RootDir})
	}
	if st.Mode().Perm()&0o011 == 0 {
		return nil
	}
	return w.below(root)
}

// below lists the reachable entries of dir, a directory others may
// traverse, and descends into those they may traverse too.
func (w *walk) below(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if slices.Contains(w.roots, p) {
			continue
		}
		st, err := os.Lstat(p)
		if err != nil {
			continue // gone meanwhile
		}
		if st.Mode()&fs.ModeSymlink != 0 || st.Mode().Perm()&0o077 == 0 {
			continue
		}
		// What is below an exposed directory is reachable only through
		// it: making it private covers them all.
		w.out = append(w.out, Exposure{Path: p, Mode: st.Mode()})
	}
	return nil
}
