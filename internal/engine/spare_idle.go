package engine

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseText unmaps this process's resident pages of its own binary's
// read-only mappings (text and read-only data): an idle spare monitor kept
// by a long-lived caller (NewSpare) then holds only the memory it wrote
// (its heap, its stacks, the database's), not a resident copy of the 20 MB
// hull (the kernel maps a binary's file pages in large folios, so a Go
// program has nearly all of its text resident within milliseconds). The
// pages stay in the page cache; those the monitor needs once it is handed
// a container fault back in from there (minor faults). Only mappings
// never written are released: MADV_DONTNEED on a private mapping
// discards its changes.
func releaseText() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	var ranges [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "start-end perms offset dev inode path"
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || (fields[1] != "r-xp" && fields[1] != "r--p") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if ok && err1 == nil && err2 == nil && end > start {
			ranges = append(ranges, [2]uintptr{uintptr(start), uintptr(end)})
		}
	}
	for _, r := range ranges {
		unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
}
