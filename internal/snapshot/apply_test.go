package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestApplyEntryTypes(t *testing.T) {
	requireRoot(t)
	capability := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" // cap_net_bind_service+ep
	suid := hdrFile("bin/ping", 0o4755, "#!/bin/true\n")
	suid.Uid, suid.Gid = 0, 0
	suid.PAXRecords["SCHILY.xattr.security.capability"] = capability
	suid.PAXRecords["SCHILY.xattr.user.note"] = "hello"
	owned := hdrFile("home/u/file", 0o2640, "owned")
	owned.Uid, owned.Gid = 1000, 1001
	tmpDir := hdrDir("tmp/", 0o1777)
	link := hdrSymlink("home/u/link", "../../bin/ping")
	link.Uid, link.Gid = 1000, 1001
	layer := makeTar(t,
		hdrDir("./", 0o755),
		hdrDir("bin/", 0o755),
		suid,
		hdrDir("home/", 0o755),
		hdrDir("home/u/", 0o700),
		owned,
		link,
		hdrLink("bin/ping2", "bin/ping"),
		hdrDev(tar.TypeChar, "dev/null", 1, 3),
		hdrDev(tar.TypeBlock, "dev/loop0", 7, 0),
		hdrDev(tar.TypeFifo, "run/fifo", 0, 0),
		tmpDir,
		hdrFile("tmp/x", 0o644, "x"), // written after tmp/: tmp's mtime is fixed up later
	)
	for _, c := range []struct {
		name string
		blob []byte
	}{{"tar", layer}, {"gzip", gzipBytes(t, layer)}, {"zstd", zstdBytes(t, layer)}} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			res, err := Apply(context.Background(), root, bytes.NewReader(c.blob), ApplyOptions{DiffID: digestOf(layer)})
			if err != nil {
				t.Fatal(err)
			}
			if res.DiffID != digestOf(layer) || res.Bytes != int64(len(layer)) || res.Entries != 13 {
				t.Errorf("result %+v", res)
			}
			var st unix.Stat_t
			stat := func(rel string) unix.Stat_t {
				t.Helper()
				if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
					t.Fatal(err)
				}
				return st
			}
			if s := stat("bin/ping"); s.Mode&0o7777 != 0o4755 || s.Nlink != 2 || s.Mtim.Sec != testTime.Unix() {
				t.Errorf("bin/ping mode %o nlink %d mtime %d", s.Mode&0o7777, s.Nlink, s.Mtim.Sec)
			}
			if s := stat("home/u/file"); s.Mode&0o7777 != 0o2640 || s.Uid != 1000 || s.Gid != 1001 {
				t.Errorf("home/u/file mode %o owner %d:%d", s.Mode&0o7777, s.Uid, s.Gid)
			}
			if s := stat("home/u/link"); s.Mode&unix.S_IFMT != unix.S_IFLNK || s.Uid != 1000 {
				t.Errorf("home/u/link mode %o uid %d", s.Mode, s.Uid)
			}
			if l, _ := os.Readlink(filepath.Join(root, "home/u/link")); l != "../../bin/ping" {
				t.Errorf("link target %q", l)
			}
			if s := stat("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(s.Rdev) != 1 || unix.Minor(s.Rdev) != 3 {
				t.Errorf("dev/null mode %o rdev %d", s.Mode, s.Rdev)
			}
			if s := stat("dev/loop0"); s.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(s.Rdev) != 7 {
				t.Errorf("dev/loop0 mode %o rdev %d", s.Mode, s.Rdev)
			}
			if s := stat("run/fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
				t.Errorf("run/fifo mode %o", s.Mode)
			}
			if s := stat("tmp"); s.Mode&0o7777 != 0o1777 || s.Mtim.Sec != testTime.Unix() {
				t.Errorf("tmp mode %o mtime %d (want %d: set after its contents)", s.Mode&0o7777, s.Mtim.Sec, testTime.Unix())
			}
			buf := make([]byte, 64)
			n, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), "security.capability", buf)
			if err != nil || string(buf[:n]) != capability {
				t.Errorf("security.capability = %q, %v", buf[:n], err)
			}
			n, err = unix.Lgetxattr(filepath.Join(root, "bin/ping"), "user.note", buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Errorf("user.note = %q, %v", buf[:n], err)
			}
			if got := readFile(t, filepath.Join(root, "bin/ping2")); got != "#!/bin/true\n" {
				t.Errorf("hardlink content %q", got)
			}
		})
	}
}

