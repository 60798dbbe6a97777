package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"hull/internal/testenv"
)

// The exec shell of the default critest image. The fixture's busybox
// (Debian's busybox-static) is built with FEATURE_SH_STANDALONE: its sh
// runs every applet name as the applet, in process (ls is a NOEXEC
// applet), without looking at /bin/ls. critest's MaskedPaths spec masks
// /bin/ls and expects `/bin/sh -c ls` to fail with "/bin/sh: ls:
// Permission denied", which only a shell that executes /bin/ls from disk
// can give. So the default image's /bin/sh is a busybox built without it
// (Debian's dynamically linked busybox, given by --exec-shell), with the
// libraries it loads, and every applet of the static busybox a hard link
// of it where `busybox --list-full` puts it, so the shell finds each
// command on disk, as on the real busybox image. Hard links, as there,
// not symlinks: masking /bin/ls binds over the path's own file, and a
// symlink would lead the mask to /bin/busybox and every applet with it.
// (A hard link must name a file of its own layer, so the layer carries
// busybox too.)

// execShellLayer is that layer for the busybox at sh.
func execShellLayer(sh string) (io.ReadCloser, error) {
	bin, err := os.ReadFile(sh)
	if err != nil {
		return nil, fmt.Errorf("exec shell: %w", err)
	}
	libs, err := sharedLibraries(sh)
	if err != nil {
		return nil, fmt.Errorf("exec shell %s: %w", sh, err)
	}
	list, err := exec.Command(testenv.BusyboxBinary, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("exec shell: %s --list-full: %w", testenv.BusyboxBinary, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdirs := func(p string) error {
		var parts []string
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			parts = append([]string{d}, parts...)
		}
		for _, d := range parts {
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	file := func(name string, mode int64, data []byte) error {
		if err := mkdirs(name); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("bin/sh", 0o755, bin); err != nil {
		return nil, err
	}
	bb, err := os.ReadFile(testenv.BusyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("exec shell: %w", err)
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return nil, err
	}
	for _, l := range libs {
		data, err := os.ReadFile(l) // the library itself, not its symlink
		if err != nil {
			return nil, fmt.Errorf("exec shell: %w", err)
		}
		if err := file(strings.TrimPrefix(l, "/"), 0o755, data); err != nil {
			return nil, err
		}
	}
	for _, a := range strings.Fields(string(list)) {
		if a == "bin/sh" || a == "bin/busybox" {
			continue
		}
		if err := mkdirs(a); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: a, Linkname: "bin/busybox", Mode: 0o755, Typeflag: tar.TypeLink}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}

// libDirs are where the dynamic loader finds libraries on this host.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// sharedLibraries are the paths of the program's interpreter and of the
// libraries it needs (one level: libc needs nothing beyond the loader).
func sharedLibraries(prog string) ([]string, error) {
	f, err := elf.Open(prog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, err
			}
			out = append(out, strings.TrimRight(string(b), "\x00"))
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, err
	}
	for _, n := range needed {
		found := ""
		for _, d := range libDirs {
			if _, err := os.Stat(filepath.Join(d, n)); err == nil {
				found = filepath.Join(d, n)
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("library %s not found in %v", n, libDirs)
		}
		out = append(out, found)
	}
	return out, nil
}
