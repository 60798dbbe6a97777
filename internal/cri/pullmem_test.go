package cri

import (
	"sync/atomic"
	"testing"
	"time"
)

// The memory pulls took is handed back once, after the last of a burst
// of pulls: not while one is under way, not for each.
func TestPullMemoryFreesOnceAfterTheLastPull(t *testing.T) {
	var freed atomic.Int32
	m := &pullMemory{after: 50 * time.Millisecond, free: func() { freed.Add(1) }}
	settle := func() { time.Sleep(300 * time.Millisecond) }

	end1, end2 := m.start(), m.start()
	end1()
	settle()
	if n := freed.Load(); n != 0 {
		t.Fatalf("freed %d times with a pull still under way", n)
	}
	end2()
	settle()
	if n := freed.Load(); n != 1 {
		t.Fatalf("freed %d times after the last pull ended; want 1", n)
	}

	// A pull that starts before the pause after the last one is over
	// puts the release off until it ends too.
	m.after = 200 * time.Millisecond
	end := m.start()
	end()
	end = m.start()
	end()
	time.Sleep(600 * time.Millisecond)
	if n := freed.Load(); n != 2 {
		t.Fatalf("freed %d times in all after a second burst; want 2", n)
	}
}
