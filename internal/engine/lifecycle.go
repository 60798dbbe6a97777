package engine

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/monitor"
	"hull/internal/trace"
)

// StartOptions tune Start.
type StartOptions struct {
	// WaitAttach makes the monitor start the container only once a client
	// has attached (foreground run, start -a): no output is lost.
	WaitAttach bool
	// Created is the container as Create returned it in this process (hull
	// run): Start then neither reads it back nor checks its root
	// filesystem, which Create has just mounted. The claim below still
	// checks its state in the database.
	Created *Container
	// Spare is a spare monitor of the caller's (NewSpare), offered the
	// container's spec by Create (CreateOptions.Spare), to hand the
	// container to instead of the engine's own spare or a new monitor.
	// Start owns it from the call: one it does not hand the container
	// to, it closes.
	Spare *Spare
	// InRunningPod refuses to start a container whose pod is not
	// running (a PodNotRunningError) rather than starting the pod first,
	// as the CLI does: the CRI's StartContainer, so that a kubelet (or a
	// `hull kube` supervisor) restarting a container while its sandbox
	// is stopped cannot revive the sandbox.
	InRunningPod bool
}

// Starting is a start in progress: attach (if asked) then wait for Ready.
type Starting struct {
	ID     string
	Socket string
	sync   *bufio.Reader
	file   *os.File
}

// Ready waits until the monitor reports the container started, or why not.
func (s *Starting) Ready() error {
	defer s.file.Close()
	for {
		line, err := s.sync.ReadString('\n')
		if err != nil {
			return fmt.Errorf("container %s: the monitor exited before reporting the start (see hull why %s)", shortID(s.ID), shortID(s.ID))
		}
		switch word, code, msg := monitor.ParseReport(line); word {
		case monitor.ReportOK:
			return nil
		case monitor.ReportError:
			return startFailure(code, errors.New(msg))
		}
	}
}

