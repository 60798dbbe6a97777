package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{"4.1.1", "4.1", true}, {"4.1", "4.1", true}, {"4.2", "4.1", true}, {"5.0", "4.1", true},
		{"4.0", "4.1", false}, {"3.17.1", "4.1", false}, {"4", "4.1", false}, {"x", "4.1", false},
	} {
		if got := versionAtLeast(c.have, c.want); got != c.ok {
			t.Errorf("versionAtLeast(%q, %q) = %v, want %v", c.have, c.want, got, c.ok)
		}
	}
}

// fakeCRIU writes a criu that reports version and fails `criu check`.
func fakeCRIU(t *testing.T, version string) string {
	path := filepath.Join(t.TempDir(), "criu")
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Version: " + version + "'; exit 0; fi\n" +
		"echo 'Error (criu/vdso.c:627): vdso: Unexpected rt vDSO area bounds' >&2\nexit 1\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFindCRIURefusals(t *testing.T) {
	fake := fakeCRIU(t, "4.1.1")
	t.Setenv("HULL_CRIU", fake)
	_, err := FindCRIU()
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("FindCRIU with a failing check: %v; want a failed precondition", err)
	}
	for _, want := range []string{fake, "4.1.1", "Unexpected rt vDSO area bounds", "make criu", "HULL_CRIU"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("FindCRIU: %v; want it to say %q", err, want)
		}
	}

	old := fakeCRIU(t, "3.17.1")
	t.Setenv("HULL_CRIU", old)
	if _, err := FindCRIU(); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "3.17.1") || !strings.Contains(err.Error(), "older than 4.1") {
		t.Errorf("FindCRIU with CRIU 3.17.1: %v; want a failed precondition naming the version", err)
	}

	t.Setenv("HULL_CRIU", "")
	t.Setenv("PATH", t.TempDir())
	if _, err := FindCRIU(); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "no criu on PATH") {
		t.Errorf("FindCRIU with none: %v; want a failed precondition", err)
	}
}

// TestFindCRIU checks the CRIU the tests run with, when there is one.
func TestFindCRIU(t *testing.T) {
	if os.Getenv("HULL_CRIU") == "" {
		t.Skip("HULL_CRIU is not set")
	}
	c, err := FindCRIU()
	if err != nil {
		t.Fatal(err)
	}
	if !versionAtLeast(c.Version, MinCRIU) {
		t.Errorf("FindCRIU: version %s", c.Version)
	}
}