func TestApplyDiffIDMismatch(t *testing.T) {
	layer := makeTar(t, hdrFile("a", 0o644, "a"))
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(gzipBytes(t, layer)),
		ApplyOptions{DiffID: digestOf([]byte("something else"))})
	var de *DiffIDError
	if !errors.As(err, &de) || de.Got != digestOf(layer) {
		t.Fatalf("err = %v, want a DiffIDError naming %s", err, digestOf(layer))
	}
}

func TestApplyWhiteoutModes(t *testing.T) {
	requireRoot(t)
	layer := makeTar(t,
		hdrDir("d/", 0o755),
		hdrFile("d/new", 0o644, "new"),
		hdrFile("d/.wh..wh..opq", 0o644, ""),
		hdrFile("e/.wh.gone", 0o644, ""),
	)
	t.Run("overlay", func(t *testing.T) {
		root := t.TempDir()
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "e/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("e/gone is not a 0/0 whiteout: mode %o rdev %d err %v", st.Mode, st.Rdev, err)
		}
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(root, "d"), "trusted.overlay.opaque", buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("d opaque xattr = %q, %v", buf[:n], err)
		}
		if readFile(t, filepath.Join(root, "d/new")) != "new" {
			t.Error("d/new lost")
		}
	})
	t.Run("delete", func(t *testing.T) {
		root := t.TempDir()
		for _, p := range []string{"d/old/deep", "e"} {
			os.MkdirAll(filepath.Join(root, p), 0o755)
		}
		os.WriteFile(filepath.Join(root, "d/oldfile"), nil, 0o644)
		os.WriteFile(filepath.Join(root, "e/gone"), nil, 0o644)
		os.WriteFile(filepath.Join(root, "e/kept"), nil, 0o644)
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{Whiteouts: WhiteoutDelete}); err != nil {
			t.Fatal(err)
		}
		assertMissing(t, filepath.Join(root, "d/old"))
		assertMissing(t, filepath.Join(root, "d/oldfile"))
		assertMissing(t, filepath.Join(root, "e/gone"))
		if readFile(t, filepath.Join(root, "d/new")) != "new" {
			t.Error("d/new lost")
		}
		if _, err := os.Stat(filepath.Join(root, "e/kept")); err != nil {
			t.Error(err)
		}
	})
}

// hostileCase is a layer that tries to reach outside the unpack root. base
// is the test's directory: the root is base/root, and base/outside holds a
// victim file and directory that must come through untouched.
type hostileCase struct {
	name string
	hdrs func(base string) []*tar.Header
	// errHas, if set, is what the error must say (besides the entry name);
	// otherwise the layer must apply, neutralized.
	errHas  string
	errName string // the entry the error must name
}

