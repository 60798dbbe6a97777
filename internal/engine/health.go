package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"hull/internal/image"
)

// Health checks, with docker's semantics.
//
// A container's health check is its image's HEALTHCHECK with the
// --health-* flags laid over it field by field (Create stores the result
// in Config.Healthcheck). A container whose check probes (CMD or
// CMD-SHELL) gets a prober: the hidden `hull health ID` process, which
// its monitor starts in a session of its own when it begins to supervise
// the container (startProber; never for a container without a check, so
// their starts cost nothing). The prober runs each probe inside the
// running container as `hull exec` does (Engine.Exec, the probe its own
// child), kills it after the timeout, and keeps the results in the
// container's health.json (healthState), from which inspect, ps and why
// read them.
//
// Why a process of its own: a detached container's monitor becomes
// hull-shim (docs/process-model.md), which runs no Go code of hull's, so
// the probes cannot be a goroutine of the monitor. The prober lives as
// long as the monitor process does, across restarts and the hand-overs
// to hull-shim and back (one pid throughout): it watches the monitor
// through a pidfd and exits the moment the monitor has, that is once the
// container has stopped for good, was killed, or was removed (rm -f ends
// the monitor). Because it outlives its parent, it is never left a
// zombie: init (or the subreaper above) reaps it. While the container
// restarts or is paused it waits; a new run starts again from "starting"
// with the log kept, as docker's does.

// HealthConfig is a container's (or an image's) health check, docker's
// Config.Healthcheck: Test is ["CMD", args...], ["CMD-SHELL", command],
// ["NONE"] (disabled) or empty (inherit); durations are nanoseconds, zero
// meaning inherit (then docker's defaults).
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// docker's defaults for a field left zero, and what it keeps.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	healthLogEntries           = 5
	healthOutputMax            = 4096
)

// Health statuses (docker's words).
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	// HealthNone is ps --filter health='s word for a container without a
	// health check.
	HealthNone = "none"
)

// Health is a container's health: inspect's State.Health.
type Health struct {
	Status        string         `json:"Status"`
	FailingStreak int            `json:"FailingStreak"`
	Log           []HealthResult `json:"Log"`
}

// HealthResult is one probe's result. ExitCode 0 is healthy; -1 is a
// probe that could not run or ran out of time (Output says which).
type HealthResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// Probes reports whether the check runs anything (CMD or CMD-SHELL).
func (h *HealthConfig) Probes() bool {
	return h != nil && len(h.Test) > 1 && (h.Test[0] == "CMD" || h.Test[0] == "CMD-SHELL")
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (h *HealthConfig) retries() int {
	if h.Retries <= 0 {
		return defaultHealthRetries
	}
	return h.Retries
}

// command is the probe's argv: CMD's arguments, or CMD-SHELL's command
// run by /bin/sh -c (docker's shell on Linux).
func (h *HealthConfig) command() []string {
	if h.Test[0] == "CMD-SHELL" {
		return []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	}
	return h.Test[1:]
}

// HealthFlags are run/create's --health-* flags and --no-healthcheck; a
// zero value is a flag not given (docker's rule: the image's applies).
type HealthFlags struct {
	Cmd                                           string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
	NoHealthcheck                                 bool
}

// Healthcheck turns the flags into the container's own health check (nil:
// none given, the image's applies), refusing what docker refuses: a
// negative value, a duration under a millisecond, --no-healthcheck with
// another --health-* flag.
func (f HealthFlags) Healthcheck() (*HealthConfig, error) {
	bad := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
	}
	given := f.Cmd != "" || f.Interval != 0 || f.Timeout != 0 || f.StartPeriod != 0 || f.StartInterval != 0 || f.Retries != 0
	if f.NoHealthcheck {
		if given {
			return nil, bad("--no-healthcheck conflicts with --health-* options: give one or the other")
		}
		return &HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !given {
		return nil, nil
	}
	h := &HealthConfig{Interval: f.Interval, Timeout: f.Timeout, StartPeriod: f.StartPeriod, StartInterval: f.StartInterval, Retries: f.Retries}
	if f.Cmd != "" {
		h.Test = []string{"CMD-SHELL", f.Cmd}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"interval", f.Interval}, {"timeout", f.Timeout}, {"start-period", f.StartPeriod}, {"start-interval", f.StartInterval}} {
		switch {
		case d.v < 0:
			return nil, bad("--health-%s cannot be negative", d.flag)
		case d.v > 0 && d.v < time.Millisecond:
			return nil, bad("--health-%s %v: it cannot be less than 1ms (give a duration such as 500ms or 2s)", d.flag, d.v)
		}
	}
	if f.Retries < 0 {
		return nil, bad("--health-retries cannot be negative")
	}
	return h, nil
}

