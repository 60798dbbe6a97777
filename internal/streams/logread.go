package streams

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// LogReadOptions select what a LogReader returns.
type LogReadOptions struct {
	// Since and Until bound the records' times (zero: no bound); Until is
	// exclusive.
	Since, Until time.Time
	// Tail keeps only the last Tail records of what the files hold when
	// the reader opens them; < 0 keeps all.
	Tail int
	// Stdout and Stderr select the streams; neither set selects both.
	Stdout, Stderr bool
	// Follow goes on, after what the files hold, with what the writer
	// appends, until Stop is closed (then what was written before is
	// still returned) or the reader's context ends.
	Follow bool
	// MaxFiles is the number of files the writer keeps (its max-file);
	// 0: LogMaxFiles.
	MaxFiles int
	Stop     <-chan struct{}
}

// LogReader returns the records of a log that a LogWriter writes, oldest
// first: the rotated files the writer keeps (LogMaxFiles), then the live
// file. Partial records (P) are joined into the line they split. A
// following reader sleeps in inotify on the log's directory: it wakes for
// data appended and for a rotation, never polls.
//
// It is used from one goroutine; Close releases its files and watch.
type LogReader struct {
	ctx     context.Context
	o       LogReadOptions
	path    string
	queue   []Record          // read, not yet returned
	partial map[string]string // per stream, the pieces of a line not ended yet

	// Following: the live file read so far (nil until it exists), the
	// bytes of a record it holds only in part, and the inotify watch.
	live     *os.File
	carry    []byte
	watch    *os.File
	events   chan struct{}
	stopping bool // Stop was closed: read what is left, then end
	done     bool
}

// OpenLogReader opens the log at path (and its rotated files) for reading
// as o says. ctx bounds a following read.
func OpenLogReader(ctx context.Context, path string, o LogReadOptions) (*LogReader, error) {
	r := &LogReader{ctx: ctx, o: o, path: path, partial: map[string]string{}}
	if o.Follow {
		// Watch before reading: what is appended after the read below
		// then wakes the reader.
		if err := r.startWatch(); err != nil {
			return nil, err
		}
	}
	maxFiles := o.MaxFiles
	if maxFiles <= 0 {
		maxFiles = LogMaxFiles
	}
	for i := maxFiles - 1; i >= 0; i-- {
		f, err := os.Open(rotatedLog(path, i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("read container log: %w", err)
		}
		if i == 0 && o.Follow {
			r.live = f
			r.readLive()
			continue
		}
		r.parse(f, true)
		f.Close()
	}
	if o.Tail >= 0 && len(r.queue) > o.Tail {
		r.queue = r.queue[len(r.queue)-o.Tail:]
	}
	return r, nil
}

// Next returns the next record; io.EOF once there is none (and, following,
// once Stop was closed and what was written before is returned), or the
// context's error.
func (r *LogReader) Next() (Record, error) {
	for {
		if len(r.queue) > 0 {
			rec := r.queue[0]
			r.queue = r.queue[1:]
			return rec, nil
		}
		if !r.o.Follow || r.done {
			return Record{}, io.EOF
		}
		if r.readLive() {
			continue
		}
		if r.stopping {
			r.done = true
			continue
		}
		select {
		case <-r.ctx.Done():
			return Record{}, r.ctx.Err()
		case <-r.o.Stop:
			r.stopping = true
		case _, ok := <-r.events:
			if !ok {
				r.events = nil // the watch failed: wait for Stop
			}
		}
	}
}

// Close releases the reader's files and watch.
func (r *LogReader) Close() error {
	if r.live != nil {
		r.live.Close()
		r.live = nil
	}
	if r.watch != nil {
		r.watch.Close() // ends the watch goroutine's read
		r.watch = nil
	}
	return nil
}

// startWatch watches the log's directory: the writer appending to the live
// file (IN_MODIFY) and rotating it (IN_MOVED_*, IN_CREATE of the new one).
// A goroutine turns the events into wake-ups on r.events.
func (r *LogReader) startWatch() error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("watch container log: %w", err)
	}
	dir := filepath.Dir(r.path)
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return fmt.Errorf("watch container log %s: %w", dir, err)
	}
	// Non-blocking, the file goes to Go's poller: Close wakes its read.
	r.watch = os.NewFile(uintptr(fd), "inotify")
	r.events = make(chan struct{}, 1)
	go func(w *os.File, events chan struct{}) {
		defer close(events)
		buf := make([]byte, 4096)
		for {
			if _, err := w.Read(buf); err != nil {
				return
			}
			select {
			case events <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}(r.watch, r.events)
	return nil
}

// readLive reads what was appended to the live file, following it across
// rotations, and reports whether anything was.
func (r *LogReader) readLive() bool {
	progressed := false
	for {
		if r.live == nil {
			f, err := os.Open(r.path)
			if err != nil {
				return progressed // not there yet, or mid-rotation
			}
			r.live, r.carry = f, nil
		}
		// Seen renamed away before the drain, the file the reader holds
		// is complete once drained: the writer closes a file before it
		// renames it.
		cur, err := os.Stat(r.path)
		held, herr := r.live.Stat()
		rotated := err == nil && herr == nil && !os.SameFile(cur, held)
		if herr == nil {
			if off, err := r.live.Seek(0, io.SeekCurrent); err == nil && held.Size() < off {
				r.live.Seek(0, io.SeekStart) // truncated in place (one file kept)
				r.carry = nil
			}
		}
		if r.parse(r.live, false) {
			progressed = true
		}
		if !rotated {
			return progressed
		}
		r.live.Close()
		r.live = nil
	}
}

// parse reads f from where it stands to its end and queues the records it
// completes; whole says f will not grow (a last line without a newline is
// a record), otherwise such bytes are kept for the next read. It reports
// whether it read anything.
func (r *LogReader) parse(f *os.File, whole bool) bool {
	br := bufio.NewReaderSize(f, 64*1024)
	read := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			read = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			r.carry = append(r.carry, line...)
			continue
		}
		if err != nil { // EOF: a record in part, unless the file is whole
			r.carry = append(r.carry, line...)
			if whole && len(r.carry) > 0 {
				r.add(r.carry)
				r.carry = nil
			}
			return read
		}
		if len(r.carry) > 0 {
			r.carry = append(r.carry, line...)
			line = r.carry
		}
		r.add(bytes.TrimSuffix(line, []byte("\n")))
		r.carry = nil
	}
}

// add queues one log line, joining partial records, if the options keep it.
func (r *LogReader) add(line []byte) {
	rec, err := ParseLine(string(line))
	if err != nil {
		return
	}
	if rec.Partial {
		r.partial[rec.Stream] += rec.Line
		return
	}
	if p, ok := r.partial[rec.Stream]; ok {
		rec.Line = p + rec.Line
		delete(r.partial, rec.Stream)
	}
	if r.keep(rec) {
		r.queue = append(r.queue, rec)
	}
}

func (r *LogReader) keep(rec Record) bool {
	o := r.o
	if o.Stdout != o.Stderr && (rec.Stream == "stdout") != o.Stdout {
		return false
	}
	return (o.Since.IsZero() || !rec.Time.Before(o.Since)) && (o.Until.IsZero() || rec.Time.Before(o.Until))
}