func hostileCases() []hostileCase {
	out := func(base string) string { return base + "/outside" }
	return []hostileCase{
		{name: "dotdot-file", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrFile("../../outside/pwned", 0o644, "pwned"), hdrFile("a/../../../outside/victim", 0o644, "pwned")}
		}},
		{name: "absolute-file", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrFile(out(b)+"/victim", 0o644, "pwned"), hdrFile("/outside/pwned", 0o644, "pwned")}
		}},
		{name: "symlink-absolute-dir", errHas: "does not resolve to a directory", errName: "evil/pwned", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("evil", out(b)), hdrFile("evil/pwned", 0o644, "pwned")}
		}},
		{name: "symlink-relative-dir", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("up", "../../.."), hdrFile("up/outside/victim", 0o644, "pwned"), hdrSymlink("sub/up2", "../../outside"), hdrFile("sub/up2/victim", 0o644, "pwned")}
		}},
		{name: "symlink-chain", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrDir("b/", 0o755), hdrSymlink("a", "b/../../.."), hdrFile("a/outside/victim", 0o644, "pwned")}
		}},
		{name: "symlink-loop", errHas: "too many levels of symbolic links", errName: "a/x", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("a", "b"), hdrSymlink("b", "a"), hdrFile("a/x", 0o644, "pwned")}
		}},
		{name: "file-replaces-symlink", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("link", out(b)+"/victim"), hdrFile("link", 0o644, "pwned")}
		}},
		{name: "dir-replaced-by-symlink", errHas: "does not resolve to a directory", errName: "d/g", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrDir("d/", 0o755), hdrFile("d/f", 0o644, "f"), hdrSymlink("d", out(b)), hdrFile("d/g", 0o644, "pwned")}
		}},
		{name: "hardlink-dotdot", errHas: "not in this layer", errName: "hl", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrLink("hl", "../../outside/victim")}
		}},
		{name: "hardlink-absolute", errHas: "not in this layer", errName: "hl", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrLink("hl", out(b)+"/victim")}
		}},
		{name: "hardlink-through-symlink", errHas: "hardlink target", errName: "hl", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("evil", out(b)), hdrLink("hl", "evil/victim")}
		}},
		{name: "hardlink-to-symlink-then-write", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("s", out(b)+"/victim"), hdrLink("h", "s"), hdrFile("h", 0o644, "pwned"), hdrFile("s", 0o644, "pwned")}
		}},
		{name: "whiteout-dotdot", errHas: "whiteout", errName: "dir/.wh..", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrDir("dir/", 0o755), hdrFile("dir/.wh..", 0o644, "")}
		}},
		{name: "whiteout-escape", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrFile("../outside/.wh.victim", 0o644, ""), hdrFile("../../.wh.outside", 0o644, ""), hdrFile(out(b)+"/.wh.victim", 0o644, "")}
		}},
		{name: "whiteout-through-symlink", errHas: "does not resolve to a directory", errName: "evil/.wh.victim", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("evil", out(b)), hdrFile("evil/.wh.victim", 0o644, "")}
		}},
		{name: "opaque-through-symlink", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrSymlink("evil", "../.."), hdrFile("evil/.wh..wh..opq", 0o644, "")}
		}},
		{name: "device-node", errHas: "device node 8:0 not allowed", errName: "dev/sda", hdrs: func(b string) []*tar.Header {
			return []*tar.Header{hdrDev(tar.TypeBlock, "dev/sda", 8, 0)}
		}},
		{name: "overlay-xattr-injection", hdrs: func(b string) []*tar.Header {
			f := hdrFile("f", 0o644, "x")
			f.PAXRecords["SCHILY.xattr.trusted.overlay.redirect"] = "/../outside"
			f.PAXRecords["SCHILY.xattr.trusted.overlay.opaque"] = "y"
			return []*tar.Header{f}
		}},
	}
}

func TestHostileLayersStayInside(t *testing.T) {
	requireRoot(t)
	for _, c := range hostileCases() {
		for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete} {
			t.Run(c.name+map[WhiteoutMode]string{WhiteoutOverlay: "/overlay", WhiteoutDelete: "/delete"}[mode], func(t *testing.T) {
				base := t.TempDir()
				root := filepath.Join(base, "root")
				os.MkdirAll(filepath.Join(base, "outside/dir"), 0o755)
				os.WriteFile(filepath.Join(base, "outside/victim"), []byte("original"), 0o644)
				os.Mkdir(root, 0o755)
				before := treeState(t, base, root)

				layer := makeTar(t, c.hdrs(base)...)
				_, err := Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{Whiteouts: mode, Devices: DevicesReject})

				if after := treeState(t, base, root); !equalStates(before, after) {
					t.Errorf("outside the root changed:\nbefore %v\nafter  %v", before, after)
				}
				for _, p := range []string{"/outside/pwned", "/outside/victim"} {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("%s created", p)
					}
				}
				if c.errHas == "" {
					if err != nil {
						t.Fatalf("want the layer neutralized, got %v", err)
					}
					if _, err := unix.Lgetxattr(filepath.Join(root, "f"), "trusted.overlay.redirect", nil); err == nil {
						t.Error("trusted.overlay.redirect from the layer was applied")
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), c.errHas) || !strings.Contains(err.Error(), `"`+c.errName+`"`) {
					t.Fatalf("err = %v, want one naming %q and saying %q", err, c.errName, c.errHas)
				}
			})
		}
	}
}