// mergeHealth lays the container's own check over its image's field by
// field, as docker does at create: what the container leaves empty or
// zero, the image gives.
func mergeHealth(own, img *HealthConfig) *HealthConfig {
	if img == nil {
		return own
	}
	if own == nil {
		c := *img
		return &c
	}
	m := *own
	if len(m.Test) == 0 {
		m.Test = img.Test
	}
	if m.Interval == 0 {
		m.Interval = img.Interval
	}
	if m.Timeout == 0 {
		m.Timeout = img.Timeout
	}
	if m.StartPeriod == 0 {
		m.StartPeriod = img.StartPeriod
	}
	if m.StartInterval == 0 {
		m.StartInterval = img.StartInterval
	}
	if m.Retries == 0 {
		m.Retries = img.Retries
	}
	return &m
}

// containerHealthcheck is the check a container created from the image
// (rec, its parsed config cf) with its own check runs: see mergeHealth.
// The image's config is read again only when it has a HEALTHCHECK, for
// StartInterval, which go-containerregistry's HealthConfig lacks.
func (e *Engine) containerHealthcheck(rec *image.Record, cf *v1.ConfigFile, own *HealthConfig) *HealthConfig {
	if cf == nil || cf.Config.Healthcheck == nil {
		return own
	}
	ih := cf.Config.Healthcheck
	img := &HealthConfig{Test: ih.Test, Interval: ih.Interval, Timeout: ih.Timeout, StartPeriod: ih.StartPeriod, Retries: ih.Retries}
	if raw, err := e.images.Store().ReadAll(rec.ConfigID); err == nil {
		var full struct {
			Config struct{ Healthcheck *HealthConfig } `json:"config"`
		}
		if json.Unmarshal(raw, &full) == nil && full.Config.Healthcheck != nil {
			img.StartInterval = full.Config.Healthcheck.StartInterval
		}
	}
	return mergeHealth(own, img)
}

// healthState is a container's health.json: the health as of its run
// that started at Run (Container.Started, ns). Only its prober writes it.
type healthState struct {
	Run int64 `json:"Run"`
	Health
}

func (e *Engine) healthFile(id string) string { return filepath.Join(e.persistDir(id), "health.json") }

func (e *Engine) readHealth(id string) healthState {
	var st healthState
	if data, err := os.ReadFile(e.healthFile(id)); err == nil {
		json.Unmarshal(data, &st)
	}
	return st
}

// health is c's health: nil when it has no check that probes or never
// started (docker's Health is nil then). A run the prober has recorded
// nothing of yet is "starting", with the log of the runs before it.
func (e *Engine) health(c *Container) *Health {
	if !c.Config.Healthcheck.Probes() || c.Started.IsZero() {
		return nil
	}
	st := e.readHealth(c.ID)
	if st.Run != c.Started.UnixNano() {
		st.Status, st.FailingStreak = HealthStarting, 0
	}
	if st.Log == nil {
		st.Log = []HealthResult{}
	}
	return &st.Health
}

// fillHealth sets Health on the containers that have a check.
func (e *Engine) fillHealth(cs []*Container) {
	for _, c := range cs {
		c.Health = e.health(c)
	}
}

// HealthStatus is the word ps --filter health= matches: the status, or
// HealthNone without a check (Health must have been filled: List does).
func (c *Container) HealthStatus() string {
	if c.Health == nil {
		return HealthNone
	}
	return c.Health.Status
}

// startProber starts the prober of c, when it has a check that probes,
// in a session of its own, its output going to the monitor's log. It is
// called once per monitor process (not when hull-shim execs it back: the
// prober started first is still there, watching the same pid).
func (e *Engine) startProber(c *Container) {
	if !c.Config.Healthcheck.Probes() || e.HullCommand == nil {
		return
	}
	argv := e.HullCommand("health", c.ID)
	cmd := &exec.Cmd{
		Path: argv[0], Args: argv, Dir: "/", Stdout: os.Stderr, Stderr: os.Stderr,
		Env:         append(os.Environ(), "GOMAXPROCS=1"),
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "health check of %s: start the prober: %v\n", shortID(c.ID), err)
		return
	}
	// Reaped here should it end first (it normally outlives this
	// process; then init reaps it).
	go cmd.Wait()
}

