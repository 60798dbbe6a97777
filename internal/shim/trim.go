package shim

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TrimPages lets go of this process's read-only executable pages that
// start-up touched (for the shim: flag parsing, JSON, opening the log; the
// shim then spends its life in a few small loops, and its resident memory
// stays near that working set; for an idle spare monitor, engine's
// releaseText: the 20 MB hull it would otherwise keep resident). The pages
// stay in the page cache, and come back on their next touch as minor
// faults. Only a static executable is trimmed: its read-only segments
// are never written (no dynamic relocations), so a dropped page comes back
// unchanged from the page cache on its next touch. A dynamically linked
// program's relocated read-only data (RELRO) would be lost this way, so
// nothing is done if any shared object is mapped.
func TrimPages() {
	for _, s := range TextSpans() {
		unix.Syscall(unix.SYS_MADVISE, uintptr(s.Start), uintptr(s.End-s.Start), unix.MADV_DONTNEED)
	}
}

// A Span is one read-only mapping of this process's own executable.
type Span struct{ Start, End uint64 }

// TextSpans lists this process's read-only mappings of its own executable
// (text and read-only data), or nothing unless the executable is static
// (see TrimPages).
func TextSpans() []Span {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var spans []Span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00c2b000 r-xp 00000000 fd:01 123 /path/to/hull-shim
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		path := fields[5]
		if strings.Contains(path, ".so") || strings.Contains(path, "ld-linux") {
			return nil // not static: leave everything alone
		}
		if path != self || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && end > start {
			spans = append(spans, Span{start, end})
		}
	}
	return spans
}