func equalStates(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDecompressionBombs(t *testing.T) {
	zeros := make([]byte, 16<<20)
	huge := &tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: 1 << 42, Mode: 0o644}
	var many []*tar.Header
	for i := 0; i < 2000; i++ {
		many = append(many, hdrFile("f"+formatName(i), 0o644, "x"))
	}
	trailing := append(makeTar(t, hdrFile("a", 0o644, "a")), zeros...)
	cases := []struct {
		name     string
		blob     []byte
		limits   Limits
		what     string
		entry    string
		absent   string
		headerOK bool
	}{
		{name: "content", blob: gzipBytes(t, append(makeTarHeaderOnly(t, "big", int64(len(zeros))), zeros...)), limits: Limits{MaxBytes: 1 << 20}, what: "uncompressed size", entry: "big", absent: "big"},
		{name: "header-claims-4TiB", blob: makeTarHeaderOnly(t, "huge", huge.Size), what: "uncompressed size", entry: "huge", absent: "huge"},
		{name: "trailing-zeros", blob: zstdBytes(t, trailing), limits: Limits{MaxBytes: 1 << 20}, what: "uncompressed size"},
		{name: "entries", blob: gzipBytes(t, makeTar(t, many...)), limits: Limits{MaxEntries: 1000}, what: "entry count", entry: "f1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			_, err := Apply(context.Background(), root, bytes.NewReader(c.blob), ApplyOptions{Limits: c.limits})
			var le *LimitError
			if !errors.As(err, &le) || le.What != c.what {
				t.Fatalf("err = %v, want a %s LimitError", err, c.what)
			}
			if c.what == "uncompressed size" && !strings.Contains(err.Error(), "[storage] max_layer_size") {
				t.Errorf("error %q does not name the setting that raises the limit", err)
			}
			if c.entry != "" && !strings.Contains(err.Error(), `"`+c.entry+`"`) {
				t.Errorf("error %q does not name entry %q", err, c.entry)
			}
			if c.absent != "" {
				assertMissing(t, filepath.Join(root, c.absent))
			}
		})
	}
}

func formatName(i int) string {
	return strings.TrimLeft(string([]byte{byte('0' + i/1000%10), byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)}), "0")
}

// makeTarHeaderOnly is a tar header for a file of size bytes, without the
// contents: what a bomb sends ahead of (or instead of) its payload.
func makeTarHeaderOnly(t testing.TB, name string, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	return buf.Bytes()
}

// A sparse file is a few stream bytes that expand to its whole size; the
// expansion counts against MaxBytes too, though its holes take no disk.
func TestSparseBomb(t *testing.T) {
	var stream []byte
	for i := 1; i <= 3; i++ {
		name := "sparse" + formatName(i)
		// PAX sparse format 1.0: the data starts with the map (one region
		// of 1 byte at offset 0) padded to a block, then the region's bytes.
		data := make([]byte, 513)
		copy(data, "1\n0\n1\n")
		data[512] = 'x'
		pax := paxRecords(map[string]string{
			"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name, "GNU.sparse.realsize": "700000",
		})
		stream = append(stream, rawTarEntry("PaxHeaders/"+name, 'x', pax)...)
		stream = append(stream, rawTarEntry("GNUSparseFile.0/"+name, '0', data)...)
	}
	stream = append(stream, make([]byte, 1024)...)
	root := t.TempDir()
	_, err := Apply(context.Background(), root, bytes.NewReader(stream), ApplyOptions{Limits: Limits{MaxBytes: 1 << 20}})
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), `"sparse2"`) {
		t.Fatalf("err = %v, want a size LimitError at sparse2 (2 x 700000 expanded bytes > 1 MiB)", err)
	}
	if st, err := os.Stat(filepath.Join(root, "sparse1")); err != nil || st.Size() != 700000 {
		t.Errorf("sparse1 not expanded to its real size: %v", err)
	}
}

// A sparse entry's holes stay holes: a layer of a few KiB must not become
// hundreds of MiB of disk blocks. Each file reads back whole, at its full
// size, and that full size is what ContentBytes (and so the limits) count.
func TestSparseFileKeepsHoles(t *testing.T) {
	const hole = 300 << 20
	files := []struct {
		name    string
		size    int64
		regions []sparseRegion
		gnu     bool // old GNU format (type 'S') rather than PAX 1.0
	}{
		{name: "holey", size: hole + 2*holeBlock, regions: []sparseRegion{{0, strings.Repeat("h", 5000)}, {hole + 8192, "middle"}, {hole + 2*holeBlock - 4, "tail"}}},
		{name: "ends-in-hole", size: hole, regions: []sparseRegion{{0, "x"}}},
		{name: "gnu", size: hole + 3, regions: []sparseRegion{{4096, "gnu"}, {hole, "end"}}, gnu: true},
	}
	var stream []byte
	var logical int64
	for _, f := range files {
		if f.gnu {
			stream = append(stream, gnuSparseEntry(f.name, f.size, f.regions)...)
		} else {
			stream = append(stream, paxSparseEntry(f.name, f.size, f.regions)...)
		}
		logical += f.size
	}
	stream = append(stream, make([]byte, 1024)...)
	if len(stream) > 32<<10 {
		t.Fatalf("the layer is %d bytes; it should be a few KiB", len(stream))
	}
	root := t.TempDir()
	res, err := Apply(context.Background(), root, bytes.NewReader(gzipBytes(t, stream)), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ContentBytes != logical {
		t.Errorf("ContentBytes = %d, want the files' full sizes, %d", res.ContentBytes, logical)
	}
	for _, f := range files {
		p := filepath.Join(root, f.name)
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Size != f.size {
			t.Errorf("%s: size %d, want %d", f.name, st.Size, f.size)
		}
		if alloc := st.Blocks * 512; alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated for %d small regions of data: its holes were written", f.name, alloc, len(f.regions))
		}
		checkSparseContents(t, p, f.size, f.regions)
	}
}

