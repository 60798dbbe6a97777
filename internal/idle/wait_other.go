//go:build !(cgo && linux && amd64)

package idle

import (
	"golang.org/x/sys/unix"

	"hull/internal/shim"
)

// releaseAndWait without the C part waits in Go, whose runtime maps some
// of the pages back.
func releaseAndWait(_ []shim.Span, fd int) {
	shim.TrimPages()
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(p, -1); err != unix.EINTR {
			return
		}
	}
}

func busy() {}
