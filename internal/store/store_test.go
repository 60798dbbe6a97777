package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

func digestOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenCreatesOCILayout(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil || !strings.Contains(string(data), `"imageLayoutVersion":"1.0.0"`) {
		t.Fatalf("oci-layout: %q %v", data, err)
	}
	var idx struct {
		SchemaVersion int               `json:"schemaVersion"`
		Manifests     []json.RawMessage `json:"manifests"`
	}
	data, _ = os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(data, &idx); err != nil || idx.SchemaVersion != 2 || idx.Manifests == nil {
		t.Fatalf("index.json %s: %v", data, err)
	}
}

func TestWriteVerifiesAndPublishes(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randomBytes(t, 3<<20)
	d := digestOf(data)
	var last int64
	written, err := s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(data), func(n int64) { last = n })
	if err != nil || !written {
		t.Fatalf("write: written=%v err=%v", written, err)
	}
	if last != int64(len(data)) {
		t.Fatalf("progress ended at %d, want %d", last, len(data))
	}
	got, err := s.ReadAll(d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	written, err = s.Write(context.Background(), d, int64(len(data)), failingReader{}, nil)
	if err != nil || written {
		t.Fatalf("second write should reuse the blob without reading: written=%v err=%v", written, err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestWriteRejectsCorruptContentAndKeepsNothing(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randomBytes(t, 4096)
	d := digestOf(data)
	tampered := append([]byte(nil), data...)
	tampered[100] ^= 1
	_, err := s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(tampered), nil)
	var de *DigestError
	if !errors.As(err, &de) || de.Want != d {
		t.Fatalf("want DigestError for %s, got %v", d, err)
	}
	if !strings.Contains(err.Error(), "tampered") {
		t.Fatalf("message should say what happened: %v", err)
	}
	_, err = s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(data[:100]), nil)
	var se *SizeError
	if !errors.As(err, &se) {
		t.Fatalf("want SizeError for a short blob, got %v", err)
	}
	_, err = s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(append(data, 'x')), nil)
	if !errors.As(err, &se) {
		t.Fatalf("want SizeError for a long blob, got %v", err)
	}
	assertNoBlobsOrTemps(t, s)
}

func assertNoBlobsOrTemps(t *testing.T, s *Store) {
	t.Helper()
	blobs, _ := s.List()
	if len(blobs) != 0 {
		t.Fatalf("blobs visible after failures: %v", blobs)
	}
	ents, _ := os.ReadDir(s.ingestDir())
	for _, e := range ents {
		t.Errorf("leftover in ingest: %s", e.Name())
	}
}

func TestRejectsMalformedDigest(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, d := range []v1.Hash{{Algorithm: "sha256", Hex: "../../etc"}, {Algorithm: "md5", Hex: "00"}, {Algorithm: "sha256", Hex: strings.Repeat("A", 64)}} {
		if _, err := s.Write(context.Background(), d, 0, strings.NewReader(""), nil); err == nil {
			t.Errorf("digest %v accepted", d)
		}
		if _, err := s.Open(d); err == nil {
			t.Errorf("open of digest %v accepted", d)
		}
	}
}

// Concurrent writers of one digest: both succeed, the content is fetched once.
func TestConcurrentWritersStoreOnce(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := randomBytes(t, 1<<20)
	d := digestOf(data)
	var opened atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Each writer uses its own Store, as separate processes would.
			s2, err := Open(s.Dir())
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = s2.WriteFrom(context.Background(), d, int64(len(data)), func() (io.Reader, error) {
				opened.Add(1)
				time.Sleep(50 * time.Millisecond) // hold the lock while others queue
				return bytes.NewReader(data), nil
			}, nil)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("content fetched %d times, want once", n)
	}
	if got, _ := s.ReadAll(d); !bytes.Equal(got, data) {
		t.Fatal("stored content differs")
	}
}

// A writer killed with SIGKILL mid-blob leaves nothing visible, and the next
// Open removes its temp file; the next write completes.
func TestKilledWriterLeavesNothing(t *testing.T) {
	if os.Getenv("HULL_STORE_HELPER") != "" {
		return
	}
	dir := t.TempDir()
	data := randomBytes(t, 2<<20)
	d := digestOf(data)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSlowWriter$")
	cmd.Env = append(os.Environ(), "HULL_STORE_HELPER=1", "HULL_STORE_DIR="+dir, "HULL_STORE_DIGEST="+d.String())
	stdin, _ := cmd.StdinPipe()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	stdin.Write(data[:1<<20]) // half the blob, then the writer blocks
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(dir, "ingest"))
		if hasTemp(ents) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("helper never started writing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Has(d) {
		t.Fatal("partial blob visible after kill")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "ingest"))
	if hasTemp(ents) {
		t.Fatalf("temp file not cleaned: %v", ents)
	}
	if _, err := s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(data), nil); err != nil {
		t.Fatalf("write after crash: %v", err)
	}
}

func hasTemp(ents []os.DirEntry) bool {
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}

// TestHelperSlowWriter is the child of TestKilledWriterLeavesNothing.
func TestHelperSlowWriter(t *testing.T) {
	if os.Getenv("HULL_STORE_HELPER") == "" {
		t.Skip("helper process only")
	}
	s, err := Open(os.Getenv("HULL_STORE_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := v1.NewHash(os.Getenv("HULL_STORE_DIGEST"))
	s.Write(context.Background(), d, 2<<20, os.Stdin, nil)
}

// A full filesystem fails the write with ErrDiskFull and keeps nothing.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 1<<20)
	_, err = s.Write(context.Background(), digestOf(data), int64(len(data)), bytes.NewReader(data), nil)
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("want ErrDiskFull, got %v", err)
	}
	assertNoBlobsOrTemps(t, s)
}

func TestWriteIndexAndList(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := []byte(`{"a":1}`)
	d := digestOf(data)
	if _, err := s.Write(context.Background(), d, int64(len(data)), bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteIndex([]v1.Descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: d, Size: 7,
		Annotations: map[string]string{"org.opencontainers.image.ref.name": "x:1"}}}); err != nil {
		t.Fatal(err)
	}
	index, _ := os.ReadFile(filepath.Join(s.Dir(), "index.json"))
	if !strings.Contains(string(index), d.String()) || !strings.Contains(string(index), "x:1") {
		t.Fatalf("index.json: %s", index)
	}
	blobs, _ := s.List()
	if len(blobs) != 1 || blobs[0].Digest != d || blobs[0].Size != 7 {
		t.Fatalf("list: %v", blobs)
	}
	if err := s.Delete(d); err != nil || s.Has(d) {
		t.Fatalf("delete: %v", err)
	}
}
