package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/monitor"
	"hull/internal/snapshot"
	"hull/internal/trace"
)

// recorder stores what a container's monitor learns (it runs in the
// monitor process, with its own database handle).
type recorder struct {
	e *Engine
	c *Container
}

var bg = context.Background()

// Started and Exited each record in one transaction (the record and its
// events): every commit is a write of its own, on the path of a short
// container's exit.
//
// Started records this process as the container's monitor too: the
// command that started it records the same, but may come later than a
// short container's whole run (see Start).
func (r *recorder) Started(pid int, pidStart uint64, restarts int) error {
	self := os.Getpid()
	return r.e.db.Tx(bg, func(tx *sql.Tx) error {
		err := r.e.updateIn(bg, tx, r.c.ID, map[string]any{
			"state": StateRunning, "stage": StageRunning, "pid": pid, "pid_start": pidStart,
			"started": time.Now().UnixNano(), "restart_count": restarts, "error": "", "exit_code": 0,
			"signal": 0, "oom_killed": 0, "backoff_until": 0,
			"monitor_pid": self, "monitor_start": procStart(self), "boot_id": bootID(),
		})
		r.e.emitVolumeMounts(bg, tx, r.c, "mount")
		r.e.emitIn(bg, tx, r.c, "start", nil)
		return err
	})
}

func (r *recorder) Exited(x monitor.Exit) error {
	_, err := r.exited(x, 0)
	return err
}

// exited records exit x once: an exit recorded already (the same finish
// time: the engine's Stop records a shim's exit from its exit file before
// the monitor the shim execs does, stopexit.go) changes nothing, nor do
// its events or volumes again (its networks, detached already, have
// nothing left to detach). With pid > 0 (the stopper's) only while the
// record still names that process, checked first: the networks of
// another run are not its to detach. It says whether it recorded.
func (r *recorder) exited(x monitor.Exit, pid int) (bool, error) {
	at := x.At.UnixNano()
	cond, args := "finished != ?", []any{at}
	if pid > 0 {
		cond, args = cond+" AND pid = ?", append(args, pid)
		var n int
		if err := r.e.db.QueryRowContext(bg, `SELECT count(*) FROM containers WHERE id = ? AND `+cond, append([]any{r.c.ID}, args...)...).Scan(&n); err == nil && n == 0 {
			return false, nil
		}
	}
	// Its ports and addresses are free once the exit shows (also those
	// of networks connected while it ran).
	if joinsNetworks(netMode(r.c.Config.Spec)) {
		if err := r.e.detachNetworks(bg, r.c); err != nil {
			fmt.Fprintf(os.Stderr, "container %s: %v\n", r.c.Name, err)
		}
		trace.Mark("monitor: networks detached")
	}
	cols := map[string]any{
		// A removal under way (rm -f killed the container) keeps its
		// claim: were it killed itself now, the claim is what tells the
		// next command to take the removal over.
		"state": sqlExpr{"CASE WHEN state IN (?, ?) THEN state ELSE ? END", []any{StateRemoving, StateDead, StateExited}}, "exit_code": x.Code, "signal": x.Signal, "oom_killed": x.OOMKilled,
		"finished": x.At.UnixNano(), "pid": 0, "memory_peak": int64(x.MemoryPeak), "memory_limit": int64(x.MemoryLimit),
		"stage": StageExited, "error": x.Error,
	}
	if x.Stage != "" {
		cols["stage"] = x.Stage
	}
	recorded := false
	err := r.e.db.Tx(bg, func(tx *sql.Tx) error {
		n, err := r.e.updateWhereIn(bg, tx, r.c.ID, cond, args, cols)
		if recorded = n == 1; err != nil || !recorded {
			return err
		}
		if x.OOMKilled {
			r.e.emitIn(bg, tx, r.c, "oom", nil)
		}
		r.e.emitIn(bg, tx, r.c, "die", map[string]string{"exitCode": fmt.Sprint(x.Code)})
		if x.Stage == "" { // it ran, so its volumes were mounted
			r.e.emitVolumeMounts(bg, tx, r.c, "unmount")
		}
		return nil
	})
	return recorded, err
}

func (r *recorder) Restarting(count int, delay time.Duration) error {
	r.e.emit(bg, r.c, "restart", map[string]string{"restartCount": fmt.Sprint(count), "backoff": delay.String()})
	return r.e.update(bg, r.c.ID, map[string]any{
		"state": StateRestarting, "restart_count": count, "backoff_until": time.Now().Add(delay).UnixNano(),
	})
}

