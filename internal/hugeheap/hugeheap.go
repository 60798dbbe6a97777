// Package hugeheap backs the Go heap of a starting hull process with
// transparent huge pages, and gives that up once the process has settled.
//
// Why: hull's processes are short (a CLI command, a container's first
// process) or start on the path a user waits for (a spare monitor, a
// pod's supervisor). Their Go runtime and package initialisation touch
// 2-3 MB of fresh heap, one 4 KB page fault at a time: about 600 faults,
// 6-12 ms of a 15-25 ms start on the 2-core test VM (whose page faults
// are expensive: its page tables are the hypervisor's). The Go runtime
// never asks for huge pages for the heap, and hosts default to
// transparent huge pages "madvise" (only where asked), so hull asks.
//
// How: this package's C part (hugeheap.c) wraps mmap at link time (the
// -Wl,--wrap=mmap below; the Go runtime of a cgo binary maps memory
// through the C library's mmap, runtime/cgo x_cgo_mmap). A fixed,
// anonymous, read-write mapping of 4 MB or more is what the runtime maps
// for its heap arenas: it is marked MADV_HUGEPAGE, so its first touch
// faults in a 2 MB page. Nothing else changes: a host with huge pages
// "never" (or none free) gives 4 KB pages as before.
//
// Lifecycle: a pod's supervisor, which stays and collects its garbage
// regularly anyway, calls Settle after its first round: the arenas marked
// MADV_NOHUGEPAGE, so that later heap growth takes 4 KB pages and
// khugepaged merges nothing, and the free heap returned, splitting the
// huge pages it covered. A process that waits without allocating (an idle
// spare monitor) calls End only: a forced collection there is one it would
// not otherwise run. (One run by a timer in every process killed a
// container's monitor now and then: TestAttachStreaming's shell was
// stopped with "the container's monitor died unexpectedly" before its
// attach. Not explained yet; no such timer now.) Other processes keep the marks until they exit or
// exec, most within a second; a long-lived command (an attached `run
// -it`, `hull dns`) keeps what its start faulted in, a few MB at most.
//
// The cost: pages of the heap that the runtime holds in use but the
// process never wrote (the rest of a span, a buffer's tail) were faulted
// in with their huge page and stay resident. Measured on the test VM: a
// pod's supervisor keeps 1.5 MB more (7.5 against 6.0 MB anonymous), an
// idle spare monitor 3.5 MB more (5.2 against 1.7). So what is started to
// wait from the start goes without: the CRI server (cmd/hull-cri
// hugeheap.c) and its pool's spares (SmallPagesEnv).
package hugeheap

/*
#cgo LDFLAGS: -Wl,--wrap=mmap
int hull_hugeheap_end(void);
int hull_hugeheap_marked(void);
*/
import "C"

import (
	"os"
	"runtime/debug"
	"sync"
)

// SmallPagesEnv, set in a process's environment, has it start without
// huge pages (a process its starter knows will wait long, idle: a CRI
// server's pooled spare monitor). The process removes it from its own
// environment, so that what it starts starts as usual.
const SmallPagesEnv = "_HULL_SMALL_PAGES"

func init() { os.Unsetenv(SmallPagesEnv) }

var once sync.Once

// Settle ends huge pages for this process's heap and returns its free
// heap to the system (see the package comment). It costs one garbage
// collection, once, and none in a process that started without huge
// pages: later calls do nothing.
func Settle() {
	once.Do(func() {
		if C.hull_hugeheap_end() > 0 {
			debug.FreeOSMemory()
		}
	})
}

// End ends huge pages for this process's heap (the arenas marked
// MADV_NOHUGEPAGE) without a collection: what its start faulted in stays.
func End() { C.hull_hugeheap_end() }

// marked is how many heap mappings were marked for huge pages.
func marked() int { return int(C.hull_hugeheap_marked()) }
