package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fuzzOutside is an absolute path the seeds aim at; it must never appear.
const fuzzOutside = "/tmp/hull-fuzz-outside"

// FuzzApply feeds arbitrary layer streams to Apply and checks the one
// property that must hold whatever the input: nothing is written outside
// the unpack root. Errors are fine; panics and escapes are not.
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root (chown, mknod, trusted xattrs)")
	}
	for _, c := range hostileCases() {
		l := makeTar(f, c.hdrs(fuzzOutside)...)
		f.Add(l, false)
		f.Add(gzipBytes(f, l), true)
	}
	f.Add(makeTar(f, hdrDir("d/", 0o755), hdrFile("d/f", 0o644, "f"), hdrFile("d/.wh..wh..opq", 0, ""),
		hdrLink("d/g", "d/f"), hdrFile(".wh.x", 0, "")), false)
	f.Add(zstdBytes(f, makeTar(f, hdrFile("a", 0o4755, "a"), hdrDev(tar.TypeFifo, "p", 0, 0))), true)

	f.Fuzz(func(t *testing.T, layer []byte, deleteMode bool) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		os.MkdirAll(filepath.Join(base, "outside"), 0o755)
		os.WriteFile(filepath.Join(base, "outside/victim"), []byte("original"), 0o644)
		os.Mkdir(root, 0o755)
		before := treeState(t, base, root)
		mode := WhiteoutOverlay
		if deleteMode {
			mode = WhiteoutDelete
		}
		Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{
			Whiteouts: mode, Devices: DevicesReject, Limits: Limits{MaxBytes: 8 << 20, MaxEntries: 10000},
		})
		if after := treeState(t, base, root); !equalStates(before, after) {
			t.Fatalf("outside the root changed:\nbefore %v\nafter  %v", before, after)
		}
		if _, err := os.Lstat(fuzzOutside); err == nil {
			os.RemoveAll(fuzzOutside)
			t.Fatalf("%s created", fuzzOutside)
		}
	})
}