func (r *recorder) StopRequested() bool {
	var stop bool
	err := r.e.db.QueryRowContext(bg, `SELECT stop_requested FROM containers WHERE id = ?`, r.c.ID).Scan(&stop)
	return err != nil || stop
}

func (r *recorder) Done(x monitor.Exit) func() {
	if r.c.Config.AutoRemove {
		// One statement: the record is about to go anyway. It returns the
		// name (a rename may have changed it since the monitor started),
		// and nothing if the container is gone already (hull rm -f).
		c := *r.c
		pid, start := self()
		claim := func() error {
			return r.e.db.QueryRowContext(bg, `UPDATE containers SET state = ?, monitor_pid = 0, monitor_start = 0, claim_pid = ?, claim_start = ?
			WHERE id = ? RETURNING name`, StateRemoving, pid, start, c.ID).Scan(&c.Name)
		}
		err := claim()
		if r.e.db.RetryFull(err) {
			err = claim()
		}
		if err == nil {
			aside, _ := r.e.cleanup(bg, &c)
			return func() { r.e.purge(aside) }
		}
	}
	r.e.update(bg, r.c.ID, map[string]any{"monitor_pid": 0, "monitor_start": 0})
	// A stop during the restart backoff ends supervision with no new run.
	r.e.db.ExecContext(bg, `UPDATE containers SET state = ? WHERE id = ? AND state = ?`, StateExited, r.c.ID, StateRestarting)
	return nil
}

