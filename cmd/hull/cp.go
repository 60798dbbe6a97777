package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

func newCpCmd(g *globals) *cobra.Command {
	var keepOwners, followLink, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  hull cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files between a container and the host (- is a tar stream on stdin or stdout)",
		Long: "Copy files between a container and the host. Container paths are taken from the container's /;\n" +
			"symlinks in the container resolve inside it, never to the host's files.",
		Args: exactArgs(2, "a source and a destination, one of them CONTAINER:PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcC, srcP, srcIn := engine.SplitContainerPath(args[0])
			dstC, dstP, dstIn := engine.SplitContainerPath(args[1])
			switch {
			case srcIn && dstIn:
				return errors.New("copying between containers is not supported: copy to the host first")
			case !srcIn && !dstIn:
				return errors.New("must specify at least one container source: CONTAINER:PATH")
			case srcIn && srcP == "" || dstIn && dstP == "":
				return errors.New("the container path is empty: use CONTAINER:/path")
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			cp := &copier{keepOwners: keepOwners, follow: followLink}
			if srcIn {
				err = cp.fromContainer(cmd, eng, srcC, srcP, dstP)
			} else {
				err = cp.toContainer(cmd, eng, srcP, dstC, dstP)
			}
			if err != nil {
				return err
			}
			if !quiet && cp.target != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "Successfully copied %s to %s\n", ui.Size(cp.bytes), cp.target)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&keepOwners, "archive", "a", false, "keep the files' uid and gid (default: owned by whoever copies, root in the container)")
	f.BoolVarP(&followLink, "follow-link", "L", false, "copy what a source symlink points to, not the link")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not report what was copied")
	return cmd
}

type copier struct {
	keepOwners, follow bool
	bytes              int64  // size of the tar stream moved
	target             string // for the report; "" for a stream
	// maps holds the UIDMap and GIDMap of the destination tree (a
	// container's own filesystem in a user namespace).
	maps engine.ExtractOptions
}

// source is what to archive: name inside root, archived as base.
type source struct {
	root         *os.Root
	name, base   string
	isDir        bool
	contentsOnly bool // SRC/. copies what the directory holds
}

func (cp *copier) fromContainer(cmd *cobra.Command, eng *engine.Engine, ref, src, dst string) error {
	c, _, err := eng.RootfsPath(cmd.Context(), ref)
	if err != nil {
		return err
	}
	tree, rel := eng.TreeFor(c, src)
	if strings.HasSuffix(src, "/.") {
		rel += "/."
	} else if strings.HasSuffix(src, "/") {
		rel += "/"
	}
	s, err := openContainerSource(tree, rel, cp.follow)
	if err == nil {
		s.base = baseName(path.Clean("/" + src))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("could not find the file %s in container %s: %w", src, c.Name, err)
	}
	if err != nil {
		return fmt.Errorf("copy from %s:%s: %w", c.Name, src, err)
	}
	defer s.root.Close()
	if dst == "-" {
		return engine.WriteTar(cmd.OutOrStdout(), s.root, s.name, s.base)
	}
	destDir, rename, err := placeOnHost(dst, s)
	if err != nil {
		return err
	}
	droot, err := os.OpenRoot(destDir)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	defer droot.Close()
	cp.target = dst
	return cp.pipe(s, droot, rename)
}

// pipe archives the source and extracts it into dest as it goes.
func (cp *copier) pipe(s *source, dest *os.Root, rename engine.ExtractOptions) error {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(engine.WriteTar(pw, s.root, s.name, s.base))
	}()
	rename.KeepOwners = cp.keepOwners
	rename.UIDMap, rename.GIDMap = cp.maps.UIDMap, cp.maps.GIDMap
	err := engine.ExtractTar(dest, &countingReader{r: pr, n: &cp.bytes}, rename)
	pr.CloseWithError(errors.New("extraction stopped"))
	return err
}

// openContainerSource resolves src inside the container: its directory
// always; the last component too if it is to be followed (-L, or a
// trailing / or /.).
func openContainerSource(rootfs, src string, follow bool) (*source, error) {
	contentsOnly := strings.HasSuffix(src, "/.")
	p := path.Clean("/" + src)
	if follow || contentsOnly || strings.HasSuffix(src, "/") || p == "/" {
		root, err := engine.OpenInRoot(rootfs, p)
		if err == nil {
			fi, serr := root.Stat(".")
			if serr == nil && fi.IsDir() {
				return &source{root: root, name: ".", base: baseName(p), isDir: true, contentsOnly: contentsOnly}, nil
			}
			root.Close()
		}
		if contentsOnly || strings.HasSuffix(src, "/") {
			if err == nil {
				err = errors.New("not a directory")
			}
			return nil, err
		}
		// A file followed with -L: resolve the link chain step by step,
		// each step inside the container.
		for range 40 {
			fi, lerr := engine.StatInRootNoFollow(rootfs, p)
			if lerr != nil || fi.Mode()&fs.ModeSymlink == 0 {
				break
			}
			dir, derr := engine.OpenInRoot(rootfs, path.Dir(p))
			if derr != nil {
				return nil, derr
			}
			target, rerr := dir.Readlink(path.Base(p))
			dir.Close()
			if rerr != nil {
				return nil, rerr
			}
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			p = path.Clean(target)
		}
	}
	root, err := engine.OpenInRoot(rootfs, path.Dir(p))
	if err != nil {
		return nil, err
	}
	fi, err := root.Lstat(path.Base(p))
	if err != nil {
		root.Close()
		return nil, err
	}
	return &source{root: root, name: path.Base(p), base: baseName(path.Clean("/" + src)), isDir: fi.IsDir()}, nil
}

