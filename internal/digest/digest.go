// Package digest computes many independent SHA-256 streams at once.
//
// hull pull hashes every layer twice, the compressed blob and its
// uncompressed tar stream (the diffID), with about ten layers in flight.
// On CPUs without the SHA extensions crypto/sha256 manages about 12
// cycles per byte, so on a small machine hashing is most of the CPU a pull
// uses. SHA-256 itself is serial within a stream, but independent streams
// can share SIMD registers: an AVX-512 kernel advances 16 streams by one
// block in about the time crypto/sha256 needs for one or two, which gives
// roughly ten times the throughput per core once enough streams are busy.
//
// NewSHA256 returns a hash.Hash whose Write copies the caller's bytes into
// 32 KiB chunks. A full chunk is handed to a process-wide engine
// goroutine, which packs the chunks of up to 16 streams into the kernel's
// lanes, and Write returns without waiting for it to be hashed. A stream
// may have a few chunks queued; beyond that Write waits for the engine, so
// a stream holds at most a few hundred KiB. When few streams are live
// there is nothing to share lanes with, and Write hashes the chunk in the
// caller's goroutine with crypto/sha256 instead. Sum waits until the
// stream's queued chunks are hashed, then hashes the partial last chunk
// and the padding with crypto/sha256. A stream that is dropped without
// Sum costs nothing: the engine finishes the chunks it was given and
// forgets the stream.
//
// Without AVX-512, or with HULL_DIGEST=generic in the environment,
// NewSHA256 returns crypto/sha256.New().
package digest

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"os"
	"runtime"
	"sync"
)

const (
	// chunkSize is the unit handed to the engine. Large enough that the
	// per-chunk locking and lane bookkeeping vanish next to the hashing,
	// small enough that maxQueued of them per stream stay cheap.
	chunkSize   = 32 << 10
	chunkBlocks = chunkSize / 64

	// maxQueued is how many chunks a stream may have waiting in the engine
	// before Write blocks.
	maxQueued = 4
)

// inlineBelow: a chunk is hashed in the caller's goroutine when the stream
// has nothing queued and fewer than this many streams are live (have
// written a whole chunk and are not yet summed), since with one or two
// lanes the 16-lane kernel is mostly idle lanes. Live, not busy: a stream
// whose chunks are hashed inline is never busy, so counting busy streams
// would keep every stream inline and the kernel unused. Tests set it to 0
// to force every chunk through the engine.
var inlineBelow = 3

// NewSHA256 returns a SHA-256 hash.Hash, multi-buffered if the CPU
// allows. Like any hash.Hash it is not safe for concurrent use; separate
// streams may be used from separate goroutines.
func NewSHA256() hash.Hash {
	if !haveKernel || os.Getenv("HULL_DIGEST") == "generic" {
		return sha256.New()
	}
	s := &stream{h: iv}
	s.wait.L = &eng.mu
	return s
}

var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

type chunk = [chunkSize]byte

var chunks = sync.Pool{New: func() any { return new(chunk) }}

// stream is one SHA-256 computation.
type stream struct {
	// Used only by the stream's caller.
	buf  *chunk   // chunk being filled, nil until needed
	nbuf int      // bytes in buf
	n    uint64   // bytes hashed or queued before buf
	gen  *generic // for inline hashing and Sum, allocated on first use

	// Guarded by eng.mu. While q is empty the engine does not touch the
	// stream and h may be used by the caller without the lock.
	h    [8]uint32         // chaining value after the chunks already hashed
	q    [maxQueued]*chunk // chunks waiting for the engine, oldest first
	nq   int
	wait sync.Cond // signalled when a chunk of q has been hashed

	off int // engine goroutine only: bytes of q[0] already hashed

	// live is set while the stream counts in eng.live; a stream dropped
	// without Sum leaves the count when it is garbage collected.
	live *liveMark
}

// liveMark is a stream's place in eng.live (guarded by eng.mu).
type liveMark struct{ on bool }

// goLive counts the stream in eng.live, once.
func (s *stream) goLive() {
	if s.live != nil {
		return
	}
	s.live = &liveMark{on: true}
	eng.mu.Lock()
	eng.live++
	eng.mu.Unlock()
	runtime.AddCleanup(s, func(m *liveMark) { leaveLive(m) }, s.live)
}

// leaveLive takes a stream out of eng.live.
func leaveLive(m *liveMark) {
	if m == nil {
		return
	}
	eng.mu.Lock()
	if m.on {
		m.on = false
		eng.live--
	}
	eng.mu.Unlock()
}

