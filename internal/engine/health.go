package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"hull/internal/image"
	"hull/internal/shim"
)

// Health checks, with docker's semantics.
//
// A container's health check is its image's HEALTHCHECK with the
// --health-* flags laid over it field by field (Create stores the result
// in Config.Healthcheck). A container whose check probes (CMD or
// CMD-SHELL) gets a prober, which its monitor starts in a session of its
// own when it begins to supervise the container (startProber; never for
// a container without a check, so their starts cost nothing):
//
//   - `hull-shim health` (shim.HealthMain) paces it: it waits between
//     rounds, small and static, and ends the moment the monitor process
//     (its parent) has exited.
//   - Each round is a short `hull health ID` (ProbeRound): it runs the
//     probe when one is due, inside the running container as `hull exec`
//     does (Engine.Exec, the probe its own child), kills it at the
//     timeout, records the result in the container's health.json
//     (healthState, from which inspect, ps and why read), and says when
//     the next round is due.
//
// Why processes of their own: a detached container's monitor becomes
// hull-shim (docs/process-model.md), which runs none of hull's Go code,
// so the probes cannot be a goroutine of the monitor. Why two: a prober
// that stayed a hull process cost a container about 21 MB resident for
// as long as it ran (the monitor's size); paced by hull-shim it costs
// about 2 MB, and hull's start (a few ms of processor time) once per
// probe, which docker's exec costs as well.
//
// The monitor's pid holds across the hand-overs to hull-shim and back and
// across the restart policy's restarts, and the monitor exits once the
// container has stopped for good, was killed or was removed (rm -f ends
// it): the prober, watching it through a pidfd, goes with it, never
// before, so it is never left a zombie (init, or the subreaper above,
// reaps it). While the container restarts or is paused no probe runs; a
// new run begins again from "starting" with the log kept, as docker's
// does.

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
	probeStartTimeout          = 30 * time.Second
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

