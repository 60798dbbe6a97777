package cri

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// pullMemory returns to the system the memory image pulls took, once the
// last pull under way has ended and a second has passed without another:
// a pull's decompression and digest buffers grow the Go heap by about 10
// MB here (hull-cri's anonymous memory 3.6 MB at start, 13.9 MB after
// the benchmark's two pulls and one pod, 7.2 MB with this), and the
// runtime would keep those pages for later collections and hand them
// back slowly. One forced collection, off every call's path, once per
// burst of pulls.
type pullMemory struct {
	pulling atomic.Int32
	ended   atomic.Int64 // pulls ended, so that a timer knows it is the last's
	// after and free are time.Second and debug.FreeOSMemory (tests set
	// them).
	after time.Duration
	free  func()
}

// start notes a pull beginning; the returned func notes its end.
func (m *pullMemory) start() func() {
	m.pulling.Add(1)
	return func() {
		n := m.ended.Add(1)
		if m.pulling.Add(-1) != 0 {
			return
		}
		after, free := m.after, m.free
		if after == 0 {
			after = time.Second
		}
		if free == nil {
			free = debug.FreeOSMemory
		}
		time.AfterFunc(after, func() {
			if m.pulling.Load() == 0 && m.ended.Load() == n {
				free()
			}
		})
	}
}
