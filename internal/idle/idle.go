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
// function whose instructions issue the system calls themselves: from the
// drop until there is work, this process touches one folio of its text.
package idle

import "hull/internal/shim"

// ReleaseAndWait drops this process's resident pages of its own static
// executable's read-only mappings (shim.TextSpans) and returns once fd is
// readable or at its end (its next message, or its writer gone). The
// pages fault back in from the page cache as the process runs again.
// Other goroutines may run meanwhile; only the calling one waits. Where
// the C part is not built (no cgo, not amd64), it waits in Go, and the
// runtime maps some of the pages back.
func ReleaseAndWait(fd int) {
	releaseAndWait(shim.TextSpans(), fd)
}
