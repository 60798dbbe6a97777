package engine

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, entries ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "data:" + h.Name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return &buf
}

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Hostile archives cannot write outside the destination: ".." names are
// confined, and symlinks (from the archive or already there) are not
// followed out.
func TestExtractTarStaysInside(t *testing.T) {
	outside := t.TempDir()
	dest := t.TempDir()
	os.Symlink(outside, filepath.Join(dest, "planted"))
	archive := tarOf(t,
		tar.Header{Name: "../../escape", Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
		tar.Header{Name: "link/through", Typeflag: tar.TypeReg, Mode: 0o644},
	)
	err := ExtractTar(openRoot(t, dest), archive, ExtractOptions{})
	if err == nil {
		t.Error("writing through the archive's own link succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(dest, "escape")); err != nil || string(b) != "data:../../escape" {
		t.Errorf("a .. name was not confined to the destination: %q %v", b, err)
	}
	for _, a := range []*bytes.Buffer{
		tarOf(t, tar.Header{Name: "planted/x", Typeflag: tar.TypeReg, Mode: 0o644}),
		tarOf(t, tar.Header{Name: "planted/sub/", Typeflag: tar.TypeDir, Mode: 0o755}),
		tarOf(t, tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "planted/../../etc/passwd"}),
	} {
		ExtractTar(openRoot(t, dest), a, ExtractOptions{})
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files appeared outside the destination: %v", ents)
	}
}

func TestWriteTarThenExtractRenames(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d", "sub"), 0o750)
	os.WriteFile(filepath.Join(src, "d", "sub", "f"), []byte("f"), 0o640)
	os.Symlink("/nowhere", filepath.Join(src, "d", "l"))
	var buf bytes.Buffer
	if err := WriteTar(&buf, openRoot(t, src), "d", "d"); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "d/ d/l d/sub/ d/sub/f" {
		t.Errorf("archive entries: %v", names)
	}
	dest := t.TempDir()
	if err := ExtractTar(openRoot(t, dest), bytes.NewReader(buf.Bytes()), ExtractOptions{Rename: true, From: "d", To: "copy"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "copy", "sub")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("renamed directory: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "copy", "sub", "f")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dest, "copy", "l")); err != nil || l != "/nowhere" {
		t.Errorf("symlink: %q %v", l, err)
	}
	// To "" puts the contents in place.
	flat := t.TempDir()
	ExtractTar(openRoot(t, flat), bytes.NewReader(buf.Bytes()), ExtractOptions{Rename: true, From: "d", To: ""})
	if _, err := os.Stat(filepath.Join(flat, "sub", "f")); err != nil {
		t.Errorf("contents only: %v", err)
	}
}

func TestSplitContainerPath(t *testing.T) {
	for _, c := range []struct {
		arg, ctr, path string
		ok             bool
	}{
		{"web:/etc/passwd", "web", "/etc/passwd", true},
		{"web:rel", "web", "rel", true},
		{"/abs:colon", "", "/abs:colon", false},
		{"./a:b", "", "./a:b", false},
		{"dir/a:b", "", "dir/a:b", false},
		{"-", "", "-", false},
		{":x", "", ":x", false},
	} {
		ctr, p, ok := SplitContainerPath(c.arg)
		if ctr != c.ctr || p != c.path || ok != c.ok {
			t.Errorf("SplitContainerPath(%q) = %q, %q, %v", c.arg, ctr, p, ok)
		}
	}
}

func TestExecHelpers(t *testing.T) {
	env := overrideEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	if strings.Join(env, " ") != "PATH=/bin A=2 B=3" {
		t.Errorf("overrideEnv: %v", env)
	}
	for msg, want := range map[string]StartReason{
		"exec nosuch: executable file not found in $PATH":       CommandNotFound,
		"exec /x: stat /x: no such file or directory":           CommandNotFound,
		"exec /etc/passwd: permission denied":                   CommandNotExecutable,
		`chdir to cwd "/nope" set in config.json: no such file`: CommandNotExecutable,
	} {
		if got := execFailure(msg); got != want {
			t.Errorf("execFailure(%q) = %d, want %d", msg, got, want)
		}
	}
}

// A tar stream compressed with gzip, bzip2, xz or zstd is extracted like
// a plain one, as docker's cp accepts them.
func TestExtractTarCompressed(t *testing.T) {
	for _, tool := range []string{"gzip", "bzip2", "xz", "zstd"} {
		t.Run(tool, func(t *testing.T) {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s not installed (hack/deps.sh installs it)", tool)
			}
			archive := tarOf(t, tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644})
			c := exec.Command(tool, "-c")
			c.Stdin = archive
			packed, err := c.Output()
			if err != nil {
				t.Fatalf("%s: %v", tool, err)
			}
			dest := t.TempDir()
			if err := ExtractTar(openRoot(t, dest), bytes.NewReader(packed), ExtractOptions{}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "f")); err != nil || string(b) != "data:f" {
				t.Errorf("extracted %q, %v", b, err)
			}
		})
	}
}
