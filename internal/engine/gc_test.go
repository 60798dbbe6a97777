package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// openFullTestEngine opens an engine, with its database, image store and
// snapshotter, over a fresh root.
func openFullTestEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := Open(testConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// rootfsTar is a tar archive of files (path -> content).
func rootfsTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// An imported image is stored, unpacked and mountable at once; disk
// usage counts it and its layer as in use while it is named; prune takes
// the untagged image first, and with AllImages the named one, its layer
// and its blobs.
func TestImportMountDiskUsageAndPrune(t *testing.T) {
	e := openFullTestEngine(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(path, rootfsTar(t, map[string]string{"hello": "hi\n"}), 0o600); err != nil {
		t.Fatal(err)
	}
	named, err := e.Import(ctx, path, nil, ImportOptions{Name: "example.com/imported:1", Message: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// "-" reads the reader: another rootfs, untagged.
	untagged, err := e.Import(ctx, "-", bytes.NewReader(rootfsTar(t, map[string]string{"other": "x"})), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := e.ImageList(ctx, []ImageFilter{{Key: "reference", Value: "example.com/imported"}})
	if err != nil || len(imgs) != 1 || imgs[0].ConfigID.String() != named {
		t.Fatalf("ImageList: %v, %v; want the image %s", imgs, err, named)
	}

	du, err := e.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(du.Images) != 2 || len(du.Layers) != 2 || len(du.Containers) != 0 {
		t.Fatalf("disk usage: %d images, %d layers, %d containers; want 2, 2, 0", len(du.Images), len(du.Layers), len(du.Containers))
	}
	for _, l := range du.Layers {
		if l.Reclaimable || l.Size == 0 {
			t.Errorf("layer %s: reclaimable %v, size %d; want an image's layer, in use", l.Name, l.Reclaimable, l.Size)
		}
	}

	target, err := e.MountImage(ctx, "example.com/imported:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.UnmountImage(ctx, named) })
	if data, err := os.ReadFile(filepath.Join(target, "hello")); err != nil || string(data) != "hi\n" {
		t.Errorf("mounted image: hello is %q, %v", data, err)
	}
	if again, err := e.MountImage(ctx, named); err != nil || again != target {
		t.Errorf("mounting again: %q, %v; want %q", again, err, target)
	}

	rep, err := e.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Images, "deleted: "+untagged) || slices.Contains(rep.Images, "deleted: "+named) || len(rep.Layers) != 1 || rep.Reclaimed == 0 {
		t.Errorf("prune: %+v; want the untagged image and its layer", rep)
	}

	if id, err := e.UnmountImage(ctx, "example.com/imported:1"); err != nil || id != named {
		t.Fatalf("unmount: %q, %v", id, err)
	}
	if isMounted(target) {
		t.Errorf("%s is still mounted", target)
	}
	rep, err = e.Prune(ctx, PruneOptions{AllImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Images, "untagged: example.com/imported:1") || !slices.Contains(rep.Images, "deleted: "+named) || len(rep.Layers) != 1 {
		t.Errorf("prune -a: %+v; want the named image and its layer", rep)
	}
	if du, err = e.DiskUsage(ctx); err != nil || len(du.Images)+len(du.Layers)+len(du.Containers) != 0 {
		t.Errorf("after prune -a: %+v, %v; want nothing", du, err)
	}
}

// Import refuses input that is not a tar archive before storing anything.
func TestImportRefusesNonTar(t *testing.T) {
	e := openFullTestEngine(t)
	if _, err := e.Import(context.Background(), "-", bytes.NewReader([]byte("not a tarball at all, not at all, no")), ImportOptions{}); err == nil {
		t.Fatal("import of a text file succeeded")
	}
	// A bzip2 tarball cannot become a layer (layers are plain, gzip or
	// zstd): refused with what to do.
	bzip := exec.Command("bzip2", "-c")
	bzip.Stdin = tarOf(t, tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644})
	bz, err := bzip.Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Import(context.Background(), "-", bytes.NewReader(bz), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "gzip or zstd") {
		t.Errorf("import of a bzip2 tarball: %v, want a refusal naming gzip or zstd", err)
	}
	if n, err := e.ImageCount(context.Background()); err != nil || n != 0 {
		t.Errorf("%d images, %v; want none", n, err)
	}
}
