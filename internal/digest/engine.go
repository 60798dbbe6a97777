package digest

import "sync"

const lanes = 16

// engine owns the kernel. Its goroutine is started by the first enqueue
// and lives for the process, blocked on wake while there is no work.
type engine struct {
	once sync.Once
	mu   sync.Mutex

	// Guarded by mu.
	pending []*stream // streams with queued chunks that are not in a lane
	busy    int       // streams with queued chunks
	live    int       // streams that have written a chunk and are not summed
	idle    bool      // run is, or is about to be, waiting on wake
	wake    chan struct{}

	// Used only by run.
	lane  [lanes]*stream
	state [8][lanes]uint32
	ptrs  [lanes]*byte
	gen   *generic
}

var eng = engine{wake: make(chan struct{}, 1)}

// dummy is what unused lanes hash; nobody writes it.
var dummy chunk

func (e *engine) run() {
	e.gen = newGeneric()
	e.mu.Lock()
	for {
		// Fill free lanes, oldest waiting stream first.
		active := 0
		for i, s := range e.lane {
			if s == nil && len(e.pending) > 0 {
				s = e.pending[0]
				e.pending[0] = nil // a dropped stream must not stay reachable
				e.pending = e.pending[1:]
				e.lane[i] = s
				for w := range 8 {
					e.state[w][i] = s.h[w]
				}
			}
			if s != nil {
				active++
			}
		}
		if active == 0 {
			e.idle = true
			e.mu.Unlock()
			<-e.wake
			e.mu.Lock()
			continue
		}

		// Run up to the end of the first chunk that runs out. All chunks
		// have the same size, so lanes filled together finish together.
		n := chunkBlocks
		for i, s := range e.lane {
			if s == nil {
				e.ptrs[i] = &dummy[0]
				continue
			}
			e.ptrs[i] = &s.q[0][s.off]
			n = min(n, (chunkSize-s.off)/64)
		}
		e.mu.Unlock()

		if active == 1 {
			// The kernel would be 15/16 idle; crypto/sha256 is as fast.
			for i, s := range e.lane {
				if s != nil {
					e.single(i, s.q[0][s.off:s.off+n*64])
				}
			}
		} else {
			block16(&e.state, &e.ptrs, n)
		}

		e.mu.Lock()
		for i, s := range e.lane {
			if s == nil {
				continue
			}
			s.off += n * 64
			if s.off < chunkSize {
				continue
			}
			chunks.Put(s.q[0])
			copy(s.q[:], s.q[1:s.nq])
			s.nq--
			s.q[s.nq] = nil
			s.off = 0
			s.wait.Broadcast()
			// Give the lane up when the stream is out of chunks, or to
			// another stream's turn so none waits for long.
			if s.nq > 0 && len(e.pending) == 0 {
				continue
			}
			for w := range 8 {
				s.h[w] = e.state[w][i]
			}
			e.lane[i] = nil
			if s.nq > 0 {
				e.pending = append(e.pending, s)
			} else {
				e.busy--
			}
		}
	}
}

// single advances lane i over p with crypto/sha256.
func (e *engine) single(i int, p []byte) {
	var h [8]uint32
	for w := range 8 {
		h[w] = e.state[w][i]
	}
	e.gen.blocks(&h, p)
	for w := range 8 {
		e.state[w][i] = h[w]
	}
}
