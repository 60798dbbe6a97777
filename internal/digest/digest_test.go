package digest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
)

// modes runs f with the default policy and with every chunk forced through
// the engine, however few streams are busy.
func modes(t *testing.T, f func(t *testing.T)) {
	if !haveKernel {
		t.Skip("no AVX-512: NewSHA256 is crypto/sha256")
	}
	t.Run("default", f)
	t.Run("engine", func(t *testing.T) {
		defer func(v int) { inlineBelow = v }(inlineBelow)
		inlineBelow = 0
		f(t)
	})
}

func randBytes(rng *rand.Rand, n int) []byte {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// writeRandom writes data to h in random-sized pieces of at most max
// bytes, scribbling over each piece after Write returns as a caller
// reusing its buffer would.
func writeRandom(rng *rand.Rand, h hash.Hash, data []byte, max int) {
	buf := make([]byte, max)
	for len(data) > 0 {
		n := min(len(data), rng.IntN(max)+1)
		copy(buf, data[:n])
		h.Write(buf[:n])
		for i := range buf[:n] {
			buf[i] = 0xa5
		}
		data = data[n:]
	}
}

func check(t *testing.T, h hash.Hash, data []byte) {
	t.Helper()
	want := sha256.Sum256(data)
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Errorf("len %d: got %x want %x", len(data), got, want)
	}
}

func TestLengths(t *testing.T) {
	modes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 1))
		data := randBytes(rng, 3*chunkSize+300)
		var lengths []int
		for n := range 301 {
			lengths = append(lengths, n)
		}
		for _, c := range []int{chunkSize, 2 * chunkSize, 3 * chunkSize} {
			for n := c - 130; n <= c+130; n++ {
				lengths = append(lengths, n)
			}
		}
		for _, n := range lengths {
			h := NewSHA256()
			h.Write(data[:n])
			check(t, h, data[:n])
		}
	})
}

func TestRandomPieces(t *testing.T) {
	modes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(2, 2))
		for range 20 {
			data := randBytes(rng, rng.IntN(4<<20))
			h := NewSHA256()
			writeRandom(rng, h, data, 1+rng.IntN(200<<10))
			check(t, h, data)
		}
	})
}

func TestConcurrent(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, n := range []int{1, 2, 5, 16, 17, 40} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for i := range n {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(3, uint64(i)))
						data := randBytes(rng, rng.IntN(2<<20))
						h := NewSHA256()
						writeRandom(rng, h, data, 64<<10)
						want := sha256.Sum256(data)
						if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
							errs <- fmt.Errorf("stream %d, len %d: got %x want %x", i, len(data), got, want)
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})
		}
	})
}

// TestAbandon drops streams mid-way, with chunks still queued, while
// others carry on; the engine must drain and go idle without them.
func TestAbandon(t *testing.T) {
	modes(t, func(t *testing.T) {
		before := runtime.NumGoroutine()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(4, uint64(i)))
				data := randBytes(rng, 1<<20+rng.IntN(1<<20))
				h := NewSHA256()
				if i%2 == 0 {
					h.Write(data[:len(data)/2]) // and never Sum
					return
				}
				writeRandom(rng, h, data, 32<<10)
				check(t, h, data)
			})
		}
		wg.Wait()
		deadline := time.Now().Add(5 * time.Second)
		for {
			eng.mu.Lock()
			busy, pending := eng.busy, len(eng.pending)
			eng.mu.Unlock()
			if busy == 0 && pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("engine still has %d busy streams", busy)
			}
			time.Sleep(time.Millisecond)
		}
		// The engine goroutine may have been started by this test.
		if after := runtime.NumGoroutine(); after > before+1 {
			t.Fatalf("%d goroutines before, %d after", before, after)
		}
	})
}