// ServeHealth is the prober process of container id (`hull health ID`,
// started by its monitor, its parent: see startProber). It returns once
// the monitor has exited, or the container is gone or has no check.
func (e *Engine) ServeHealth(ctx context.Context, id string) error {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	mon := watchProcess(os.Getppid())
	defer mon.close()
	if !mon.alive() {
		return nil
	}
	// A probe is this process's child, reaped by it: no supervisor.
	e.ShimPath = ""
	p := &prober{e: e, id: id, mon: mon}
	for {
		c, err := e.lookup(ctx, e.db, id)
		switch {
		case IsNotFound(err):
			return nil
		case err == nil && !c.Config.Healthcheck.Probes():
			return nil
		case err == nil && c.State == StateRunning && c.Pid > 0:
			if !p.probeRun(ctx, c) {
				return nil
			}
			continue
		}
		// Not running yet, restarting, or stopped with the monitor about
		// to exit.
		if mon.wait(250*time.Millisecond, nil) {
			return nil
		}
	}
}

// prober runs one container's probes.
type prober struct {
	e   *Engine
	id  string
	mon *watched
}

// probeRun probes the run of c (running) until it ends; false when the
// monitor is gone.
func (p *prober) probeRun(ctx context.Context, c *Container) bool {
	hc := c.Config.Healthcheck
	proc := watchProcess(c.Pid)
	defer proc.close()
	if !proc.alive() || procStart(c.Pid) != c.PidStart {
		// An old record: wait for the new one.
		return !p.mon.wait(50*time.Millisecond, nil)
	}
	run := c.Started.UnixNano()
	st := p.e.readHealth(c.ID)
	if st.Run != run {
		st = healthState{Run: run, Health: Health{Status: HealthStarting, Log: st.Log}}
	}
	interval := orDefault(hc.Interval, defaultHealthInterval)
	startInterval := orDefault(hc.StartInterval, defaultHealthStartInterval)
	// docker's: the start interval while the start period lasts and the
	// container is not yet healthy, else the interval; counted from the
	// end of the last probe, the first from the start.
	next := func() time.Duration {
		if time.Since(c.Started) < hc.StartPeriod && st.Status == HealthStarting {
			return startInterval
		}
		return interval
	}
	wait := next() - time.Since(c.Started)
	for {
		if p.mon.wait(wait, proc) {
			return false
		}
		if !proc.alive() {
			return true // the run ended
		}
		cur, err := p.e.lookup(ctx, p.e.db, c.ID)
		if err != nil || cur.Started != c.Started || (cur.State != StateRunning && cur.State != StatePaused) {
			return err == nil || !IsNotFound(err)
		}
		if cur.State == StatePaused {
			// docker does not probe a paused container.
			wait = next()
			continue
		}
		res := p.e.probe(ctx, cur, hc)
		if !p.mon.alive() || !proc.alive() {
			// Ended during the probe: its failure says nothing.
			continue
		}
		old := st.Status
		st.apply(res, hc, c.Started)
		if err := writeHealth(p.e.healthFile(c.ID), &st); err != nil {
			fmt.Fprintf(os.Stderr, "health check of %s: %v\n", shortID(c.ID), err)
		}
		if st.Status != old {
			p.e.emit(ctx, cur, "health_status: "+st.Status, nil)
		}
		wait = next()
	}
}

// apply records one result with docker's rules: a success makes the
// container healthy and clears the failing streak; a failure lengthens
// the streak, except while it is starting within its start period, and
// the streak reaching the retries makes it unhealthy.
func (st *healthState) apply(r HealthResult, hc *HealthConfig, started time.Time) {
	st.Log = append(st.Log, r)
	if n := len(st.Log); n > healthLogEntries {
		st.Log = append([]HealthResult(nil), st.Log[n-healthLogEntries:]...)
	}
	if r.ExitCode == 0 {
		st.FailingStreak, st.Status = 0, HealthHealthy
		return
	}
	if st.Status == HealthStarting && r.Start.Sub(started) < hc.StartPeriod {
		return
	}
	if st.FailingStreak++; st.FailingStreak >= hc.retries() {
		st.Status = HealthUnhealthy
	}
}

