// Package idle lets a long-waiting process give back its executable's
// pages and keep them given back until it has work again.
//
// An idle spare monitor (a hull process a CRI server keeps ready for its
// next container) needs none of hull's 20 MB of text and read-only data
// while it waits, yet it keeps them mapped: the kernel holds an
// executable's page cache in large folios (up to 2 MB) and maps a whole
// folio when one of its pages is touched, so the few runtime functions a
// Go process runs after it drops its pages (returning from the call, the
// scheduler parking its thread) map most of them back within a
// millisecond. ReleaseAndWait therefore drops the pages and waits in one C
// function whose instructions issue the system calls themselves.
//
// The process's other threads still run after the drop, though: sysmon
// takes the P of the thread now blocked in C, polls the network and checks
// timers and GC for some milliseconds before it sleeps (for a minute at a
// time), and another thread may pick up the P. One read of sysmon's (of
// runtime/cgo's _cgo_yield, in .rodata) maps a 2 MB folio of read-only
// data back, so how much comes back after one drop depends on how the
// binary's page cache happens to be split into folios: measured, 1 MB of
// hull's 20 MB with small folios, 4.5 to 5 MB with 2 MB ones. So the wait
// times out and drops the pages again, 100 ms after the first drop and
// then at longer intervals, of 10 s at most: between drops, the process
// holds the one folio of the C function and whatever its runtime's rare
// wake-ups have touched since the last drop.
package idle

import "hull/internal/shim"

// ReleaseAndWait drops this process's resident pages of its own static
// executable's read-only mappings (shim.TextSpans) and returns once fd is
// readable or at its end (its next message, or its writer gone), dropping
// them again each time the wait times out (see above) until Busy. The
// pages fault back in from the page cache as the process runs again.
// Other goroutines may run meanwhile; only the calling one waits. Where
// the C part is not built (no cgo, not amd64), it waits in Go, and the
// runtime maps some of the pages back.
func ReleaseAndWait(fd int) {
	releaseAndWait(shim.TextSpans(), fd)
}

// Busy ends the drops of this process's ReleaseAndWait, waiting or still
// to come: the process has work. Its fd's message may have been read by
// another goroutine before the wait saw it (an idle spare monitor reads
// its messages in Go meanwhile), and the wait then goes on until the next
// message or fd's end; it should not drop the pages that work needs
// meanwhile.
func Busy() { busy() }