func (s *stream) Size() int      { return sha256.Size }
func (s *stream) BlockSize() int { return sha256.BlockSize }

func (s *stream) Write(p []byte) (int, error) {
	n := len(p)
	if s.live == nil && s.nbuf+len(p) >= chunkSize {
		s.goLive()
	}
	for len(p) > 0 {
		// Whole chunks straight from p when they are hashed inline: no copy.
		if s.nbuf == 0 && len(p) >= chunkSize {
			m := len(p) &^ (chunkSize - 1)
			if s.hashInline(p[:m]) {
				p = p[m:]
				continue
			}
		}
		if s.buf == nil {
			s.buf = chunks.Get().(*chunk)
		}
		c := copy(s.buf[s.nbuf:], p)
		s.nbuf += c
		p = p[c:]
		if s.nbuf == chunkSize {
			if !s.hashInline(s.buf[:]) {
				s.enqueue()
			}
			s.nbuf = 0
		}
	}
	return n, nil
}

// hashInline hashes p (whole blocks) in the calling goroutine if the
// engine has too little work for it to pay off, and reports whether it
// did.
func (s *stream) hashInline(p []byte) bool {
	eng.mu.Lock()
	inline := s.nq == 0 && eng.live < inlineBelow
	eng.mu.Unlock()
	if !inline {
		return false
	}
	if s.gen == nil {
		s.gen = newGeneric()
	}
	s.gen.blocks(&s.h, p)
	s.n += uint64(len(p))
	return true
}

// enqueue hands the full buffer to the engine, waiting while the stream
// already has maxQueued chunks there.
func (s *stream) enqueue() {
	e := &eng
	e.mu.Lock()
	for s.nq == maxQueued {
		s.wait.Wait()
	}
	s.q[s.nq] = s.buf
	s.nq++
	if s.nq == 1 {
		e.busy++
		e.pending = append(e.pending, s)
		if e.idle {
			e.idle = false
			e.wake <- struct{}{}
		}
	}
	e.once.Do(func() { go e.run() })
	e.mu.Unlock()
	s.buf = nil
	s.n += chunkSize
}

// drain waits until the engine has hashed all of the stream's chunks.
func (s *stream) drain() {
	eng.mu.Lock()
	for s.nq > 0 {
		s.wait.Wait()
	}
	eng.mu.Unlock()
}

func (s *stream) Sum(b []byte) []byte {
	s.drain()
	leaveLive(s.live)
	if s.gen == nil {
		s.gen = newGeneric()
	}
	var tail []byte
	if s.buf != nil {
		tail = s.buf[:s.nbuf]
	}
	return s.gen.sum(&s.h, s.n, tail, b)
}

func (s *stream) Reset() {
	s.drain()
	leaveLive(s.live)
	s.live = nil
	s.h = iv
	s.n = 0
	s.nbuf = 0
}

// generic moves a chaining value in and out of a crypto/sha256 digest
// through its marshalled state: "sha\x03", the 8 words big-endian, the
// 64-byte buffer, and the length big-endian.
type generic struct {
	d     hash.Hash
	state []byte
}

const marshaledSize = 4 + 8*4 + 64 + 8

func newGeneric() *generic {
	return &generic{d: sha256.New(), state: make([]byte, 0, marshaledSize)}
}

// load puts chaining value h, after n bytes (a multiple of 64), into g.d.
func (g *generic) load(h *[8]uint32, n uint64) {
	b := append(g.state[:0], "sha\x03"...)
	for _, w := range h {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	b = append(b, make([]byte, 64)...)
	b = binary.BigEndian.AppendUint64(b, n)
	if err := g.d.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		panic("digest: " + err.Error())
	}
	g.state = b
}

// blocks advances h over p, a whole number of blocks.
func (g *generic) blocks(h *[8]uint32, p []byte) {
	g.load(h, 0)
	g.d.Write(p)
	b, err := g.d.(encoding.BinaryAppender).AppendBinary(g.state[:0])
	if err != nil {
		panic("digest: " + err.Error())
	}
	for i := range h {
		h[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
	g.state = b
}

// sum appends the digest of a message whose first n bytes gave chaining
// value h and whose remaining bytes are tail.
func (g *generic) sum(h *[8]uint32, n uint64, tail, b []byte) []byte {
	g.load(h, n)
	g.d.Write(tail)
	return g.d.Sum(b)
}