// Start launches the container's monitor, which creates and starts it.
// Starting a running container is a no-op (as docker).
func (e *Engine) Start(ctx context.Context, ref string, o StartOptions) (*Starting, error) {
	defer func() { o.Spare.Close() }() // nil once taken
	e.AwaitCreation(ref)               // a deferred one, by its ID (create_deferred.go)
	c := o.Created
	if c == nil {
		var err error
		if c, err = e.Get(ctx, ref); err != nil {
			return nil, err
		}
	}
	if c.Stage == StagePull || (c.Stage == StageCreate && c.Error != "" && c.State == StateCreated) {
		return nil, startFailure(c.ExitCode, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s cannot start: %s (see hull why %s)", c.Name, c.Error, c.Name)))
	}
	if c.Config.Pod != "" {
		// A container of a stopped pod starts the pod first: its
		// namespaces are the pod's.
		p, err := e.GetPod(ctx, c.Config.Pod)
		if err != nil {
			return nil, fmt.Errorf("container %s: its pod: %w", c.Name, err)
		}
		if o.InRunningPod {
			if err := checkPodRunning(c, p); err != nil { // podstart.go
				return nil, err
			}
		} else if err := e.upPod(ctx, p); err != nil {
			return nil, err
		}
	}
	e.awaitMonitorGone(c)
	claimed := false
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRow(`SELECT state FROM containers WHERE id = ?`, c.ID).Scan(&state); err != nil {
			return err
		}
		switch state {
		case StateCreated, StateExited, StateDead:
		case StateRemoving:
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is being removed", c.Name))
		default:
			return nil
		}
		claimed = true
		pid, start := self()
		_, err := tx.Exec(`UPDATE containers SET state = ?, stop_requested = 0, error = '', pid = 0, monitor_pid = 0, started = ?,
			claim_pid = ?, claim_start = ? WHERE id = ?`,
			StateRunning, time.Now().UnixNano(), pid, start, c.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !claimed {
		return nil, nil
	}
	failed := func(err error) error {
		e.update(ctx, c.ID, map[string]any{"state": StateExited, "stage": StageStart, "error": err.Error(), "exit_code": 125})
		return err
	}
	if o.Created == nil {
		if err := e.mountRootfs(ctx, c.ID, c.Config.AutoRemove, &c.Config.Spec); err != nil {
			return nil, failed(err)
		}
		if err := e.mountShm(c); err != nil {
			return nil, failed(err)
		}
		if err := e.mountContainerVolumes(ctx, c); err != nil {
			return nil, failed(err)
		}
		if err := e.rejoinNamespaces(ctx, c); err != nil {
			return nil, failed(err)
		}
	}
	if err := e.cannotRun(c, o.Created != nil); err != nil {
		// docker's start of a container whose command cannot run: it
		// stays created, with the reason and the exit status.
		e.update(ctx, c.ID, map[string]any{"state": StateCreated, "stage": StageStart, "error": err.Error(),
			"exit_code": exitCode(err), "started": 0, "claim_pid": 0, "claim_start": 0})
		return nil, fmt.Errorf("container %s cannot start: %w", c.Name, err)
	}
	trace.Mark("start: claimed")
	// The monitor reads config.json, unless it is the spare that has the
	// spec already (offerSpare): then the file, for later starts, is
	// written while the container starts (Close waits for it).
	if s := e.spare; s != nil && s.waitAttach == o.WaitAttach && s.specFor == c.ID {
		c.startConfig()
	} else if err := c.waitConfig(); err != nil {
		return nil, failed(err)
	}
	var monitorPid int
	var r *os.File
	var spare *Spare
	if !c.restorePending() { // a restore makes its processes itself
		spare = e.takeSpare(c.ID, o)
	}
	if spare != nil {
		o.Spare = nil
		monitorPid, r = spare.proc.Pid, spare.sync
	} else {
		// This monitor reads the file (done already, unless the spare
		// that has the spec could not be told the ID).
		if err := c.waitConfig(); err != nil {
			return nil, failed(err)
		}
		var w *os.File
		if r, w, err = os.Pipe(); err != nil {
			return nil, err
		}
		cmd := e.MonitorCommand(c.ID, o.WaitAttach)
		if f, err := e.openMonitorLog(c.ID); err == nil {
			cmd.Stdout, cmd.Stderr = f, f
			defer f.Close()
		}
		cmd.ExtraFiles = []*os.File{w} // monitor.ReportFD
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			r.Close()
			w.Close()
			return nil, failed(fmt.Errorf("start monitor for %s: %w", c.Name, err))
		}
		w.Close()
		// Reap the monitor if it exits while this process lives (a
		// long-lived caller such as the CRI server); a CLI exits first
		// and the monitor, in its own session, is adopted by init.
		go cmd.Wait()
		monitorPid = cmd.Process.Pid
	}
	e.recordMonitor(ctx, c.ID, monitorPid)
	trace.Mark("start: monitor spawned")
	st := &Starting{ID: c.ID, Socket: e.AttachSocket(c.ID), sync: bufio.NewReader(r), file: r}
	if o.WaitAttach {
		line, err := st.sync.ReadString('\n')
		word, code, msg := monitor.ParseReport(line)
		if err != nil || word != monitor.ReportListening {
			r.Close()
			if word == monitor.ReportError {
				return nil, startFailure(code, errors.New(msg))
			}
			return nil, fmt.Errorf("container %s: the monitor did not open its attach socket", c.Name)
		}
	}
	return st, nil
}

// recordMonitor records the monitor Start started or took for a claimed
// container, so that a monitor that dies before it starts the container is
// seen at once. Only while the process is not recorded yet: once it is,
// the monitor has recorded itself (recorder.Started), and a short
// container's monitor may even have finished and cleared it, which a late
// write here would undo (wait would then wait for ever).
func (e *Engine) recordMonitor(ctx context.Context, id string, pid int) {
	e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET monitor_pid = ?, monitor_start = ?, boot_id = ? WHERE id = ? AND state = ? AND pid = 0`,
		pid, procStart(pid), bootID(), id, StateRunning)
}

// getStarted is Get for commands that act on a container's processes
// (stop, kill, rm). A start claims the container (state running) before
// its monitor has started the process, a few milliseconds; signalled in
// that window, nothing would receive the signal and the start would go on.
// So while a start is under way, getStarted waits for it to record the
// process or its failure, up to startSettle (a start whose command was
// killed is then treated as it is found).
func (e *Engine) getStarted(ctx context.Context, ref string) (*Container, error) {
	c, err := e.Get(ctx, ref)
	starting := func(c *Container) bool { return c.State == StateRunning && c.Pid == 0 }
	if err != nil || !starting(c) {
		return c, err
	}
	return e.poll(ctx, c.ID, startSettle, func(c *Container) bool { return !starting(c) })
}

// startSettle bounds getStarted's wait; a start takes milliseconds.
var startSettle = 5 * time.Second

// Stop asks the container to stop with its stop signal, and kills it after
// timeout (the container's StopTimeout, default 10s, if timeout < 0).
func (e *Engine) Stop(ctx context.Context, ref string, timeout time.Duration) (*Container, error) {
	c, err := e.getStarted(ctx, ref)
	if err != nil {
		return nil, err
	}
	if timeout < 0 {
		timeout = 10 * time.Second
		if c.Config.StopTimeout > 0 {
			timeout = time.Duration(c.Config.StopTimeout) * time.Second
		}
	}
	// The stop is claimed with its deadline: should this command die
	// before it, the next one to read the container sends the SIGKILL.
	pid, start := self()
	e.update(ctx, c.ID, map[string]any{"stop_requested": 1, "claim_pid": pid, "claim_start": start,
		"claim_until": time.Now().Add(timeout).UnixNano()})
	// A --rm container's monitor removes it once it has stopped: gone
	// counts as stopped, and the stop succeeds (as docker's).
	// With w, the exit is recorded here as soon as the container's shim
	// leaves it (stopexit.go).
	var w *exitWatch
	settle := func(timeout time.Duration) (*Container, bool, error) {
		if w != nil {
			return w.settle(ctx, timeout)
		}
		after, err := e.poll(ctx, c.ID, timeout, (*Container).settled)
		if IsNotFound(err) {
			gone := *c
			gone.State, gone.MonitorPid = StateExited, 0
			return &gone, true, nil
		}
		return after, err == nil && after.settled(), err
	}
	if !c.active() {
		// Its monitor may be between an exit it recorded and a restart
		// it decided on before the stop was asked: wait for it to see
		// the stop, so that a stopped container stays stopped.
		if c.settled() {
			return c, nil
		}
		after, _, err := settle(10 * time.Second)
		return after, err
	}
	sig := c.stopSignal()
	w = e.watchExit(c)
	defer w.close()
	if c.State == StatePaused {
		e.rt.Resume(c.ID)
	}
	e.rt.Kill(c.ID, sig, false)
	trace.Mark("stop: signalled")
	if after, done, err := settle(timeout); err != nil || done {
		return after, err
	}
	e.rt.Kill(c.ID, unix.SIGKILL, true)
	after, _, err := settle(10 * time.Second)
	e.emit(ctx, c, "stop", nil)
	return after, err
}

// claimAbandoned reports a transitional state whose owner is gone: it was
// killed before it finished, and nobody else will. A claim with no owner
// recorded (made by an older hull) counts as abandoned.
func (c *Container) claimAbandoned() bool {
	return c.ClaimPid <= 0 || procStart(c.ClaimPid) != c.ClaimStart
}

// self is this process as the owner of a claim: its pid and start time.
var self = sync.OnceValues(func() (int, uint64) {
	pid := os.Getpid()
	return pid, procStart(pid)
})

// active: a monitor is (or should be) supervising the container.
func (c *Container) active() bool {
	switch c.State {
	case StateRunning, StatePaused, StateRestarting:
		return true
	}
	return false
}

// settled: not running, and no monitor left that could change that (one
// recording an exit, or about to restart the container).
func (c *Container) settled() bool {
	return !c.active() && !c.monitorAlive()
}

// monitorAlive: the recorded monitor still runs. A monitor that died
// (and was reaped) before Start recorded it was recorded with start time
// 0, the value procStart gives for no process: it counts as dead, not as
// matching, or its container would stay "running" with no process for
// ever.
func (c *Container) monitorAlive() bool {
	s := procStart(c.MonitorPid)
	return c.MonitorPid > 0 && s != 0 && s == c.MonitorStart
}

// poll reads container id every 10 ms until done holds for it, reading
// fails (the container is gone, say), ctx ends or timeout has passed; it
// returns what it read last.
func (e *Engine) poll(ctx context.Context, id string, timeout time.Duration, done func(*Container) bool) (*Container, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := e.Get(ctx, id)
		if err != nil || done(c) || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Kill sends a signal to the container's main process.
func (e *Engine) Kill(ctx context.Context, ref string, sig unix.Signal) error {
	c, err := e.getStarted(ctx, ref)
	if err != nil {
		return err
	}
	if c.State != StateRunning && c.State != StatePaused {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("cannot kill container %s: it is not running", c.Name))
	}
	if sig == unix.SIGKILL || sig == unix.SIGTERM {
		e.update(ctx, c.ID, map[string]any{"stop_requested": 1})
	}
	if err := e.rt.Kill(c.ID, sig, false); err != nil {
		return fmt.Errorf("kill %s: %w", c.Name, err)
	}
	e.emit(ctx, c, "kill", map[string]string{"signal": fmt.Sprint(int(sig))})
	return nil
}

// Wait blocks until the container is not running and returns its exit
// code. A container removed meanwhile (--rm) returns its last exit code.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return 0, err
	}
	// Done once nobody supervises it: not running, and its monitor (which
	// may still be restarting it or removing it) is gone.
	id, last := c.ID, c.ExitCode
	c, err = e.poll(ctx, id, math.MaxInt64, func(c *Container) bool {
		last = c.ExitCode
		return c.settled()
	})
	if IsNotFound(err) {
		// Removed (--rm) between two reads: its die event keeps the
		// code, which the last read may have come too early to see.
		return e.lastExitCode(ctx, id, last), nil
	}
	if err != nil {
		return 0, err
	}
	return c.ExitCode, nil
}

// lastExitCode is the exit code of the newest die event of container id,
// or def if there is none.
func (e *Engine) lastExitCode(ctx context.Context, id string, def int) int {
	var attrs string
	if e.db.QueryRowContext(ctx, `SELECT attrs FROM events WHERE id = ? AND action = 'die' ORDER BY seq DESC LIMIT 1`, id).Scan(&attrs) != nil {
		return def
	}
	var a struct {
		ExitCode string `json:"exitCode"`
	}
	if json.Unmarshal([]byte(attrs), &a) != nil {
		return def
	}
	if code, err := strconv.Atoi(a.ExitCode); err == nil {
		return code
	}
	return def
}

// Remove deletes a container, its writable layer and its logs. A running
// container needs force (it is killed first).
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	c, err := e.removeClaim(ctx, ref, force, false)
	if err != nil {
		return err
	}
	return e.removeFinish(ctx, c)
}

// removeClaim records a container as being removed by this process (state
// removing, stop requested): from then on no start, stop or other removal
// takes it, and a removal killed midway is found by its dead claimer
// (reconcile: abandonRemoval). A deferred removal of it under way here
// (RemoveDeferred) is waited for first: it is then NotFound. With
// freeName, the record's name becomes ".removing-ID" (no name a user can
// give) in the same transaction, so that a new container may take the
// name at once.
func (e *Engine) removeClaim(ctx context.Context, ref string, force, freeName bool) (*Container, error) {
	c, err := e.getStarted(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.removeClaimOf(ctx, c, ref, force, freeName)
}

// removeClaimOf is removeClaim of c, as getStarted returned it for ref.
func (e *Engine) removeClaimOf(ctx context.Context, c *Container, ref string, force, freeName bool) (*Container, error) {
	e.AwaitCreation(c.ID)
	if e.waitDeferredRemoval(c.ID) {
		return nil, &NotFoundError{Ref: ref}
	}
	return e.claimOf(ctx, c, ref, force, freeName)
}

// claimOf is removeClaimOf's claim itself, once nothing of this engine's
// is at work on the container.
func (e *Engine) claimOf(ctx context.Context, c *Container, ref string, force, freeName bool) (*Container, error) {
	claim := func(tx *sql.Tx) error {
		var state string
		var owner Container
		if err := tx.QueryRow(`SELECT state, claim_pid, claim_start FROM containers WHERE id = ?`, c.ID).Scan(&state, &owner.ClaimPid, &owner.ClaimStart); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return &NotFoundError{Ref: ref}
			}
			return err
		}
		switch state {
		case StateRemoving:
			// A removal whose owner died is taken over: it goes on here.
			if !owner.claimAbandoned() {
				return errdefs.ErrConflict.WithMessage(fmt.Sprintf("removal of container %s is already in progress (by pid %d)", c.Name, owner.ClaimPid))
			}
		case StateRunning, StatePaused, StateRestarting:
			if !force {
				return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("cannot remove container %s: it is %s; stop it first or use -f", c.Name, state))
			}
		}
		pid, start := self()
		_, err := tx.Exec(`UPDATE containers SET state = ?, stop_requested = 1, claim_pid = ?, claim_start = ?,
			name = CASE WHEN ? THEN ? ELSE name END WHERE id = ?`,
			StateRemoving, pid, start, freeName, ".removing-"+c.ID, c.ID)
		return err
	}
	err := e.claimRemoval(ctx, c.ID, force, freeName)
	if err != nil {
		err = e.db.Tx(ctx, claim) // the refusals, a take-over, retries
	}
	if e.db.Full(err) && (force || !c.active()) {
		// Not even the claim could be recorded: the container may be
		// what filled the disk. Free the space first, then record.
		e.freeSpace(ctx, c)
		err = e.db.Tx(ctx, claim)
	}
	if err != nil {
		return nil, err
	}
	trace.Mark("rm: claimed")
	return c, nil
}

// removeFinish ends and deletes a container removeClaim claimed: its
// processes and monitor, then everything cleanup removes.
func (e *Engine) removeFinish(ctx context.Context, c *Container) error {
	if c.active() {
		if c.State == StatePaused {
			e.rt.Resume(c.ID)
		}
		e.rt.Kill(c.ID, unix.SIGKILL, true)
		trace.Mark("rm: killed")
		// The monitor would only record an exit nobody will read (a
		// shim first execs hull again to do so): it goes too, and the
		// cleanup below does what it would have.
		e.killMonitor(c)
		e.waitMonitor(c, 10*time.Second)
	} else if c.monitorAlive() {
		// A monitor finishing after a stop that recorded the exit
		// (stopexit.go): the same (endMonitor).
		e.endMonitor(c)
	}
	aside, err := e.cleanup(ctx, c)
	e.purge(aside)
	return err
}

// freeSpace undoes, without recording anything, what of a container being
// removed takes space on a full disk: its processes (which may still be
// writing), the content of its writable layer and its logs.
func (e *Engine) freeSpace(ctx context.Context, c *Container) {
	e.killMonitor(c)
	e.rt.Delete(c.ID, true)
	if unmountAll(e.rootfs(c.ID)) == nil {
		e.snap.Empty(ctx, snapshotKey(c.ID))
	}
	logs, _ := filepath.Glob(e.LogPath(c.ID) + "*")
	for _, l := range logs {
		os.Truncate(l, 0)
	}
}

// killMonitor ends the container's monitor, if it is still the process
// recorded (pidfd, so a reused pid is never signalled).
func (e *Engine) killMonitor(c *Container) {
	if c.MonitorPid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(c.MonitorPid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if c.monitorAlive() {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
}

// waitMonitor waits for the container's monitor process to exit: on its
// pidfd, which wakes the moment it exits, or by polling where pidfds are
// unavailable.
func (e *Engine) waitMonitor(c *Container, timeout time.Duration) {
	if c.MonitorPid <= 0 {
		return
	}
	if fd, err := unix.PidfdOpen(c.MonitorPid, 0); err == nil {
		defer unix.Close(fd)
		// Checked after opening: the pidfd then names the monitor, not a
		// process that reused its pid.
		if !c.monitorAlive() {
			return
		}
		deadline := time.Now().Add(timeout)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return
			}
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
			if n > 0 || err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}
	deadline := time.Now().Add(timeout)
	for c.monitorAlive() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// cleanup removes what a container had: runtime state, mounts, its
// writable layer, its directories and its record; each step tolerates a
// previous partial cleanup. The files are not deleted here: on disk, every
// removed directory or file frees blocks, which costs milliseconds each on
// some hosts, so they are moved aside (renames, atomic) and cleanup
// returns where they went, for purge (at once, or once the caller has
// answered). What a crash leaves aside is swept by the next snapshotter
// Open and container prune.
func (e *Engine) cleanup(ctx context.Context, c *Container) ([]string, error) {
	var errs []error
	trace.Mark("cleanup: begin")
	// The runtime's part (processes, cgroups, state) and the engine's
	// (mount, layer, record) touch nothing of each other's: both at once.
	rtDone := make(chan error, 1)
	go func() { rtDone <- e.rt.Delete(c.ID, true) }()
	remove := e.snap.RemoveLater
	if err := unmountAll(e.rootfs(c.ID)); err != nil {
		errs = append(errs, err)
	} else {
		// The rootfs is the one place the engine mounts the layer.
		remove = e.snap.RemoveUnmounted
	}
	trace.Mark("cleanup: unmounted")
	var aside []string
	trash, err := remove(ctx, snapshotKey(c.ID))
	trace.Mark("cleanup: snap removed")
	if err != nil && !isSnapNotFound(err) {
		errs = append(errs, err)
	}
	if trash != "" {
		aside = append(aside, trash)
	}
	if err := e.snap.Release(ctx, ownerKey(c.ID)); err != nil {
		errs = append(errs, err)
	}
	unmountAll(e.shmDir(c.ID))
	e.unmountMapped(c.ID, &c.Config.Spec)
	aside = append(aside, setAside(e.runDir(c.ID)), setAside(e.persistDir(c.ID)))
	trace.Mark("cleanup: set aside")
	err = e.db.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM containers WHERE id = ?`, c.ID); err != nil {
			return err
		}
		e.emitIn(ctx, tx, c, "destroy", nil)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := <-rtDone; err != nil {
		errs = append(errs, err)
	}
	trace.Mark("cleanup: rt deleted")
	// Its process is gone: its networks go (a killed monitor, or rm -f,
	// which kills the monitor, left them).
	if len(c.Config.Net.Networks) > 0 {
		if err := e.detachNetworks(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	return aside, errors.Join(errs...)
}

// purge deletes what cleanup set aside: now, or with PurgeInBackground,
// by one detached process when the engine closes. It also sweeps what a
// remover killed before its purge left aside (two directory reads), so
// that the next removal, not only a prune, reclaims it: once per engine
// (a command that removes fifty containers sweeps once).
func (e *Engine) purge(paths []string) {
	e.mu.Lock()
	swept := e.swept
	e.swept = true
	e.mu.Unlock()
	if !swept {
		e.sweepAside()
	}
	e.mu.Lock()
	if e.background {
		e.trash = append(e.trash, paths...)
		e.mu.Unlock()
		return
	}
	if e.concurrent {
		e.purging.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.purging.Done()
			for _, p := range paths {
				os.RemoveAll(p)
			}
		}()
		return
	}
	e.mu.Unlock()
	for _, p := range paths {
		os.RemoveAll(p)
	}
}

// PurgeConcurrently makes Remove return as soon as the container is gone
// (from the records, the mounts, the names), as PurgeInBackground does,
// for a long-lived engine (the CRI server) that would otherwise keep the
// files until Close: what a removal set aside is deleted at once by a
// goroutine. Deleting a container's layer and directories took 30-50 ms
// of each CRI RemoveContainer on a loaded host (bench/cri.sh). Close waits
// for the deletions under way; what a killed server left is swept by the
// next removal (sweepAside: the directories are named for their pid).
func (e *Engine) PurgeConcurrently() {
	e.mu.Lock()
	e.concurrent = true
	e.mu.Unlock()
}

// PurgeInBackground makes Remove return as soon as the container is gone
// (from the records, the mounts, the names): the files it set aside are
// deleted by a detached `rm -rf` that Close starts, so removing many
// containers does not wait for the disk.
func (e *Engine) PurgeInBackground() {
	e.mu.Lock()
	e.background = true
	e.mu.Unlock()
}

// purgeDetached starts one process, in its own session, that deletes
// paths; it falls back to deleting them here.
func purgeDetached(paths []string) {
	if len(paths) == 0 {
		return
	}
	if rm, err := exec.LookPath("rm"); err == nil {
		cmd := exec.Command(rm, append([]string{"-rf", "--"}, paths...)...)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if cmd.Start() == nil {
			cmd.Process.Release()
			return
		}
	}
	for _, p := range paths {
		os.RemoveAll(p)
	}
}

// asidePrefix names directories set aside for removal: .gone-<pid>-<name>.
const asidePrefix = ".gone-"

// setAside renames dir to a hidden sibling named for this process and
// returns the new path (dir itself if the rename fails, so the purge
// still removes it).
func setAside(dir string) string {
	to := filepath.Join(filepath.Dir(dir), fmt.Sprintf("%s%d-%s", asidePrefix, os.Getpid(), filepath.Base(dir)))
	if err := os.Rename(dir, to); err != nil {
		return dir
	}
	return to
}

// sweepAside removes what processes that died before their purge set
// aside under the container directories, and the directories of creations
// killed before their record was made (sweepUnrecorded).
func (e *Engine) sweepAside() {
	for i, parent := range []string{filepath.Dir(e.persistDir("x")), filepath.Dir(e.runDir("x"))} {
		entries, _ := os.ReadDir(parent)
		if i == 0 && e.db != nil { // (not in unit tests of the sweep alone)
			e.sweepUnrecorded(entries)
			e.sweepRuntime()
		}
		for _, ent := range entries {
			rest, ok := strings.CutPrefix(ent.Name(), asidePrefix)
			if !ok {
				continue
			}
			pid, _, _ := strings.Cut(rest, "-")
			if n, err := strconv.Atoi(pid); err == nil && n != os.Getpid() && unix.Kill(n, 0) == unix.ESRCH {
				os.RemoveAll(filepath.Join(parent, ent.Name()))
			}
		}
	}
}

// sweepUnrecorded removes the state directories (entries of the
// containers directory) that have no record and whose creation lock is
// free: hull before the creation claim (Create) made the directory and
// took the lock just before it recorded the container, and a command
// killed in between left the directory with nothing to remove it; a
// removal killed between the record and the directory leaves one too.
// Create now makes the directory after the record.
func (e *Engine) sweepUnrecorded(entries []os.DirEntry) {
	for _, id := range e.unrecorded(entries) {
		f, err := os.Open(e.creationLock(id))
		if err != nil {
			// No lock yet: a creation may be between making the
			// directory and its lock; one that old is not.
			if st, err := os.Stat(e.persistDir(id)); err != nil || time.Since(st.ModTime()) < 10*time.Second {
				continue
			}
			f = nil
		} else if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue // a creation at work
		}
		// Under the lock (or with none), a record made meanwhile is
		// looked for again.
		if _, err := e.lookup(context.Background(), e.db, id); IsNotFound(err) {
			os.RemoveAll(e.persistDir(id))
		}
		if f != nil {
			f.Close()
		}
	}
}

