package streams

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LogWriter writes container output in the CRI log format kubelet and
// crictl read: one record per line,
//
//	2026-01-02T15:04:05.999999999Z stdout F the line
//
// with P (partial) for a line split because it was too long or because the
// stream paused mid-line. When the file passes MaxSize it is rotated to
// PATH.1 … PATH.<MaxFiles-1>.
type LogWriter struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	rec      []byte // one record being written, reused: a supervisor that
	// runs with its collector idle must not allocate per line

	// follow: the log has no rotation of its own (maxSize 0), so someone
	// else may rotate it (kubelet renames a CRI container's log, then
	// asks for a reopen): a write checks, at most every followEvery, that
	// path still names the open file, and opens path again if not.
	follow  bool
	checked time.Time
}

// followEvery bounds how long a followed log's writer goes on appending
// to the file kubelet renamed away (which kubelet keeps uncompressed for
// that while, but which `kubectl logs` no longer reads): two stats per
// check, a hundred a second at most while the container writes.
const followEvery = 10 * time.Millisecond

// maxLine bounds one record's payload (kubelet uses 16 KiB).
const maxLine = 16 * 1024

// A container's log rotates at LogMaxSize and keeps LogMaxFiles files: the
// writer (OpenLog's caller) and the reader (OpenLogReader) use the same
// numbers, so that a reader finds every file the writer keeps.
const (
	LogMaxSize  = 10 << 20
	LogMaxFiles = 3
)

// rotatedLog names the i-th older file of the log at path (PATH.i), or
// the live file itself for i = 0.
func rotatedLog(path string, i int) string {
	if i == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// OpenLog opens (appending) the log at path; "" is a log that keeps
// nothing (the none log driver).
func OpenLog(path string, maxSize int64, maxFiles int) (*LogWriter, error) {
	if path == "" {
		return &LogWriter{}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log %s: %w", path, err)
	}
	fi, _ := f.Stat()
	if maxFiles < 1 {
		maxFiles = 1
	}
	return &LogWriter{path: path, f: f, size: fi.Size(), maxSize: maxSize, maxFiles: maxFiles, follow: maxSize <= 0}, nil
}

// Close closes the file.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// write records one (partial or full) line of stream.
func (l *LogWriter) write(stream string, line []byte, partial bool) {
	tag := "F"
	if partial {
		tag = "P"
	}
	if l.path == "" {
		return // keeps nothing
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.follow && now.Sub(l.checked) >= followEvery {
		l.checked = now
		l.reopenIfMoved()
	}
	rec := now.UTC().AppendFormat(l.rec[:0], time.RFC3339Nano)
	rec = append(rec, ' ')
	rec = append(rec, stream...)
	rec = append(rec, ' ')
	rec = append(rec, tag...)
	rec = append(rec, ' ')
	rec = append(rec, line...)
	rec = append(rec, '\n')
	l.rec = rec
	if l.maxSize > 0 && l.size+int64(len(rec)) > l.maxSize && l.size > 0 {
		l.rotate()
	}
	n, _ := l.f.Write(rec)
	l.size += int64(n)
}

// reopenIfMoved opens the log's path again if it no longer names the
// open file (renamed or removed by whoever rotates it).
func (l *LogWriter) reopenIfMoved() {
	cur, err := l.f.Stat()
	if err != nil {
		return
	}
	if fi, err := os.Stat(l.path); err == nil && os.SameFile(fi, cur) {
		return
	}
	// Never through a symbolic link: whoever may write the log's
	// directory could otherwise point the path, between the rotation's
	// rename and this open, at any file to have it appended to.
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return // keep writing where we were
	}
	l.f.Close()
	l.f = f
	l.size = 0
	if fi, err := f.Stat(); err == nil {
		l.size = fi.Size()
	}
}

func (l *LogWriter) rotate() {
	l.f.Close()
	if l.maxFiles <= 1 {
		os.Truncate(l.path, 0)
	} else {
		for i := l.maxFiles - 1; i >= 1; i-- {
			os.Rename(rotatedLog(l.path, i-1), rotatedLog(l.path, i))
		}
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err == nil {
		l.f = f
	}
	l.size = 0
}

// CopyStream splits r into log records for stream and also passes the raw
// bytes to tee (attached clients). It returns when r ends.
func (l *LogWriter) CopyStream(stream string, r io.Reader, tee func([]byte)) {
	br := bufio.NewReaderSize(r, 64*1024)
	// base[:n] holds the start of a line not yet ended; what is logged is
	// shifted out in place, so copying allocates nothing once warm.
	buf := make([]byte, 32*1024)
	base := make([]byte, 0, maxLine+len(buf))
	for {
		n, err := br.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if tee != nil {
				tee(chunk)
			}
			base = append(base, chunk...)
			pending := base
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := bytes.TrimSuffix(pending[:i], []byte("\r"))
				for len(line) > maxLine {
					l.write(stream, line[:maxLine], true)
					line = line[maxLine:]
				}
				l.write(stream, line, false)
				pending = pending[i+1:]
			}
			for len(pending) >= maxLine {
				l.write(stream, pending[:maxLine], true)
				pending = pending[maxLine:]
			}
			base = base[:copy(base, pending)]
		}
		if err != nil {
			if len(base) > 0 {
				l.write(stream, base, false)
			}
			return
		}
	}
}

// Record is one parsed log line.
type Record struct {
	Time    time.Time
	Stream  string // stdout or stderr
	Partial bool
	Line    string
}

// ParseLine parses one CRI log line.
func ParseLine(s string) (Record, error) {
	parts := strings.SplitN(s, " ", 4)
	if len(parts) < 3 {
		return Record{}, fmt.Errorf("malformed log line %q", s)
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return Record{}, fmt.Errorf("malformed log time in %q: %w", s, err)
	}
	r := Record{Time: t, Stream: parts[1], Partial: parts[2] == "P"}
	if len(parts) == 4 {
		r.Line = parts[3]
	}
	return r, nil
}
