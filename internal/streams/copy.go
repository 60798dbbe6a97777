package streams

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// UntilDeadline reads f until it ends or, once f's read deadline has
// passed, until what f held at that moment is read: then it ends with
// io.EOF. A read after its deadline fails without looking at the data, so
// a reader that gets to run only after the deadline (a loaded host) would
// otherwise drop output written before it. The deadline is what stops
// waiting for a process left in the background that holds f open; what
// such a process writes later is not waited for.
func UntilDeadline(f *os.File) io.Reader { return &untilDeadline{f: f} }

type untilDeadline struct {
	f    *os.File
	past bool
	left int // bytes f held at the deadline, not read yet
}

func (u *untilDeadline) Read(p []byte) (int, error) {
	if !u.past {
		n, err := u.f.Read(p)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		u.past, u.left = true, buffered(u.f)
		// What is buffered reads without blocking.
		u.f.SetReadDeadline(time.Time{})
		if n > 0 {
			return n, nil
		}
	}
	if u.left <= 0 {
		return 0, io.EOF
	}
	n, err := u.f.Read(p[:min(len(p), u.left)])
	u.left -= n
	return n, err
}

// buffered is how many bytes a pipe, socket or terminal holds for reading
// (TIOCINQ is FIONREAD).
func buffered(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n
}

// CopyBuffered is io.Copy from r, except that a read deadline that ends
// the copy does not lose what r held by then (see UntilDeadline).
func CopyBuffered(w io.Writer, r *os.File) (int64, error) {
	return io.Copy(w, UntilDeadline(r))
}

// EndReadsBy sets the read deadline of every output in files (nil ones
// skipped) to t, the moment copying them may stop once what they hold is
// read (see UntilDeadline). It reports whether every one took it: a file
// in blocking mode cannot.
func EndReadsBy(t time.Time, files ...*os.File) bool {
	ok := true
	for _, f := range files {
		if f != nil && f.SetReadDeadline(t) != nil {
			ok = false
		}
	}
	return ok
}

// AwaitOutputs waits, once a container's process has exited, for the
// copy of its outputs (files) to end: done closes then. A process left in
// the background (in a shared pid namespace, or an outside holder of the
// pipes) can keep them open: from 2 s on, the copy takes only what they
// hold (EndReadsBy), and does not lose that however late it gets to run.
// An output that cannot take a deadline (a terminal in blocking mode, or
// one closed already) is waited for 2 s.
//
// An output that has ended by the exit, as it usually has, is seen
// without blocking: a monitor's goroutine is locked to its main thread,
// and blocking hands its processor to another thread and back, a
// fraction of a millisecond.
func AwaitOutputs(done <-chan struct{}, files ...*os.File) {
	select {
	case <-done:
		return
	default:
	}
	wait := 2 * time.Second
	if EndReadsBy(time.Now().Add(wait), files...) {
		wait = 30 * time.Second // only if a copy is stuck writing
	}
	select {
	case <-done:
	case <-time.After(wait):
	}
}
