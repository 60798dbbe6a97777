package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkApply unpacks gzip layers of incompressible files: the shape of
// the big fixture's layers (192 x 256 KiB), and many small files.
func BenchmarkApply(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	for _, shape := range []struct{ files, size int }{{192, 256 << 10}, {8192, 4 << 10}} {
		b.Run(fmt.Sprintf("%dx%dKiB", shape.files, shape.size>>10), func(b *testing.B) {
			hdrs := []*tar.Header{hdrDir("d/", 0o755)}
			for i := 0; i < shape.files; i++ {
				body := make([]byte, shape.size)
				rng.Read(body)
				hdrs = append(hdrs, hdrFile(fmt.Sprintf("d/%d", i), 0o644, string(body)))
			}
			layer := gzipBytes(b, makeTar(b, hdrs...))
			b.SetBytes(int64(shape.files * shape.size))
			dir := b.TempDir()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				root := filepath.Join(dir, fmt.Sprint(i))
				os.Mkdir(root, 0o755)
				if _, err := Apply(context.Background(), root, bytes.NewReader(layer), ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(root)
				b.StartTimer()
			}
		})
	}
}