// sweepRuntime ends the runtime state (processes, cgroups) of containers
// that have no record: a removal deletes the record while the runtime's
// part runs beside it, and one killed in between leaves the cgroups and
// the state directory with nothing to remove them. Only state that is
// whole (state.json: its create finished, so its record existed) counts;
// a container process started ahead for a run still at work has none yet.
func (e *Engine) sweepRuntime() {
	entries, _ := os.ReadDir(e.rt.Root)
	for _, id := range e.unrecorded(entries) {
		if _, err := os.Stat(filepath.Join(e.rt.Root, id, "state.json")); err == nil {
			e.rt.Delete(id, true)
		}
	}
}

// unrecorded lists the entries named by a container ID that has no
// record. The common case, no more such entries than records, costs one
// count and no lookup.
func (e *Engine) unrecorded(entries []os.DirEntry) []string {
	var ids []string
	for _, ent := range entries {
		if validID(ent.Name()) {
			ids = append(ids, ent.Name())
		}
	}
	var n int
	if len(ids) == 0 || e.db.QueryRow(`SELECT count(*) FROM containers`).Scan(&n) != nil || n >= len(ids) {
		return nil
	}
	var out []string
	for _, id := range ids {
		if _, err := e.lookup(context.Background(), e.db, id); IsNotFound(err) {
			out = append(out, id)
		}
	}
	return out
}

func unmountAll(target string) error {
	// Until the kernel says target is no mount point (EINVAL), or is gone:
	// cheaper than reading the mount table before each unmount.
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		switch {
		case err == nil:
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ParseSignal accepts docker's forms: KILL, SIGKILL, 9.
func ParseSignal(s string) (unix.Signal, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid signal %q", s))
		}
		return unix.Signal(n), nil
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid signal %q: use a name like TERM or KILL, or a number", s))
}
