package hugeheap

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// vmFlags is the VmFlags line of the mapping of /proc/self/smaps that
// holds addr.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 5 && len(f[1]) == 4 { // a mapping's header
			var lo, hi uintptr
			if n, _ := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); n == 2 {
				in = lo <= addr && addr < hi
				continue
			}
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return ""
}

var sink *[64]byte

// The heap of a process that links this package is on huge pages
// (VmFlags "hg": MADV_HUGEPAGE) until Settle, then marked against them
// ("nh"), so that later growth and khugepaged leave it on small pages.
func TestHeapOnHugePagesUntilSettled(t *testing.T) {
	if marked() == 0 {
		t.Fatal("no heap mapping was marked for huge pages: is mmap wrapped (-Wl,--wrap=mmap)?")
	}
	sink = new([64]byte) // on the heap
	addr := uintptr(unsafe.Pointer(sink))
	before := vmFlags(t, addr)
	Settle()
	after := vmFlags(t, addr)
	if !strings.Contains(before, " hg") {
		t.Errorf("heap mapping before Settle: %s, want hg (MADV_HUGEPAGE)", before)
	}
	if !strings.Contains(after, " nh") || strings.Contains(after, " hg") {
		t.Errorf("heap mapping after Settle: %s, want nh (MADV_NOHUGEPAGE)", after)
	}
	Settle() // a second call does nothing
}
