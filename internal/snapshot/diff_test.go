package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A container's changes over layers that have whiteouts and opaque
// directories of their own: Changes reads the lower layers as the
// merged mount shows them (b/old, hidden by an opaque b, is added, not
// changed), and WriteDiff's layer, unpacked on the same parent, gives
// the container's filesystem back.
func TestChangesAndWriteDiff(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		s := openT(t, t.TempDir(), driver)
		base := makeTar(t,
			hdrDir("a/", 0o755), hdrFile("a/x", 0o644, "x"), hdrFile("a/y", 0o644, "y"),
			hdrDir("b/", 0o755), hdrFile("b/old", 0o644, "old"),
			hdrFile("c", 0o644, "c"), hdrDir("d/", 0o755), hdrFile("d/f", 0o644, "f"), hdrFile("d/g", 0o644, "g"),
			hdrDir("e/", 0o755), hdrFile("e/old", 0o644, "old"),
		)
		top := makeTar(t,
			hdrFile("a/.wh.x", 0o644, ""),
			hdrDir("b/", 0o755), hdrFile("b/.wh..wh..opq", 0o644, ""), hdrFile("b/new", 0o644, "new"),
			hdrFile(".wh.c", 0o644, ""),
			hdrDir("e/", 0o755), hdrFile("e/new", 0o644, "new"),
		)
		chain := unpackT(t, s, "", base, top)
		ctx := context.Background()
		ms, err := s.Prepare(ctx, "ctr", chain)
		if err != nil {
			t.Fatal(err)
		}
		m := mountT(t, ms)
		write := func(p, data string) {
			if err := os.WriteFile(filepath.Join(m, p), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("b/old", "again")
		write("c", "back")
		write("a/y", "changed")
		if err := os.Remove(filepath.Join(m, "d/g")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(m, "e")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(m, "e"), 0o755); err != nil {
			t.Fatal(err)
		}
		write("e/z", "z")
		if err := os.WriteFile(filepath.Join(m, "hosts"), nil, 0o644); err != nil { // a mountpoint
			t.Fatal(err)
		}

		changes, err := s.Changes(ctx, "ctr", []string{"/hosts"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range changes {
			got = append(got, c.Kind.String()+" "+c.Path)
		}
		// Docker's drivers differ on one point: overlay lists a
		// directory for additions and deletions in it, the tree
		// comparison (docker's vfs) for any change in it.
		want := "C /b|A /b/old|A /c|C /d|D /d/g|C /e|A /e/z|D /e/new|D /e/old|C /a/y"
		if driver == Copy {
			want = "C /a|C /a/y|C /b|A /b/old|A /c|C /d|D /d/g|C /e|D /e/new|D /e/old|A /e/z"
		}
		sortedWant := strings.Split(want, "|")
		if strings.Join(got, "|") != sortedInWalkOrder(sortedWant) {
			t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(strings.Split(sortedInWalkOrder(sortedWant), "|"), "\n"))
		}

		var layer bytes.Buffer
		n, err := s.WriteDiff(ctx, "ctr", &layer, []string{"/hosts"})
		if err != nil || n == 0 {
			t.Fatalf("WriteDiff: %d entries, %v", n, err)
		}
		next := unpackT(t, s, chain, layer.Bytes())
		vms, err := s.View(ctx, "view", next)
		if err != nil {
			t.Fatal(err)
		}
		v := mountT(t, vms)
		for p, want := range map[string]string{"a/y": "changed", "b/old": "again", "b/new": "new", "c": "back", "d/f": "f", "e/z": "z"} {
			if got := readFile(t, filepath.Join(v, p)); got != want {
				t.Errorf("%s in the committed layer's view: %q, want %q", p, got, want)
			}
		}
		for _, p := range []string{"a/x", "d/g", "e/new", "e/old", "hosts"} {
			assertMissing(t, filepath.Join(v, p))
		}
	})
}

// sortedInWalkOrder sorts "K /path" lines as Changes does.
func sortedInWalkOrder(lines []string) string {
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && walkOrder(lines[j][2:]) < walkOrder(lines[j-1][2:]); j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	return strings.Join(lines, "|")
}

// WriteTreeAs names entries below its top as asked, hardlinks included.
func TestWriteTreeAsRenamesHardlinks(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("f"), 0o644)
	if err := os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "d", "sub", "g")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var buf bytes.Buffer
	if err := WriteTreeAs(context.Background(), &buf, root, "d", "copy"); err != nil {
		t.Fatal(err)
	}
	var got []string
	tr := tar.NewReader(&buf)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		got = append(got, h.Name+">"+h.Linkname)
	}
	if want := "copy/> copy/f> copy/sub/> copy/sub/g>copy/f"; strings.Join(got, " ") != want {
		t.Errorf("entries %q, want %q", strings.Join(got, " "), want)
	}
}
