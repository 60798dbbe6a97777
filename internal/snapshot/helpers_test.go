package snapshot

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// fataler is the part of testing.TB that builders need, so the crash helper
// (no *testing.T there) can use them too.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type panicker struct{}

func (panicker) Helper()                      {}
func (panicker) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (panicker) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

var testTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func hdrDir(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}
}

func hdrFile(name string, mode int64, body string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: testTime,
		PAXRecords: map[string]string{"hull.test.body": body}}
}

func hdrSymlink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}
}

func hdrLink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: testTime}
}

func hdrDev(typ byte, name string, major, minor int64) *tar.Header {
	return &tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: testTime}
}

// makeTar writes headers as a tar stream; a regular file's body rides in
// the test-only PAX record hull.test.body (removed before writing).
func makeTar(t fataler, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h := *h
		var body string
		if h.PAXRecords != nil {
			recs := map[string]string{}
			for k, v := range h.PAXRecords {
				if k == "hull.test.body" {
					body = v
				} else {
					recs[k] = v
				}
			}
			h.PAXRecords = recs
		}
		if len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if body != "" {
			if _, err := tw.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// treeState records everything under dir except the subtree skip, to prove
// an operation changed nothing there.
func treeState(t testing.TB, dir, skip string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := []string{fmt.Sprintf("%o %d %d %d:%d", st.Mode, st.Size, st.Nlink, st.Uid, st.Gid)}
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			desc = append(desc, string(b))
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			desc = append(desc, l)
		}
		state[p] = strings.Join(desc, "|")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, chown, overlay mounts)")
	}
}

// mountT mounts ms on a fresh directory, unmounted when the test ends
// whatever happens.
func mountT(t *testing.T, ms []Mount) string {
	t.Helper()
	target := t.TempDir()
	if err := MountAll(ms, target); err != nil {
		t.Fatalf("mount %+v: %v", ms, err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Errorf("cleanup: %v", err)
			unix.Unmount(target, unix.MNT_DETACH)
		}
	})
	return target
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertMissing(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Lstat(p); err == nil {
		t.Errorf("%s exists, want it gone", p)
	} else if !os.IsNotExist(err) {
		t.Errorf("lstat %s: %v", p, err)
	}
}