type sparseRegion struct {
	off  int64
	data string
}

// checkSparseContents reads the file at p and checks that it holds the
// regions at their offsets and zeros everywhere else.
func checkSparseContents(t *testing.T, p string, size int64, regions []sparseRegion) {
	t.Helper()
	want := func(off int64, b []byte) {
		clear(b)
		for _, r := range regions {
			lo, hi := max(r.off, off), min(r.off+int64(len(r.data)), off+int64(len(b)))
			if lo < hi {
				copy(b[lo-off:hi-off], r.data[lo-r.off:hi-r.off])
			}
		}
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, exp := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(f, got)
		want(off, exp[:n])
		if !bytes.Equal(got[:n], exp[:n]) {
			t.Fatalf("%s: contents differ in [%d, %d)", p, off, off+int64(n))
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if off != size {
		t.Fatalf("%s: read %d bytes, want %d", p, off, size)
	}
}

// paxSparseEntry is a file in GNU tar's PAX sparse format 1.0 (what
// `tar --sparse --format=pax` writes; archive/tar reads it but cannot
// write it): the data starts with the map (region count, then offset and
// length of each) padded to a block, then the regions' bytes.
func paxSparseEntry(name string, size int64, regions []sparseRegion) []byte {
	m := strconv.Itoa(len(regions)) + "\n"
	var data []byte
	for _, r := range regions {
		m += fmt.Sprintf("%d\n%d\n", r.off, len(r.data))
		data = append(data, r.data...)
	}
	body := append(make([]byte, 0, len(m)+511+len(data)), m...)
	body = append(body, make([]byte, (512-len(m)%512)%512)...)
	body = append(body, data...)
	pax := paxRecords(map[string]string{
		"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name, "GNU.sparse.realsize": strconv.FormatInt(size, 10),
	})
	out := rawTarEntry("PaxHeaders/"+name, 'x', pax)
	return append(out, rawTarEntry("GNUSparseFile.0/"+name, '0', body)...)
}

// gnuSparseEntry is a file in the old GNU sparse format (type 'S', what
// `tar --sparse` writes by default): up to four regions mapped in the
// header itself, and the full size in its realsize field.
func gnuSparseEntry(name string, size int64, regions []sparseRegion) []byte {
	var data []byte
	for _, r := range regions {
		data = append(data, r.data...)
	}
	e := rawTarEntry(name, 'S', data)
	h := e[:512]
	copy(h[257:], "ustar  \x00") // GNU magic and version
	for i, r := range regions {
		copy(h[386+24*i:], fmt.Sprintf("%011o\x00", r.off))
		copy(h[386+24*i+12:], fmt.Sprintf("%011o\x00", len(r.data)))
	}
	copy(h[483:], fmt.Sprintf("%011o\x00", size))
	tarChecksum(h)
	return e
}

func paxRecords(recs map[string]string) []byte {
	var out []byte
	for k, v := range recs {
		rec := " " + k + "=" + v + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		out = append(out, strconv.Itoa(n)+rec...)
	}
	return out
}

// rawTarEntry is a ustar header block for typ with body, and the body
// padded to a block: for entries archive/tar will not write.
func rawTarEntry(name string, typ byte, body []byte) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", len(body)))
	copy(h[136:], "00000000000\x00")
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	tarChecksum(h)
	padded := make([]byte, (len(body)+511)/512*512)
	copy(padded, body)
	return append(h, padded...)
}

// tarChecksum sets the checksum of the header block h.
func tarChecksum(h []byte) {
	copy(h[148:], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
}
