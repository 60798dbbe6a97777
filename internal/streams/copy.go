package streams

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// CopyBuffered is io.Copy from r, except that a read deadline that ends
// the copy does not lose what r already holds: that is copied too. A read
// after its deadline fails without looking at the data, so a copier that
// gets to run only after the deadline (a loaded host) would drop output a
// process wrote before it exited. The deadline is what stops waiting for
// a process left in the background that holds r open.
func CopyBuffered(w io.Writer, r *os.File) (int64, error) {
	n, err := io.Copy(w, r)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	rc, err := r.SyscallConn()
	if err != nil {
		return n, err
	}
	for {
		avail := 0
		rc.Control(func(fd uintptr) { avail, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		if avail <= 0 {
			return n, nil
		}
		// What is buffered (TIOCINQ is FIONREAD) reads without blocking.
		r.SetReadDeadline(time.Time{})
		m, err := io.CopyN(w, r, int64(avail))
		n += m
		if err != nil {
			return n, err
		}
	}
}
