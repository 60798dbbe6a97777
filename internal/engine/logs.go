package engine

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"hull/internal/streams"
)

// LogsOptions select the output Logs returns.
type LogsOptions = streams.LogReadOptions

// LogRecord is one line of a container's output: its time, its stream
// ("stdout" or "stderr") and its text without the newline (a line the log
// split is joined again).
type LogRecord = streams.Record

// LogStream is a container's output as Logs opened it. Next returns the
// records in order, then io.EOF; Close releases it (a follower too).
type LogStream struct {
	*streams.LogReader
	unwatch func()
}

// Close ends the stream.
func (l *LogStream) Close() error {
	l.unwatch()
	return l.LogReader.Close()
}

// Logs opens a container's output: the files its log keeps, then, with
// o.Follow, what its monitor appends until the container has stopped for
// good (its monitor, which supervises restarts too, has exited) or ctx
// ends. o.Stop is the engine's to set. A follower sleeps in inotify and on
// the monitor's pidfd: it reads no record while nothing happens.
func (e *Engine) Logs(ctx context.Context, ref string, o LogsOptions) (*LogStream, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.Config.LogConfig.Type == "none" {
		return nil, ErrLogsUnreadable
	}
	if c.customLog() {
		_, _, o.MaxFiles = e.logSettings(c)
	}
	unwatch := func() {}
	if o.Follow {
		// A start under way has not recorded its monitor yet.
		if c, err = e.getStarted(ctx, c.ID); err != nil {
			return nil, err
		}
		o.Stop, unwatch = monitorExit(c)
	}
	r, err := streams.OpenLogReader(ctx, e.ContainerLogPath(c), o)
	if err != nil {
		unwatch()
		return nil, fmt.Errorf("logs of %s: %w", c.Name, err)
	}
	return &LogStream{LogReader: r, unwatch: unwatch}, nil
}

// monitorExit returns a channel closed once the container's monitor has
// exited (at once if it is not running), and a func that stops watching.
// The monitor exits only after the log's writer has closed it and the
// exit is recorded: after that, nothing is appended.
func monitorExit(c *Container) (<-chan struct{}, func()) {
	done := make(chan struct{})
	if !c.active() || c.MonitorPid <= 0 {
		close(done)
		return done, func() {}
	}
	fd, err := unix.PidfdOpen(c.MonitorPid, unix.PIDFD_NONBLOCK)
	// Opened, the pidfd names that process for good: check that it is
	// still the recorded monitor, not a process that took its pid.
	if err != nil || !c.monitorAlive() {
		if err == nil {
			unix.Close(fd)
		}
		close(done)
		return done, func() {}
	}
	// Non-blocking, the pidfd goes to Go's poller, which wakes the read
	// below when the process exits (POLLIN), or when Close is called.
	f := os.NewFile(uintptr(fd), "pidfd")
	go func() {
		defer close(done)
		rc, err := f.SyscallConn()
		if err != nil {
			return
		}
		rc.Read(func(fd uintptr) bool {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0 || (err != nil && err != unix.EINTR)
		})
	}()
	return done, func() { f.Close() }
}
