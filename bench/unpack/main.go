// Command unpack is hull's side of bench/unpack.sh: it unpacks every layer
// of one image in an OCI layout into a fresh snapshot root with
// internal/snapshot, all layers at once (each as soon as it is read, the way
// a pull unpacks as layers land), then mounts the image's merged root
// read-only and unmounts it, so the result is a usable rootfs like the one
// `umoci unpack` writes.
//
//	go run -tags libsqlite3 ./bench/unpack --layout DIR --ref NAME --root DIR [--driver overlay|copy] [--serial]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"hull/internal/metadata"
	"hull/internal/snapshot"
)

func main() {
	layoutDir := flag.String("layout", "", "OCI image layout directory")
	ref := flag.String("ref", "", "org.opencontainers.image.ref.name of the image (default: the first manifest)")
	root := flag.String("root", "", "snapshot root to create")
	driver := flag.String("driver", snapshot.Overlay, "snapshotter driver")
	serial := flag.Bool("serial", false, "unpack one layer after the other")
	flag.Parse()
	if err := run(*layoutDir, *ref, *root, *driver, *serial); err != nil {
		fmt.Fprintln(os.Stderr, "unpack:", err)
		os.Exit(1)
	}
}

func run(layoutDir, ref, root, driver string, serial bool) error {
	img, err := findImage(layoutDir, ref)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	db, err := metadata.Open(root)
	if err != nil {
		return err
	}
	defer db.Close()
	snap, err := snapshot.Open(db, root, snapshot.Options{Driver: driver})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	diffIDs := make([]string, len(cf.RootFS.DiffIDs))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	chains := snapshot.ChainIDs(diffIDs)
	errs := make(chan error, len(layers))
	for i, l := range layers {
		parent := ""
		if i > 0 {
			parent = chains[i-1]
		}
		unpack := func() error {
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = snap.Unpack(ctx, parent, diffIDs[i], rc)
			return err
		}
		if serial {
			if err := unpack(); err != nil {
				return err
			}
			continue
		}
		go func() {
			err := unpack()
			if err != nil {
				cancel() // children waiting for this layer give up
			}
			errs <- err
		}()
	}
	if !serial {
		for range layers {
			if err := <-errs; err != nil {
				return err
			}
		}
	}

	ms, err := snap.View(ctx, "bench-view", chains[len(chains)-1])
	if err != nil {
		return err
	}
	target := filepath.Join(root, "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		return err
	}
	if err := snapshot.MountAll(ms, target); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(target, "bin")); err != nil {
		snapshot.Unmount(target)
		return fmt.Errorf("merged rootfs: %w", err)
	}
	return snapshot.Unmount(target)
}

func findImage(dir, ref string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if ref == "" || m.Annotations["org.opencontainers.image.ref.name"] == ref {
			return idx.Image(m.Digest)
		}
	}
	return nil, fmt.Errorf("no image %q in %s", ref, dir)
}
