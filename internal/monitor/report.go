package monitor

import (
	"fmt"
	"io"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The start report is what a monitor tells the command that started it
// (engine.Start, which reads it in Starting.Ready), one line at a time on
// the monitor's descriptor ReportFD, a pipe:
//
//	listening         the attach socket accepts clients (WaitAttach only)
//	ok                the container started
//	error N MESSAGE   it did not: N is the command's exit status (125, or
//	                  126/127 for an entrypoint that cannot be run),
//	                  MESSAGE why, on one line
//
// The pipe closes after "ok" or "error"; closed before, the monitor died.
const (
	ReportFD        = 3
	ReportListening = "listening"
	ReportOK        = "ok"
	ReportError     = "error"
)

// WriteReport writes the report line word (ReportListening, ReportOK).
func WriteReport(w io.Writer, word string) error {
	_, err := fmt.Fprintln(w, word)
	return err
}

// WriteError writes the report of a start that failed with err, the
// command to exit with code.
func WriteError(w io.Writer, code int, err error) error {
	_, werr := fmt.Fprintf(w, "%s %d %s\n", ReportError, code, strings.ReplaceAll(err.Error(), "\n", " "))
	return werr
}

// ReaderGone reports whether w, the report pipe, has no reader left: the
// command that started the monitor has exited (or been killed), so no one
// will read the report, nor attach. False for anything but a pipe.
func ReaderGone(w io.Writer) bool {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	rc.Control(func(fd uintptr) {
		// A pipe's write end polls POLLERR once every read end is closed.
		p := []unix.PollFd{{Fd: int32(fd)}}
		if n, err := unix.Poll(p, 0); err == nil && n > 0 && p[0].Revents&unix.POLLERR != 0 {
			gone = true
		}
	})
	return gone
}

// ParseReport splits a report line into its word and, for ReportError,
// the exit status (125 if it has none) and the message.
func ParseReport(line string) (word string, code int, msg string) {
	word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if word != ReportError {
		return word, 0, ""
	}
	code = 125
	fmt.Sscanf(rest, "%d", &code)
	msg = rest
	if _, after, ok := strings.Cut(rest, " "); ok {
		msg = after
	}
	return word, code, msg
}