func baseName(p string) string {
	if b := path.Base(p); b != "/" {
		return b
	}
	return "."
}

// placeOnHost applies docker's rules for where a copy lands: into an
// existing directory under the source's name (or just its contents for
// SRC/.), or as the destination name itself.
func placeOnHost(dst string, s *source) (string, engine.ExtractOptions, error) {
	fi, err := os.Stat(dst)
	return placement(dst, fi, err, s)
}

func placement(dst string, fi fs.FileInfo, statErr error, s *source) (string, engine.ExtractOptions, error) {
	switch {
	case statErr == nil && fi.IsDir():
		if s.contentsOnly {
			return dst, engine.ExtractOptions{Rename: true, From: s.base, To: ""}, nil
		}
		return dst, engine.ExtractOptions{}, nil
	case statErr == nil:
		if s.isDir {
			return "", engine.ExtractOptions{}, fmt.Errorf("cannot copy a directory to a file: %s", dst)
		}
	case !errors.Is(statErr, fs.ErrNotExist):
		return "", engine.ExtractOptions{}, statErr
	case strings.HasSuffix(dst, "/") && !s.isDir:
		return "", engine.ExtractOptions{}, fmt.Errorf("destination directory %s does not exist", dst)
	}
	clean := filepath.Clean(dst)
	return filepath.Dir(clean), engine.ExtractOptions{Rename: true, From: s.base, To: filepath.Base(clean)}, nil
}

func (cp *copier) toContainer(cmd *cobra.Command, eng *engine.Engine, src, ref, dst string) error {
	c, _, err := eng.RootfsPath(cmd.Context(), ref)
	if err != nil {
		return err
	}
	p := path.Clean("/" + dst)
	if src == "-" {
		// A tar stream goes into an existing directory as it is.
		tree, rel := eng.TreeFor(c, p)
		root, err := engine.OpenInRoot(tree, rel)
		if err != nil {
			return fmt.Errorf("copy to %s:%s: %w", c.Name, dst, err)
		}
		defer root.Close()
		if fi, err := root.Stat("."); err != nil || !fi.IsDir() {
			return fmt.Errorf("copy to %s:%s: the destination of a tar stream must be a directory", c.Name, dst)
		}
		o := engine.ExtractOptions{KeepOwners: cp.keepOwners}
		o.UIDMap, o.GIDMap = eng.TreeIDMaps(c, tree)
		return engine.ExtractTar(root, cmd.InOrStdin(), o)
	}
	s, err := openHostSource(src, cp.follow)
	if err != nil {
		return err
	}
	defer s.root.Close()
	fi, err := engine.StatInRoot(eng.TreeFor(c, p))
	destDir, rename, err := placement(p, fi, err, s)
	if err != nil {
		return fmt.Errorf("copy to %s:%s: %w", c.Name, dst, err)
	}
	tree, rel := eng.TreeFor(c, destDir)
	cp.maps.UIDMap, cp.maps.GIDMap = eng.TreeIDMaps(c, tree)
	droot, err := engine.OpenInRoot(tree, rel)
	if err != nil {
		return fmt.Errorf("copy to %s:%s: %w", c.Name, dst, err)
	}
	defer droot.Close()
	cp.target = c.Name + ":" + p
	return cp.pipe(s, droot, rename)
}

// openHostSource opens a host path to archive (the host is trusted; -L
// follows a final symlink).
func openHostSource(src string, follow bool) (*source, error) {
	contentsOnly := strings.HasSuffix(src, "/.")
	p := filepath.Clean(src)
	if follow {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 && (contentsOnly || strings.HasSuffix(src, "/")) {
		if fi, err = os.Stat(p); err != nil {
			return nil, err
		}
	}
	if fi.IsDir() {
		root, err := os.OpenRoot(p)
		if err != nil {
			return nil, err
		}
		return &source{root: root, name: ".", base: baseName(filepath.Clean(src)), isDir: true, contentsOnly: contentsOnly}, nil
	}
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	return &source{root: root, name: filepath.Base(p), base: filepath.Base(filepath.Clean(src))}, nil
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
