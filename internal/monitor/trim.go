package monitor

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimCodePages lets go of the read-only file pages (code and constant data
// of hull and its libraries) that starting the container touched. A monitor
// spends its life in a few small loops (wait, copy output), but the hull
// binary is large and setting a container up touches much of it; dropping
// those mappings keeps each monitor's resident memory near its working set.
// Read-only private file pages are re-read from the page cache on the next
// touch, so this is safe; writable mappings are never touched.
func trimCodePages() {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00c2b000 r-xp 00000000 fd:01 123 /path/to/hull
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
