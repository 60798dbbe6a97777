package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hull/internal/testenv"
)

// TestExportImportRoundTrip exports a container that changed files,
// imports the archive with --change and --message, and runs the image:
// the container's filesystem, merged, with its config from --change.
func TestExportImportRoundTrip(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "--name", "src", fx.Busybox.Ref, "sh", "-c",
		"echo kept > /kept; rm /etc/group; ln /kept /kept-link; chmod 0750 /kept; chown 12:34 /kept")

	archive := filepath.Join(t.TempDir(), "fs.tar")
	if out := mustHull(t, root, "export", "-o", archive, "src"); out != "" {
		t.Errorf("export -o printed %q", out)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("export wrote a bad tar: %v", err)
		}
		entries[h.Name] = h
	}
	if h := entries["kept"]; h == nil || h.Mode&0o7777 != 0o750 || h.Uid != 12 || h.Gid != 34 {
		t.Errorf("/kept in the archive: %+v", h)
	}
	if h := entries["kept-link"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "kept" {
		t.Errorf("/kept-link is not a hardlink to kept: %+v", h)
	}
	if entries["etc/group"] != nil || entries["bin/"] == nil {
		t.Errorf("archive: etc/group %v (deleted), bin/ %v", entries["etc/group"] != nil, entries["bin/"] != nil)
	}

	// Through a pipe, as `hull export src | hull import - name`.
	var piped bytes.Buffer
	exp := hullProc(root, "container", "export", "src")
	exp.Stdout = &piped
	if err := exp.Run(); err != nil {
		t.Fatalf("export to stdout: %v", err)
	}
	id := strings.TrimSpace(mustSnapHull(t, root, piped.Bytes(), "import", "-m", "round trip", "-c", `CMD ["cat", "/kept"]`, "-c", "ENV MODE=imported",
		"-c", "WORKDIR /etc", "-", "roundtrip:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	if out := mustHull(t, root, "run", "--rm", "roundtrip:1"); out != "kept\n" {
		t.Errorf("the imported image runs %q", out)
	}
	if out := mustHull(t, root, "run", "--rm", "roundtrip:1", "sh", "-c", "echo $MODE $PWD; ls /etc/group 2>&1 || true"); !strings.HasPrefix(out, "imported /etc\n") || !strings.Contains(out, "No such file") {
		t.Errorf("the imported image's env, workdir and deleted file: %q", out)
	}
	if out := mustHull(t, root, "history", "roundtrip:1"); !strings.Contains(out, "round trip") {
		t.Errorf("history lacks the import message:\n%s", out)
	}

	// From a URL, as docker import takes.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fs.tar" {
			http.NotFound(w, r)
			return
		}
		w.Write(piped.Bytes())
	}))
	defer srv.Close()
	mustHull(t, root, "import", srv.URL+"/fs.tar", "fromurl:1")
	if out := mustHull(t, root, "run", "--rm", "fromurl:1", "cat", "/kept"); out != "kept\n" {
		t.Errorf("the image imported from a URL: %q", out)
	}
	if _, _, err := hull(t, root, "import", srv.URL+"/missing.tar"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("import of a missing URL: %v", err)
	}

	// --platform names the image's platform.
	id = strings.TrimSpace(mustSnapHull(t, root, piped.Bytes(), "import", "--platform", "linux/arm64", "-"))
	if out := mustHull(t, root, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", id); out != "linux/arm64\n" {
		t.Errorf("import --platform: %q", out)
	}
	if _, err := snapHull(t, root, piped.Bytes(), "import", "-c", "FROM busybox", "-"); err == nil || !strings.Contains(err.Error(), "FROM is not a valid change command") {
		t.Errorf("import -c FROM: %v", err)
	}

	// No archive to a terminal.
	m, s, err := testenv.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer m.Close()
	defer s.Close()
	var stderr bytes.Buffer
	tty := hullProc(root, "export", "src")
	tty.Stdout, tty.Stderr = s, &stderr
	if err := tty.Run(); exitStatus(err) != 1 || !strings.Contains(stderr.String(), "refusing to write an archive to a terminal") {
		t.Errorf("export to a terminal: %v, %s", err, stderr.String())
	}
}
