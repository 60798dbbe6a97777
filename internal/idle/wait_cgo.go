//go:build cgo && linux && amd64

package idle

/*
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <errno.h>

// sys3 issues a system call with the syscall instruction itself: a libc
// wrapper elsewhere in the text would map another folio back.
static inline long sys3(long n, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static void drop(const uint64_t *spans, int n)
{
	for (int i = 0; i < n; i++)
		sys3(SYS_madvise, (long)spans[2 * i], (long)(spans[2 * i + 1] - spans[2 * i]), MADV_DONTNEED);
}

// busy, once set (hull_idle_busy), ends the drops: the process has work.
static int busy;

static void hull_idle_busy(void)
{
	__atomic_store_n(&busy, 1, __ATOMIC_RELAXED);
}

// hull_release_and_wait drops the pages, and drops them again each time
// its wait for fd times out (after 100 ms, then twice as long each time up
// to 10 s), until the process is busy: see ReleaseAndWait.
static void hull_release_and_wait(const uint64_t *spans, int n, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (long ms = 100;; ms = ms < 5000 ? 2 * ms : 10000) {
		int b = __atomic_load_n(&busy, __ATOMIC_RELAXED);
		if (!b)
			drop(spans, n);
		long r = sys3(SYS_poll, (long)&p, 1, b ? -1 : ms);
		if (r > 0 || (r < 0 && r != -EINTR))
			return;
	}
}
*/
import "C"

import (
	"unsafe"

	"hull/internal/shim"
)

func releaseAndWait(spans []shim.Span, fd int) {
	flat := make([]C.uint64_t, 0, 2*len(spans))
	for _, s := range spans {
		flat = append(flat, C.uint64_t(s.Start), C.uint64_t(s.End))
	}
	var p *C.uint64_t
	if len(flat) > 0 {
		p = (*C.uint64_t)(unsafe.Pointer(&flat[0]))
	}
	C.hull_release_and_wait(p, C.int(len(spans)), C.int(fd))
}

func busy() { C.hull_idle_busy() }
