package engine

import "hull/internal/shim"

// releaseText unmaps this process's resident pages of its own binary's
// read-only mappings (text and read-only data): an idle spare monitor kept
// by a long-lived caller (NewSpare) then holds only the memory it wrote
// (its heap, its stacks, the database's), not a resident copy of the 20 MB
// hull (the kernel maps a binary's file pages in large folios, so a Go
// program has nearly all of its text resident within milliseconds). The
// pages stay in the page cache; those the monitor needs once it is handed
// a container fault back in from there. hull-shim does the same after its
// start (shim.TrimPages, which leaves a dynamically linked binary alone).
func releaseText() { shim.TrimPages() }
