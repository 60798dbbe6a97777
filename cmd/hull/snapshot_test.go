package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"hull/internal/metadata"
)

// snapHull runs the command tree in-process against root, with stdin;
// it returns stdout and stderr together.
func snapHull(t *testing.T, root string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := hullStdin(t, root, bytes.NewReader(stdin), args...)
	return out + errOut, err
}

func mustSnapHull(t *testing.T, root string, stdin []byte, args ...string) string {
	t.Helper()
	out, err := snapHull(t, root, stdin, args...)
	if err != nil {
		t.Fatalf("hull %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// rootfsTar is a minimal root filesystem: busybox as /bin/sh.
func rootfsTar(t *testing.T, marker string) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static at /bin/busybox")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox", Mode: 0o777})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "marker", Mode: 0o644, Size: int64(len(marker))})
	tw.Write([]byte(marker))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var dfRow = regexp.MustCompile(`(?m)^(Images|Layers|Containers)\s+(\d+)\s+(\d+)`)

// dfCounts returns TOTAL and ACTIVE per row of `system df`.
func dfCounts(t *testing.T, root string) map[string][2]string {
	t.Helper()
	out := mustSnapHull(t, root, nil, "system", "df")
	got := map[string][2]string{}
	for _, m := range dfRow.FindAllStringSubmatch(out, -1) {
		got[m[1]] = [2]string{m[2], m[3]}
	}
	return got
}

func TestCLIImportDfPrune(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, driver := range []string{"overlay", "copy"} {
		t.Run(driver, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "hull.toml")
			os.WriteFile(conf, []byte("[storage]\nsnapshotter = \""+driver+"\"\n"), 0o644)
			t.Setenv("HULL_CONFIG", conf)
			testImportDfPrune(t, driver)
		})
	}
}

func testImportDfPrune(t *testing.T, driver string) {
	root := t.TempDir()
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(tarPath, rootfsTar(t, "named"), 0o644)

	id := strings.TrimSpace(mustSnapHull(t, root, nil, "import", "-m", "my rootfs", tarPath, "imported:1.0"))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("import printed %q, want the image ID", id)
	}
	// Untagged, from standard input, through `image import`.
	id2 := strings.TrimSpace(mustSnapHull(t, root, rootfsTar(t, "untagged"), "image", "import", "-"))
	if id2 == id || !strings.HasPrefix(id2, "sha256:") {
		t.Fatalf("second import printed %q", id2)
	}

	db, err := metadata.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	var drivers string
	db.QueryRow(`SELECT group_concat(DISTINCT driver) FROM snapshots`).Scan(&drivers)
	db.Close()
	if drivers != driver {
		t.Fatalf("layers unpacked by %q, want %q (storage.snapshotter)", drivers, driver)
	}

	// The imported image is unpacked: its merged root is mountable.
	target := strings.TrimSpace(mustSnapHull(t, root, nil, "image", "mount", "imported:1.0"))
	t.Cleanup(func() { snapHull(t, root, nil, "image", "unmount", "imported:1.0") })
	if b, err := os.ReadFile(filepath.Join(target, "marker")); err != nil || string(b) != "named" {
		t.Fatalf("mounted image marker = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(target, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	mustSnapHull(t, root, nil, "image", "unmount", "imported:1.0")

	if got := dfCounts(t, root); got["Images"][0] != "2" || got["Layers"][0] != "2" || got["Layers"][1] != "2" {
		t.Fatalf("system df counts %v, want 2 images and 2 layers in use", got)
	}
	v := mustSnapHull(t, root, nil, "system", "df", "-v")
	t.Logf("system df -v:\n%s", v)
	for _, want := range []string{"Layers space usage:", "imported", "1.0", id[7:19]} {
		if !strings.Contains(v, want) {
			t.Errorf("system df -v lacks %q:\n%s", want, v)
		}
	}

	// Declining the prompt removes nothing.
	mustSnapHull(t, root, []byte("n\n"), "system", "prune")
	if got := dfCounts(t, root); got["Images"][0] != "2" {
		t.Fatalf("declined prune removed images: %v", got)
	}
	out := mustSnapHull(t, root, nil, "system", "prune", "-f")
	t.Logf("system prune -f:\n%s", out)
	if !strings.Contains(out, "deleted: "+id2) || !strings.Contains(out, "Deleted Layers:") {
		t.Errorf("prune output:\n%s", out)
	}
	if got := dfCounts(t, root); got["Images"][0] != "1" || got["Layers"][0] != "1" {
		t.Fatalf("after prune: %v, want the tagged image and its layer", got)
	}
	mustSnapHull(t, root, nil, "system", "prune", "-a", "-f")
	if got := dfCounts(t, root); got["Images"][0] != "0" || got["Layers"][0] != "0" {
		t.Fatalf("after prune -a: %v, want nothing", got)
	}
	blobs, err := os.ReadDir(filepath.Join(root, "images/blobs/sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 0 {
		t.Errorf("%d blobs left after prune -a", len(blobs))
	}
}

func TestCLIImportRejectsNonTar(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(p, bytes.Repeat([]byte("not a tarball\n"), 100), 0o644)
	_, err := snapHull(t, root, nil, "import", p, "x:1")
	if err == nil || !strings.Contains(err.Error(), "not a tar archive") {
		t.Fatalf("err = %v, want 'not a tar archive'", err)
	}
}