// reconcile checks a container recorded as supervised against reality: a
// host reboot or a dead monitor means nobody supervises it any more. It is
// then recorded as exited with an Error saying why, and its leftovers
// (processes, cgroups) are removed.
func (e *Engine) reconcile(ctx context.Context, c *Container) (*Container, error) {
	if e.creationAbandoned(c) {
		reason := fmt.Sprintf("%s (during %s); remove it and create it again", interruptedCreation, c.Stage)
		// Only if still as read (a start may have claimed it since).
		e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET error = ?, exit_code = 125 WHERE id = ? AND state = ? AND error = ''`,
			reason, c.ID, StateCreated)
		c.Error, c.ExitCode = reason, 125
		return c, nil
	}
	if c.State == StateRemoving && c.claimAbandoned() {
		return e.abandonRemoval(ctx, c)
	}
	if !c.active() {
		return c, nil
	}
	if c.StopRequested && !c.ClaimUntil.IsZero() && time.Now().After(c.ClaimUntil) && c.ClaimPid > 0 && c.claimAbandoned() {
		// A stop whose command died before its SIGKILL: sent here, once
		// (the claim is cleared); the monitor records the exit, and the
		// stop keeps the restart policy from starting it again.
		res, err := e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET claim_until = 0 WHERE id = ? AND claim_pid = ? AND claim_start = ? AND claim_until != 0`,
			c.ID, c.ClaimPid, c.ClaimStart)
		if err != nil {
			return nil, fmt.Errorf("finish the stop of container %s: %w", c.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			e.rt.Kill(c.ID, unix.SIGKILL, true)
			e.emit(ctx, c, "stop", map[string]string{"error": fmt.Sprintf("finished the stop of a hull command that was killed (pid %d)", c.ClaimPid)})
		}
	}
	reason := ""
	switch {
	case c.BootID != "" && c.BootID != bootID():
		reason = "the host rebooted while the container was running"
	case c.MonitorPid == 0:
		// Claimed by Start; the monitor is normally recorded within
		// milliseconds, by the command or by the monitor itself (a spare
		// the command handed the container to before it died). A claim
		// whose command is dead and that no monitor took up within
		// claimGrace will never start; without an owner recorded, 30 s.
		if !c.Started.IsZero() && c.Pid == 0 {
			if age := time.Since(c.Started); c.ClaimPid > 0 && c.claimAbandoned() && age > claimGrace || age > 30*time.Second {
				reason = fmt.Sprintf("hull was killed while starting the container (pid %d)", c.ClaimPid)
			}
		}
	case !c.monitorAlive():
		reason = fmt.Sprintf("the container's monitor (pid %d) died unexpectedly", c.MonitorPid)
	}
	if reason == "" {
		return c, nil
	}
	// A monitor records the exit before it exits: read the record again
	// now that the monitor is seen gone. What was read above may predate
	// a monitor that finished normally in between (taking its recorded
	// exit for a crash overwrote the container's exit code).
	fresh, err := e.lookup(ctx, e.db, c.ID)
	if err != nil {
		return nil, err
	}
	if !fresh.active() || fresh.MonitorPid != c.MonitorPid || fresh.MonitorStart != c.MonitorStart {
		return fresh, nil
	}
	// The monitor that would have recorded the exit is gone: the code is
	// unknown, 255 (docker's for a container whose exit it lost), unless
	// the container is still there to be stopped here.
	code := 255
	if c.Pid > 0 && procStart(c.Pid) == c.PidStart {
		reason += "; the unsupervised container was stopped"
		code = 137
	}
	e.rt.Delete(c.ID, true)
	unmountAll(e.rootfs(c.ID))
	if len(c.Config.Net.Networks) > 0 {
		e.detachNetworks(ctx, c)
	}
	// Only if still as read: a monitor that records an exit meanwhile
	// wins.
	res, err := e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET state = ?, stage = ?, error = ?, exit_code = ?,
		pid = 0, monitor_pid = 0, monitor_start = 0, finished = ? WHERE id = ? AND state = ? AND monitor_pid = ? AND monitor_start = ?`,
		StateExited, StageExited, reason, code, time.Now().UnixNano(), c.ID, c.State, c.MonitorPid, c.MonitorStart)
	if err != nil {
		return nil, fmt.Errorf("record container %s as exited: %w", c.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		e.emit(ctx, c, "die", map[string]string{"exitCode": fmt.Sprint(code), "error": reason})
	}
	return e.lookup(ctx, e.db, c.ID)
}

// interruptedCreation begins the error of a container whose creating
// command died.
const interruptedCreation = "hull was killed while creating the container"

// CreationInterrupted reports a container whose creating command died
// before it finished: it was never whole, and cannot start.
func (c *Container) CreationInterrupted() bool {
	return c.State == StateCreated && strings.HasPrefix(c.Error, interruptedCreation)
}

// claimGrace is how long a start claim whose command died is given for
// the monitor it may have handed the container to to record itself.
const claimGrace = 5 * time.Second

// abandonRemoval takes over a removal whose owner (an `rm` or an --rm
// container's monitor) was killed part way: nothing of the container may
// go on running unsupervised, so its monitor and processes are ended and
// its root filesystem unmounted, and it is recorded dead (docker's state
// for a container whose removal failed), which `rm` and the prunes finish.
func (e *Engine) abandonRemoval(ctx context.Context, c *Container) (*Container, error) {
	e.killMonitor(c)
	e.waitMonitor(c, 10*time.Second)
	e.rt.Delete(c.ID, true)
	unmountAll(e.rootfs(c.ID))
	if len(c.Config.Net.Networks) > 0 {
		e.detachNetworks(ctx, c)
	}
	reason := fmt.Sprintf("hull was killed while removing the container (pid %d); `hull rm %s` finishes the removal", c.ClaimPid, c.Name)
	res, err := e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET state = ?, error = ?, pid = 0, monitor_pid = 0, monitor_start = 0,
		claim_pid = 0, claim_start = 0 WHERE id = ? AND state = ? AND claim_pid = ? AND claim_start = ?`,
		StateDead, reason, c.ID, StateRemoving, c.ClaimPid, c.ClaimStart)
	if err != nil {
		return nil, fmt.Errorf("record container %s as dead: %w", c.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		e.emit(ctx, c, "die", map[string]string{"error": reason})
	}
	return e.lookup(ctx, e.db, c.ID)
}

// Pause freezes every process of the container.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State != StateRunning {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running", c.Name))
	}
	if err := e.rt.Pause(c.ID); err != nil {
		return err
	}
	e.emit(ctx, c, "pause", nil)
	return e.update(ctx, c.ID, map[string]any{"state": StatePaused})
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.State != StatePaused {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not paused", c.Name))
	}
	if err := e.rt.Resume(c.ID); err != nil {
		return err
	}
	e.emit(ctx, c, "unpause", nil)
	return e.update(ctx, c.ID, map[string]any{"state": StateRunning})
}

// Rename gives a container a new name.
func (e *Engine) Rename(ctx context.Context, ref, name string) error {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	if !validName(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container name %q", name))
	}
	if err := e.update(ctx, c.ID, map[string]any{"name": name}); err != nil {
		return errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("rename %s to %s: the name is already in use", c.Name, name))
	}
	e.emit(ctx, c, "rename", map[string]string{"oldName": c.Name})
	return nil
}

func isSnapNotFound(err error) bool { return errors.Is(err, snapshot.ErrNotFound) }
