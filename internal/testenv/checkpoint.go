package testenv

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"testing"
)

// TarMembers reads the tar archive file whole: each member's name and
// contents (a checkpoint archive's, an exported image's), for tests that
// check what an archive holds.
func TarMembers(t testing.TB, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", file, h.Name, err)
		}
		out[h.Name] = b
	}
}

// NeedCRIU skips a test that checkpoints or restores containers when no
// CRIU is configured ($HULL_CRIU unset and no criu on PATH), and fails
// it when $HULL_CRIU names none: `make test` sets it (make criu), so
// there such a test fails rather than skips.
func NeedCRIU(t testing.TB) {
	t.Helper()
	if p := os.Getenv("HULL_CRIU"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("HULL_CRIU: %v (make criu builds one)", err)
		}
		return
	}
	if _, err := exec.LookPath("criu"); err != nil {
		t.Skip("no CRIU: set HULL_CRIU (make criu builds one)")
	}
}