func writeHealth(path string, st *healthState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFile(path, data)
}

// probe runs the check once in c and returns its result: the exit code
// and the first 4 KiB of its output (stdout and stderr together); -1 for
// a probe that could not start or ran out of time, as docker's.
func (e *Engine) probe(ctx context.Context, c *Container, hc *HealthConfig) HealthResult {
	r := HealthResult{Start: time.Now()}
	var out limitedBuffer
	x, err := e.Exec(ctx, c.ID, ExecSpec{Args: hc.command()}, ExecIO{Stdout: &out, Stderr: &out})
	if err != nil {
		r.End, r.ExitCode, r.Output = time.Now(), -1, err.Error()
		return r
	}
	done := make(chan int, 1)
	go func() { done <- x.Wait() }()
	timeout := orDefault(hc.Timeout, defaultHealthTimeout)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r.ExitCode = <-done:
		r.Output = out.String()
	case <-t.C:
		x.Kill(unix.SIGKILL)
		<-done
		r.ExitCode = -1
		r.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		if o := out.String(); o != "" {
			r.Output += ": " + o
		}
	}
	r.End = time.Now()
	return r
}

// limitedBuffer keeps the first healthOutputMax bytes written to it,
// marking a cut with "..." (docker's).
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	cut bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(healthOutputMax-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.cut = true
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}

// watched is a process watched for its exit: through a pidfd, which
// becomes readable the moment it exits, or, without pidfds, by polling
// its start time.
type watched struct {
	pid   int
	start uint64
	fd    int // -1: no pidfd
}

func watchProcess(pid int) *watched {
	w := &watched{pid: pid, fd: -1}
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		w.fd = fd
	}
	// Read after opening: the pidfd then names this process, not one
	// that reused its pid.
	w.start = procStart(pid)
	return w
}

func (w *watched) alive() bool {
	return w.start != 0 && procStart(w.pid) == w.start
}

func (w *watched) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
	}
}

// wait waits d for w to exit, waking early when other (if any) exits;
// it reports whether w has exited.
func (w *watched) wait(d time.Duration, other *watched) bool {
	deadline := time.Now().Add(d)
	for {
		if !w.alive() {
			return true
		}
		if other != nil && !other.alive() {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		var fds []unix.PollFd
		for _, x := range []*watched{w, other} {
			if x != nil && x.fd >= 0 {
				fds = append(fds, unix.PollFd{Fd: int32(x.fd), Events: unix.POLLIN})
			}
		}
		step := left
		if w.fd < 0 || other != nil && other.fd < 0 {
			step = min(left, 100*time.Millisecond) // no pidfd: polled
		}
		n, err := unix.Poll(fds, int(step.Milliseconds())+1)
		if n > 0 {
			// A pidfd of a process in the middle of an execve from
			// another thread can read as exited for a moment (see
			// procStart): alive() decides, after a breath.
			if w.alive() && (other == nil || other.alive()) {
				time.Sleep(10 * time.Millisecond)
			}
		} else if err != nil && !errors.Is(err, unix.EINTR) {
			time.Sleep(step)
		}
	}
}

// inspectHealth fills inspect's State.Health and Config.Healthcheck.
func (e *Engine) inspectHealth(c *Container, d *Inspect) {
	d.State.Health = e.health(c)
	d.Config.Healthcheck = c.Config.Healthcheck
}

// whyHealth adds an unhealthy container's health check to its diagnosis:
// the verdict, and the last probe's exit code and output as evidence.
func (e *Engine) whyHealth(c *Container, d *Diagnosis) {
	h := e.health(c)
	if h == nil || h.Status != HealthUnhealthy || len(h.Log) == 0 {
		return
	}
	last := h.Log[len(h.Log)-1]
	d.Status += fmt.Sprintf("; unhealthy: its health check failed %d times in a row", h.FailingStreak)
	out := strings.TrimSpace(last.Output)
	if out == "" {
		out = "(no output)"
	}
	d.Evidence = append([]string{fmt.Sprintf("last health check (%s, exit code %d): %s",
		last.Start.Local().Format(time.TimeOnly), last.ExitCode, out)}, d.Evidence...)
	if c.State == StateRunning {
		d.Next = fmt.Sprintf("run the check by hand to see why it fails: hull exec %s %s", c.Name, strings.Join(quoteArgs(c.Config.Healthcheck.command()), " "))
	}
}

// quoteArgs quotes the arguments a shell would split.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
