// See hugeheap.go. Linked with -Wl,--wrap=mmap: every call of mmap in the
// binary (the Go runtime's through runtime/cgo, SQLite's) comes here.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

// The mappings marked, for hull_hugeheap_end. The runtime maps its heap
// in steps of 4 MB or more; a process past 64 of them (256 MB and more)
// has settled long before: the rest are not marked.
#define MAXSPANS 64
static struct {
	void *p;
	size_t n;
} spans[MAXSPANS];
static int nspans, ended;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = __real_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED || __atomic_load_n(&ended, __ATOMIC_ACQUIRE))
		return p;
	// The runtime's heap (runtime sysMapOS): fixed, anonymous,
	// read-write, 4 MB or more. Its other mappings are reservations
	// (PROT_NONE), not fixed, or small.
	if (fd == -1 && (flags & (MAP_ANONYMOUS | MAP_FIXED)) == (MAP_ANONYMOUS | MAP_FIXED) &&
	    prot == (PROT_READ | PROT_WRITE) && len >= (4 << 20)) {
		int i = __atomic_fetch_add(&nspans, 1, __ATOMIC_ACQ_REL);
		if (i < MAXSPANS && madvise(p, len, MADV_HUGEPAGE) == 0) {
			spans[i].n = len;
			__atomic_store_n(&spans[i].p, p, __ATOMIC_RELEASE);
		}
	}
	return p;
}

// A process started with _HULL_SMALL_PAGES set (hugeheap.go
// SmallPagesEnv) starts without huge pages: this runs before the Go
// runtime maps its heap.
static void __attribute__((constructor)) hull_hugeheap_init(void)
{
	const char *v = getenv("_HULL_SMALL_PAGES");
	if (v && v[0])
		__atomic_store_n(&ended, 1, __ATOMIC_RELEASE);
}

// hull_hugeheap_end marks the mappings marked so far MADV_NOHUGEPAGE and
// marks no more. It returns how many it unmarked (0 on later calls).
int hull_hugeheap_end(void)
{
	if (__atomic_exchange_n(&ended, 1, __ATOMIC_ACQ_REL))
		return 0;
	int n = __atomic_load_n(&nspans, __ATOMIC_ACQUIRE), done = 0;
	for (int i = 0; i < n && i < MAXSPANS; i++) {
		void *p = __atomic_load_n(&spans[i].p, __ATOMIC_ACQUIRE);
		if (p && madvise(p, spans[i].n, MADV_NOHUGEPAGE) == 0)
			done++;
	}
	return done;
}

// hull_hugeheap_marked is how many mappings were marked (for tests).
int hull_hugeheap_marked(void)
{
	int n = __atomic_load_n(&nspans, __ATOMIC_ACQUIRE);
	return n < MAXSPANS ? n : MAXSPANS;
}