func TestResetSumTwice(t *testing.T) {
	modes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		a := randBytes(rng, 5*chunkSize+77)
		b := randBytes(rng, 3*chunkSize+1)
		h := NewSHA256()
		h.Write(a)
		check(t, h, a)
		check(t, h, a) // Sum does not change the state
		h.Write(b)
		check(t, h, append(a[:len(a):len(a)], b...))
		h.Reset()
		check(t, h, nil)
		h.Write(b)
		check(t, h, b)
		// Reset with chunks still queued.
		h.Write(a)
		h.Reset()
		h.Write(b)
		check(t, h, b)
		if h.Size() != sha256.Size || h.BlockSize() != sha256.BlockSize {
			t.Fatalf("Size %d BlockSize %d", h.Size(), h.BlockSize())
		}
		if got, want := h.Sum([]byte("prefix")), sha256.Sum256(b); !bytes.Equal(got, append([]byte("prefix"), want[:]...)) {
			t.Fatalf("Sum does not append: %x", got)
		}
	})
}

func TestGenericFallback(t *testing.T) {
	t.Setenv("HULL_DIGEST", "generic")
	if got, want := reflect.TypeOf(NewSHA256()), reflect.TypeOf(sha256.New()); got != want {
		t.Fatalf("HULL_DIGEST=generic gave %v, want %v", got, want)
	}
}

// BenchmarkStreams hashes N concurrent 16 MiB streams written in 32 KiB
// pieces; MB/s is the aggregate. BenchmarkStreamsCrypto does the same with
// crypto/sha256. Run with GOMAXPROCS=2 to match a small machine.
func BenchmarkStreams(b *testing.B)       { benchStreams(b, NewSHA256) }
func BenchmarkStreamsCrypto(b *testing.B) { benchStreams(b, sha256.New) }

func benchStreams(b *testing.B, newHash func() hash.Hash) {
	const size = 16 << 20
	for _, n := range []int{1, 2, 4, 8, 10, 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n) * size)
			for b.Loop() {
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						buf := make([]byte, 32<<10)
						for j := range buf {
							buf[j] = byte(i + j)
						}
						h := newHash()
						for range size / len(buf) {
							h.Write(buf)
						}
						h.Sum(nil)
					})
				}
				wg.Wait()
			}
		})
	}
}

// TestLiveStreamsShareTheKernel: a stream counts as live from its first
// whole chunk until Sum, or until it is collected when dropped; with
// enough live streams the chunks go to the engine, not inline, even while
// no stream has a chunk queued there (counting busy streams instead kept
// every stream inline and the kernel idle).
func TestLiveStreamsShareTheKernel(t *testing.T) {
	if !haveKernel {
		t.Skip("no AVX-512: NewSHA256 is crypto/sha256")
	}
	liveNow := func() int {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		return eng.live
	}
	// Streams other tests dropped leave the count as they are collected:
	// let that settle first.
	base := -1
	for i := 0; i < 100 && liveNow() != base; i++ {
		base = liveNow()
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	chunkOf := bytes.Repeat([]byte{7}, chunkSize)
	var hs []hash.Hash
	for range inlineBelow {
		h := NewSHA256()
		h.Write(chunkOf)
		hs = append(hs, h)
	}
	if got := liveNow() - base; got != inlineBelow {
		t.Fatalf("%d live streams, want %d", got, inlineBelow)
	}
	// The next stream's chunk goes to the engine: hashing inline is what
	// gives a stream its crypto/sha256 digest before Sum.
	s := NewSHA256().(*stream)
	s.Write(chunkOf)
	if s.gen != nil {
		t.Fatal("a chunk was hashed inline with enough live streams")
	}
	want := sha256.Sum256(chunkOf)
	if got := s.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("sum %x, want %x", got, want)
	}
	for _, h := range hs[1:] {
		h.Sum(nil)
	}
	if got := liveNow() - base; got != 1 {
		t.Fatalf("%d live streams after Sum, want 1 (the one never summed)", got)
	}
	hs = nil // dropped without Sum: it leaves the count when collected
	deadline := time.Now().Add(5 * time.Second)
	for liveNow() != base {
		if time.Now().After(deadline) {
			t.Fatalf("a dropped stream is still live")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
