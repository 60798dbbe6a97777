package engine

import (
	"time"

	"hull/internal/hugeheap"
	"hull/internal/idle"
)

// idleTextRelease is how long a spare that starts its container's
// process on the spec (NewSpare) waits for one before it releases its
// text (releaseText). A spare bound soon after its start, as a `hull
// kube` supervisor's is (its spec comes tens of milliseconds later),
// keeps the pages: faulting them back in cost its container's start
// about 10 ms on the 2-core test VM (bench/kube.sh, docs/kube.md
// "Benchmark"). A pool's idle spare still holds only what it wrote after
// that.
const idleTextRelease = 2 * time.Second

// releaseText unmaps this process's resident pages of its own binary's
// read-only mappings (text and read-only data) and waits, unmapping them
// again now and then, for the spare's first message (idle.ReleaseAndWait):
// an idle spare monitor kept by a long-lived caller (NewSpare) then holds
// only the memory it wrote (its heap, its stacks, the database's), not a
// resident copy of the 20 MB hull, which its Go runtime would map back
// within a millisecond of an ordinary return (the kernel maps a binary's
// page cache in folios of up to 2 MB). The pages stay in the page cache;
// those the monitor needs once it is handed a container fault back in from
// there. hull-shim drops its own after its start (shim.TrimPages). Its
// heap's huge pages, if it started with them, end first (hugeheap.End: no
// collection, which a waiting spare does not otherwise run).
func releaseText() {
	hugeheap.End()
	idle.ReleaseAndWait(SpareMonitorFD)
}

// stopReleasingText ends releaseText's drops (idle.Busy): the spare has
// its first message, and work.
func stopReleasingText() { idle.Busy() }
