package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/monitor"
	"hull/internal/shim"
	"hull/internal/trace"
)

// A stop used to return once the container's monitor had recorded the
// exit. A detached container's monitor is then hull-shim, which records
// nothing itself: it execs hull back, which starts its Go runtime, opens
// the database, deletes the runtime state and records (60-130 ms from the
// signal under load, the whole of a CRI StopContainer). So the stopper,
// whose engine is open already, records the exit itself: the shim leaves
// it in the exit file (shim.WriteExit) once it has reaped the process and
// drained and logged its output, right before its exec; Stop reads it and
// records it as the monitor would (recorder.exited: networks detached,
// die and oom events, volume unmounts), and returns. The monitor the shim
// execs records the same exit again, which changes nothing (first writer
// wins: same finish time), then deletes the runtime state and ends
// supervision: no restart, the stop was requested first.
//
// The monitor may so outlive the stop by those milliseconds. What must
// not run beside it waits for it: a Start (awaitMonitorGone: a new run's
// runtime state has the same id) and a removal (removeFinish lets it finish:
// endMonitor).
// An --rm container is removed by its monitor: its stop still waits for
// that, as does one whose monitor is not a shim (no exit file comes; the
// monitor records at once).

// exitFile is where container id's hull-shim leaves its exit.
func (e *Engine) exitFile(id string) string { return filepath.Join(e.runDir(id), "exit.json") }

// exitWatch follows the process a Stop signals, to record its exit as soon
// as its shim leaves it.
type exitWatch struct {
	e     *Engine
	c     *Container
	pidfd int // the process's, -1 if it could not be opened (gone already)
}

// watchExit prepares, before the signal, to record c's exit from its
// exit file; nil where the stop waits for the monitor (an --rm container,
// or no process recorded).
func (e *Engine) watchExit(c *Container) *exitWatch {
	if c.Config.AutoRemove || c.Pid <= 0 || (c.State != StateRunning && c.State != StatePaused) {
		return nil
	}
	w := &exitWatch{e: e, c: c, pidfd: -1}
	if fd, err := unix.PidfdOpen(c.Pid, 0); err == nil {
		// Checked after opening: the pidfd then names the container's
		// process, not one that reused its pid.
		if procStart(c.Pid) == c.PidStart {
			w.pidfd = fd
		} else {
			unix.Close(fd)
		}
	}
	return w
}

func (w *exitWatch) close() {
	if w != nil && w.pidfd >= 0 {
		unix.Close(w.pidfd)
		w.pidfd = -1
	}
}

// settle waits up to timeout for the stop to end: the exit recorded here
// from the exit file (or by the monitor meanwhile, for the same process),
// or the container settled. done is false at the timeout.
func (w *exitWatch) settle(ctx context.Context, timeout time.Duration) (c *Container, done bool, err error) {
	if timeout <= 0 {
		// No grace (a CRI stop with timeout 0): straight to SIGKILL.
		return w.c, false, nil
	}
	deadline := time.Now().Add(timeout)
	if w.pidfd >= 0 {
		// The process's end first: a pidfd wakes at once, and a
		// container that takes its time to stop costs no polling.
		for {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(w.pidfd), Events: unix.POLLIN}}, int(min(left, 100*time.Millisecond).Milliseconds())+1)
			if n > 0 || err != nil && !errors.Is(err, unix.EINTR) {
				break
			}
			if ctx.Err() != nil {
				return w.c, false, ctx.Err()
			}
		}
		trace.Mark("stop: process ended")
	}
	// Then its shim's exit file: it comes once the shim has reaped the
	// process and drained its output, within milliseconds.
	path := w.e.exitFile(w.c.ID)
	for i := 0; ; i++ {
		// (An exit file of an earlier run, whose process had the same
		// pid, ended before this run started.)
		if x, err := shim.ReadExit(path); err == nil && x.Pid == w.c.Pid && x.At > w.c.Started.UnixNano() {
			trace.Mark("stop: exit file read")
			if w.c.Config.Spec.PidMode != "" {
				// No pid namespace of its own: what the process left
				// (a daemonized child) dies with it, as the monitor
				// would see to before recording (runOnce).
				w.e.rt.Kill(w.c.ID, unix.SIGKILL, true)
			}
			rec := &recorder{e: w.e, c: w.c}
			if _, err := rec.exited(monitor.FromShim(x), w.c.Pid); err != nil {
				w.e.warn("container %s: record its exit: %v", w.c.Name, err)
			}
			trace.Mark("stop: exit recorded")
			after, err := w.e.Get(ctx, w.c.ID)
			if err != nil || !after.active() {
				return w.stopped(after, err)
			}
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			w.e.warn("container %s: %v", w.c.Name, err)
		}
		// Meanwhile the monitor may have recorded it all (no shim, or
		// a shim that wrote no file).
		if i%10 == 9 {
			after, err := w.e.Get(ctx, w.c.ID)
			if err != nil || after.settled() {
				return w.stopped(after, err)
			}
		}
		if time.Now().After(deadline) {
			after, err := w.e.Get(ctx, w.c.ID)
			if err != nil {
				return w.stopped(after, err)
			}
			return after, false, nil
		}
		if ctx.Err() != nil {
			return w.c, false, ctx.Err()
		}
		w.pause(i)
	}
}

// pause is the wait before the exit file's i+1-th look: 100 us for the
// first 5 ms (the file comes within a millisecond or so of the process's
// end, and a look is one open that fails: a millisecond's wait lost half
// a millisecond of each stop on average), a millisecond after. A
// nanosleep, not a Go timer: an idle Go runtime rounds a sleep under a
// millisecond up to one. (An inotify watch on the run directory woke at
// once, but closing an inotify instance waits for an SRCU grace period,
// 13-16 ms here: it cost more than it saved.)
func (w *exitWatch) pause(i int) {
	d := time.Millisecond
	if i < 50 {
		d = 100 * time.Microsecond
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// stopped is settle's end with what Get returned: a container removed
// meanwhile counts as stopped (as in Stop).
func (w *exitWatch) stopped(after *Container, err error) (*Container, bool, error) {
	if IsNotFound(err) {
		gone := *w.c
		gone.State, gone.MonitorPid = StateExited, 0
		return &gone, true, nil
	}
	return after, err == nil, err
}

// awaitMonitorGone waits for the monitor of c, not active, to end: after
// a stop that recorded the exit itself, it may still be deleting the
// runtime state of the run that ended, which a new run (the same id)
// must not meet.
func (e *Engine) awaitMonitorGone(c *Container) {
	if c.MonitorPid > 0 && !c.active() {
		e.waitMonitor(c, 10*time.Second)
	}
}

// endMonitor ends the monitor of c, not active, that a stop left
// finishing: it is let finish (it may be deleting the runtime state),
// then killed if it has not within the wait. Killed while deleting, it
// may leave the state directory it renamed aside
// (runtime.DeleteContainer): that goes too. (Killing it at once spared a
// pod's removal right after its stop the monitor's start, RemovePodSandbox
// 103 -> 66 ms under cribench, but broke kube's crash back-off,
// TestKubeFailureStatuses: not understood by the deadline.)
func (e *Engine) endMonitor(c *Container) {
	e.waitMonitor(c, 10*time.Second)
	e.killMonitor(c)
	aside, _ := filepath.Glob(filepath.Join(e.rt.Root, "."+c.ID+".deleting-*"))
	for _, dir := range aside {
		os.RemoveAll(dir)
	}
}