// startProber starts the prober of c when it has a check that probes:
// `hull-shim health -- hull health ID` (or, without hull-shim, `hull
// health --serve ID`), in a session of its own, its output going to the
// monitor's log. It is called once per monitor process (not when
// hull-shim execs it back: the prober started first is still there,
// watching the same pid).
func (e *Engine) startProber(c *Container) {
	if !c.Config.Healthcheck.Probes() || e.HullCommand == nil {
		return
	}
	argv := e.HullCommand("health", c.ID)
	if e.ShimPath != "" && unix.Access(e.ShimPath, unix.X_OK) == nil {
		argv = append([]string{e.ShimPath, "health", "--"}, argv...)
	} else {
		argv = e.HullCommand("health", "--"+HealthFlagServe, c.ID)
	}
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

// HealthFlagServe makes `hull health` the whole prober (shim.Repeat of
// ProbeRound in this process), for when there is no hull-shim to pace
// the rounds.
const HealthFlagServe = "serve"

// ServeHealth is `hull health ID`: one ProbeRound, its verdict printed
// for hull-shim health (shim.Round); with serve, every round, in
// this process, until the monitor (its parent) exits.
func (e *Engine) ServeHealth(ctx context.Context, id string, serve bool) error {
	// A probe is this process's child, reaped by it: no supervisor.
	e.ShimPath = ""
	if serve {
		shim.Repeat(func() shim.Round { return e.ProbeRound(ctx, id) })
		return nil
	}
	_, err := os.Stdout.WriteString(e.ProbeRound(ctx, id).String())
	return err
}

// healthPoll is how often a round looks again at a container that does
// not run (yet).
const healthPoll = 200 * time.Millisecond

// ProbeRound is one round of container id's prober: it runs the check
// when it is due, records the result, and says when the next round is
// due (after a wait, or once the running container's process has
// exited); done when the container is gone or has no check. The rounds
// are paced by their caller (shim.Repeat), which ends them with the
// monitor.
//
// A round that finds a run it has not seen (the first, or one the
// restart policy started) begins its health from "starting", with the
// log of the runs before, and schedules its first probe one interval
// after the run's start; later rounds probe.
func (e *Engine) ProbeRound(ctx context.Context, id string) shim.Round {
	c, err := e.lookup(ctx, e.db, id)
	if err != nil {
		if IsNotFound(err) {
			return shim.Round{Done: true}
		}
		fmt.Fprintf(os.Stderr, "health check of %s: %v\n", shortID(id), err)
		return shim.Round{Next: time.Second}
	}
	hc := c.Config.Healthcheck
	switch {
	case !hc.Probes():
		return shim.Round{Done: true}
	case c.State == StatePaused:
		// docker does not probe a paused container.
		return shim.Round{Next: orDefault(hc.Interval, defaultHealthInterval), Pid: c.Pid, Start: c.PidStart}
	case c.State == StateRestarting:
		return shim.Round{Next: max(time.Until(c.BackoffUntil), healthPoll)}
	case c.State != StateRunning || !processRuns(c.Pid, c.PidStart):
		return shim.Round{Next: healthPoll} // not yet, or no longer, running
	}
	round := func(next time.Duration) shim.Round { return shim.Round{Next: next, Pid: c.Pid, Start: c.PidStart} }
	st := e.readHealth(id)
	if run := c.Started.UnixNano(); st.Run != run {
		st = healthState{Run: run, Health: Health{Status: HealthStarting, Log: st.Log}}
		if err := writeHealth(e.healthFile(id), &st); err != nil {
			fmt.Fprintf(os.Stderr, "health check of %s: %v\n", shortID(id), err)
		}
		return round(st.next(hc, c.Started) - time.Since(c.Started))
	}
	res := e.probe(ctx, c, hc)
	if cur, err := e.lookup(ctx, e.db, id); err != nil || cur.Started != c.Started || !processRuns(c.Pid, c.PidStart) {
		return shim.Round{Next: healthPoll} // the run ended during the probe: its result says nothing
	}
	old := st.Status
	st.apply(res, hc, c.Started)
	if err := writeHealth(e.healthFile(id), &st); err != nil {
		fmt.Fprintf(os.Stderr, "health check of %s: %v\n", shortID(id), err)
	}
	if st.Status != old {
		e.emit(ctx, c, "health_status: "+st.Status, nil)
	}
	return round(st.next(hc, c.Started))
}

// processRuns reports whether the process pid started at start runs and
// is not exiting: a container's first process that is being killed
// keeps its pid (and /proc/PID/stat) while it waits for the other
// processes of its pid namespace to go, which can take a while; its
// namespaces are gone from the start of its exit (/proc/PID/ns/mnt
// then reads as missing), and a probe could not join them.
func processRuns(pid int, start uint64) bool {
	if pid <= 0 || procStart(pid) != start {
		return false
	}
	_, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
	return err == nil
}

// next is the wait after a probe, docker's: the start interval while the
// start period lasts and the container is still starting, else the
// interval.
func (st *healthState) next(hc *HealthConfig, started time.Time) time.Duration {
	if st.Status == HealthStarting && time.Since(started) < hc.StartPeriod {
		return orDefault(hc.StartInterval, defaultHealthStartInterval)
	}
	return orDefault(hc.Interval, defaultHealthInterval)
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
	// Starting the probe does not count towards its timeout, but has a
	// bound of its own (docker's 30 s): an exec racing the container's
	// death must not hold the round. A round then ends (its process
	// exits), and with it what the exec left.
	type started struct {
		x   *ExecProcess
		err error
	}
	ch := make(chan started, 1)
	go func() {
		x, err := e.Exec(ctx, c.ID, ExecSpec{Args: hc.command()}, ExecIO{Stdout: &out, Stderr: &out})
		ch <- started{x, err}
	}()
	var s started
	select {
	case s = <-ch:
	case <-time.After(probeStartTimeout):
		s.err = fmt.Errorf("timed out starting health check for container %s", c.ID)
	}
	x, err := s.x, s.err
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
