package monitor_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/monitor"
	"hull/internal/runtime"
	"hull/internal/streams"
	"hull/internal/testenv"
)

// The tests run real containers, as root: a busybox root filesystem made
// from the host's busybox-static, the runtime of internal/runtime with
// hull-init ($HULL_INIT) or, without it, this test binary as the init, and
// a fake Recorder. Each test deletes what it made (containers, cgroups,
// processes) even when it fails.

func TestMain(m *testing.M) {
	// The runtime starts this binary as a container's init when there is
	// no hull-init; the hand-over test starts it as a monitor.
	if runtime.IsInit() {
		runtime.InitMain()
	}
	if setup := os.Getenv(handOverEnv); setup != "" {
		os.Exit(handOverChild(setup))
	}
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "skipping monitor tests: they need root")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// event is one call the monitor made on its Recorder.
type event struct {
	Kind     string // started, exited, restarting, done (and, from the hand-over child, ready, resumed)
	At       time.Time
	Pid      int
	PidStart uint64
	Count    int // restart count (started, restarting)
	Delay    time.Duration
	Exit     monitor.Exit
	Error    string
}

// recorder is a Recorder that keeps every call. StopRequested turns true
// once stopAfter exits are recorded (never with 0), or with stop.
type recorder struct {
	mu        sync.Mutex
	events    []event
	stopAfter int
	stop      atomic.Bool
	started   chan int // each started pid
	afterRan  atomic.Bool
}

func newRecorder() *recorder { return &recorder{started: make(chan int, 16)} }

func (r *recorder) add(e event) {
	e.At = time.Now()
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) Started(pid int, pidStart uint64, restartCount int) error {
	r.add(event{Kind: "started", Pid: pid, PidStart: pidStart, Count: restartCount})
	r.started <- pid
	return nil
}

func (r *recorder) Exited(e monitor.Exit) error {
	r.add(event{Kind: "exited", Exit: e})
	if r.stopAfter > 0 && len(r.of("exited")) >= r.stopAfter {
		r.stop.Store(true)
	}
	return nil
}

func (r *recorder) Restarting(count int, delay time.Duration) error {
	r.add(event{Kind: "restarting", Count: count, Delay: delay})
	return nil
}

func (r *recorder) StopRequested() bool { return r.stop.Load() }

func (r *recorder) Done(e monitor.Exit) func() {
	r.add(event{Kind: "done", Exit: e})
	return func() { r.afterRan.Store(true) }
}

// of returns the events of kind, in order.
func (r *recorder) of(kind string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// kinds returns the sequence of event kinds.
func (r *recorder) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []string
	for _, e := range r.events {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}

var seq atomic.Int64

// container is one test container: its bundle, a runtime with a private
// state root, and a monitor Config for it.
type container struct {
	t           *testing.T
	rt          *runtime.Runtime
	cfg         monitor.Config
	cgroupsPath string
}

// newContainer makes a bundle running args in a busybox root filesystem
// (mutate, if set, changes its spec) and a Config for its monitor. The
// container, its cgroups and its processes are removed when the test ends.
func newContainer(t *testing.T, args []string, mutate func(*specs.Spec)) *container {
	t.Helper()
	id := fmt.Sprintf("montest-%d-%d", os.Getpid(), seq.Add(1))
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	c := &container{
		t:           t,
		rt:          &runtime.Runtime{Root: filepath.Join(dir, "state"), InitPath: os.Getenv("HULL_INIT"), Warn: func(m string) { t.Log("runtime:", m) }},
		cgroupsPath: "/" + id,
		cfg: monitor.Config{
			ID: id, Bundle: bundle, RuntimeRoot: filepath.Join(dir, "state"),
			LogPath: filepath.Join(dir, "container.log"), LogMaxSize: 1 << 20, LogMaxFiles: 2,
			BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
		},
	}
	writeRootfs(t, filepath.Join(bundle, "rootfs"))
	s := runtime.DefaultSpec()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Linux.CgroupsPath = c.cgroupsPath
	if mutate != nil {
		mutate(s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.rt.Delete(id, true); err != nil {
			t.Errorf("cleanup: delete %s: %v", id, err)
		}
		if cg := c.cgroup(); cg != nil && cg.Exists() {
			t.Errorf("cleanup: cgroup %s was left", cg.Path)
			cg.Destroy()
		}
	})
	return c
}

// writeRootfs puts busybox and its applets in dir, with the directories
// the default spec mounts on.
func writeRootfs(t *testing.T, dir string) {
	t.Helper()
	bb, err := os.ReadFile(testenv.BusyboxBinary)
	if err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range testenv.Applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *container) cgroup() *cgroups.Manager {
	cg, err := cgroups.New(cgroups.ContainerPath(c.cgroupsPath, c.cfg.ID))
	if err != nil {
		c.t.Errorf("cgroups of %s: %v", c.cfg.ID, err)
		return nil
	}
	return cg
}

// runResult is how monitor.Run ended.
type runResult struct {
	err      error
	ready    error // what ready was called with
	readies  int   // how many times ready was called
	duration time.Duration
}

// run runs the monitor to its end (at most a minute) and checks that it
// left nothing of the container: no runtime state, no cgroup.
func (c *container) run(rec monitor.Recorder) runResult {
	c.t.Helper()
	var res runResult
	var mu sync.Mutex
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- monitor.Run(c.cfg, c.rt, rec, func(err error) {
			mu.Lock()
			res.readies++
			res.ready = err
			mu.Unlock()
		})
	}()
	select {
	case res.err = <-done:
	case <-time.After(time.Minute):
		// Errorf, not Fatalf: run may be called from another goroutine.
		c.t.Errorf("monitor of %s still running after a minute", c.cfg.ID)
		mu.Lock()
		defer mu.Unlock()
		res.err = fmt.Errorf("monitor of %s still running", c.cfg.ID)
		return res
	}
	res.duration = time.Since(start)
	c.checkGone()
	mu.Lock()
	defer mu.Unlock()
	return res
}

// checkGone fails the test if anything of the container is left.
func (c *container) checkGone() {
	c.t.Helper()
	if _, err := os.Stat(filepath.Join(c.rt.Root, c.cfg.ID)); err == nil {
		c.t.Errorf("runtime state of %s left after the monitor ended", c.cfg.ID)
	}
	if cg := c.cgroup(); cg != nil && cg.Exists() {
		c.t.Errorf("cgroup %s left after the monitor ended", cg.Path)
	}
	if c.cfg.AttachSocket != "" {
		if _, err := os.Stat(c.cfg.AttachSocket); err == nil {
			c.t.Errorf("attach socket %s left after the monitor ended", c.cfg.AttachSocket)
		}
	}
}

// logRecords reads the log file at path (which must exist).
func logRecords(t *testing.T, path string) []streams.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []streams.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		r, err := streams.ParseLine(sc.Text())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func sh(script string) []string { return []string{"sh", "-c", script} }

// One run: the recorder learns the process, then how it ended (code,
// signal, time), then Done with that exit, in that order; ready is called
// once, with nil.
func TestExitIsRecorded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		kill   bool // SIGKILL it from the host once it runs
		code   int
		signal int
	}{
		{"exit code", sh("exit 7"), false, 7, 0},
		{"success", []string{"true"}, false, 0, 0},
		{"killed", []string{"sleep", "100"}, true, 137, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, tc.args, nil)
			c.cfg.RestartCount = 2 // carried into Started
			rec := newRecorder()
			if tc.kill {
				go func() {
					pid := <-rec.started
					unix.Kill(pid, unix.SIGKILL)
				}()
			}
			before := time.Now()
			res := c.run(rec)
			if res.err != nil || res.ready != nil || res.readies != 1 {
				t.Fatalf("Run = %v, ready(%v) called %d times; want nil, ready(nil) once", res.err, res.ready, res.readies)
			}
			if got := rec.kinds(); got != "started exited done" {
				t.Fatalf("recorder calls %q, want %q", got, "started exited done")
			}
			st := rec.of("started")[0]
			if st.Pid <= 0 || st.PidStart == 0 || st.Count != 2 {
				t.Errorf("Started(pid %d, start %d, restarts %d), want a pid, its start time and 2 restarts", st.Pid, st.PidStart, st.Count)
			}
			x := rec.of("exited")[0].Exit
			if x.Code != tc.code || x.Signal != tc.signal || x.OOMKilled || x.Stage != "" || x.Error != "" {
				t.Errorf("Exited(%+v), want code %d signal %d", x, tc.code, tc.signal)
			}
			if x.At.Before(before) || x.At.After(time.Now()) {
				t.Errorf("exit time %v is not within the run", x.At)
			}
			if d := rec.of("done")[0].Exit; d != x {
				t.Errorf("Done(%+v), want the recorded exit %+v", d, x)
			}
			if !rec.afterRan.Load() {
				t.Error("the work Done returned did not run")
			}
		})
	}
}

// A container that cannot be created is reported to ready and recorded as
// a failure of its stage, with code 125; it is not restarted, whatever the
// policy, and never recorded as started.
func TestCreateFailureIsRecorded(t *testing.T) {
	c := newContainer(t, []string{"true"}, func(s *specs.Spec) { s.Root.Path = "no-such-rootfs" })
	c.cfg.Restart = monitor.RestartPolicy{Name: "always"}
	rec := newRecorder()
	res := c.run(rec)
	if res.ready == nil || res.readies != 1 {
		t.Fatalf("ready(%v) called %d times, want once with the error", res.ready, res.readies)
	}
	if got := rec.kinds(); got != "exited done" {
		t.Fatalf("recorder calls %q, want %q", got, "exited done")
	}
	x := rec.of("exited")[0].Exit
	if x.Stage != "create" || x.Code != 125 || !strings.Contains(x.Error, "no-such-rootfs") || x.Error != res.ready.Error() {
		t.Errorf("Exited(%+v), want stage create, code 125 and the error given to ready (%v)", x, res.ready)
	}
}

// A container that runs out of memory is recorded as OOM-killed, with its
// cgroup's limit and peak; one that stays within the same limit is not.
func TestOOMKillIsRecorded(t *testing.T) {
	limit := int64(32 << 20)
	withLimit := func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}
	for _, tc := range []struct {
		name string
		args []string
		oom  bool
		code int
	}{
		{"over the limit", []string{"tail", "/dev/zero"}, true, 137},
		{"within the limit", sh("head -c 1048576 /dev/zero | wc -c"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, tc.args, withLimit)
			rec := newRecorder()
			if res := c.run(rec); res.err != nil || res.ready != nil {
				t.Fatalf("Run = %v, ready(%v)", res.err, res.ready)
			}
			ex := rec.of("exited")
			if len(ex) != 1 {
				t.Fatalf("recorder calls %q, want one exit", rec.kinds())
			}
			x := ex[0].Exit
			if x.OOMKilled != tc.oom || x.Code != tc.code {
				t.Errorf("Exited(%+v), want OOMKilled %v, code %d", x, tc.oom, tc.code)
			}
			if x.MemoryLimit != uint64(limit) || x.MemoryPeak == 0 || x.MemoryPeak > x.MemoryLimit {
				t.Errorf("memory peak %d, limit %d; want a peak within the limit %d", x.MemoryPeak, x.MemoryLimit, limit)
			}
		})
	}
}

// The restart policies, with the back-off doubling from BackoffBase up to
// BackoffMax, the count carried on from RestartCount, and a wait before
// each restart of at least the delay announced.
func TestRestartPolicy(t *testing.T) {
	const base, max = 10 * time.Millisecond, 40 * time.Millisecond
	for _, tc := range []struct {
		name      string
		policy    monitor.RestartPolicy
		script    string
		before    int // RestartCount
		stopAfter int // exits after which a stop is requested
		delays    []time.Duration
	}{
		{"no", monitor.RestartPolicy{Name: "no"}, "exit 1", 0, 0, nil},
		{"empty", monitor.RestartPolicy{}, "exit 1", 0, 0, nil},
		{"on-failure succeeds", monitor.RestartPolicy{Name: "on-failure", MaxRetries: 3}, "exit 0", 0, 0, nil},
		{"on-failure:2", monitor.RestartPolicy{Name: "on-failure", MaxRetries: 2}, "exit 4", 0, 0, []time.Duration{base, 2 * base}},
		{"on-failure:2 after one restart", monitor.RestartPolicy{Name: "on-failure", MaxRetries: 2}, "exit 4", 1, 0, []time.Duration{2 * base}},
		{"on-failure unlimited", monitor.RestartPolicy{Name: "on-failure"}, "exit 4", 0, 4, []time.Duration{base, 2 * base, 4 * base}},
		{"always, capped back-off", monitor.RestartPolicy{Name: "always"}, "exit 0", 0, 5, []time.Duration{base, 2 * base, 4 * base, max}},
		{"unless-stopped", monitor.RestartPolicy{Name: "unless-stopped"}, "exit 0", 1, 3, []time.Duration{2 * base, 4 * base}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, sh("echo run; "+tc.script), nil)
			c.cfg.Restart, c.cfg.RestartCount = tc.policy, tc.before
			c.cfg.BackoffBase, c.cfg.BackoffMax = base, max
			rec := newRecorder()
			rec.stopAfter = tc.stopAfter
			if res := c.run(rec); res.err != nil || res.ready != nil || res.readies != 1 {
				t.Fatalf("Run = %v, ready(%v) called %d times", res.err, res.ready, res.readies)
			}
			restarts := rec.of("restarting")
			var delays []time.Duration
			for i, r := range restarts {
				delays = append(delays, r.Delay)
				if r.Count != tc.before+i+1 {
					t.Errorf("restart %d announced as count %d, want %d", i, r.Count, tc.before+i+1)
				}
			}
			if fmt.Sprint(delays) != fmt.Sprint(tc.delays) {
				t.Fatalf("back-off delays %v, want %v (calls: %s)", delays, tc.delays, rec.kinds())
			}
			started, exited := rec.of("started"), rec.of("exited")
			if len(started) != len(tc.delays)+1 || len(exited) != len(started) {
				t.Fatalf("%d starts and %d exits, want %d of each (calls: %s)", len(started), len(exited), len(tc.delays)+1, rec.kinds())
			}
			for i, s := range started {
				if s.Count != tc.before+i {
					t.Errorf("start %d recorded with restart count %d, want %d", i, s.Count, tc.before+i)
				}
				if i > 0 {
					if waited := s.At.Sub(restarts[i-1].At); waited < restarts[i-1].Delay {
						t.Errorf("restart %d came %v after its announcement, before its delay %v", i, waited, restarts[i-1].Delay)
					}
				}
			}
			if n := strings.Count(logText(t, c.cfg.LogPath), "stdout F run\n"); n != len(started) {
				t.Errorf("%d runs logged, want %d", n, len(started))
			}
			if got := rec.of("done"); len(got) != 1 || got[0].Exit != exited[len(exited)-1].Exit {
				t.Errorf("Done calls %+v, want one with the last exit", got)
			}
		})
	}
}

// A stop requested during the back-off ends the wait at once: the monitor
// does not sit out a long delay nor restart.
func TestStopDuringBackoff(t *testing.T) {
	c := newContainer(t, []string{"true"}, nil)
	c.cfg.Restart = monitor.RestartPolicy{Name: "always"}
	c.cfg.BackoffBase, c.cfg.BackoffMax = time.Minute, time.Minute
	rec := newRecorder()
	go func() {
		<-rec.started
		for len(rec.of("restarting")) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		rec.stop.Store(true)
	}()
	res := c.run(rec)
	if got := rec.kinds(); got != "started exited restarting done" {
		t.Fatalf("recorder calls %q, want one run, a restart announced, then done", got)
	}
	if res.duration > 10*time.Second {
		t.Errorf("the monitor took %v to end after a stop during a one-minute back-off", res.duration)
	}
}

func logText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The container's stdout and stderr reach the log in the CRI format, one
// record per line, each stream in its order, a last line without a newline
// included.
func TestOutputIsLogged(t *testing.T) {
	c := newContainer(t, sh("echo out1; echo err1 >&2; echo out2; echo err2 >&2; printf tail"), nil)
	if res := c.run(newRecorder()); res.err != nil || res.ready != nil {
		t.Fatalf("Run = %v, ready(%v)", res.err, res.ready)
	}
	byStream := map[string][]string{}
	for _, r := range logRecords(t, c.cfg.LogPath) {
		if r.Partial {
			t.Errorf("partial record %+v", r)
		}
		if r.Time.IsZero() || time.Since(r.Time) > time.Minute {
			t.Errorf("record time %v", r.Time)
		}
		byStream[r.Stream] = append(byStream[r.Stream], r.Line)
	}
	if got := fmt.Sprint(byStream["stdout"]); got != "[out1 out2 tail]" {
		t.Errorf("stdout records %s, want [out1 out2 tail]", got)
	}
	if got := fmt.Sprint(byStream["stderr"]); got != "[err1 err2]" {
		t.Errorf("stderr records %s, want [err1 err2]", got)
	}
}

// The log rotates at LogMaxSize and keeps LogMaxFiles files: the newest
// lines, none lost between the files, none larger than the limit.
func TestLogRotation(t *testing.T) {
	for _, files := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d files", files), func(t *testing.T) {
			c := newContainer(t, sh("for i in $(seq 1 60); do echo line-$i; done"), nil)
			c.cfg.LogMaxSize, c.cfg.LogMaxFiles = 400, files
			if res := c.run(newRecorder()); res.err != nil || res.ready != nil {
				t.Fatalf("Run = %v, ready(%v)", res.err, res.ready)
			}
			var lines []string
			for i := files - 1; i >= 0; i-- {
				path := c.cfg.LogPath
				if i > 0 {
					path = fmt.Sprintf("%s.%d", c.cfg.LogPath, i)
				}
				if fi, err := os.Stat(path); err != nil || fi.Size() > c.cfg.LogMaxSize {
					t.Fatalf("%s: %v, size over %d", path, err, c.cfg.LogMaxSize)
				}
				for _, r := range logRecords(t, path) {
					lines = append(lines, r.Line)
				}
			}
			if _, err := os.Stat(fmt.Sprintf("%s.%d", c.cfg.LogPath, files)); err == nil {
				t.Errorf("more than %d log files", files)
			}
			// A record takes 44 to 48 bytes: 8 or 9 fill a file of 400, the
			// older files are full and the current one has at least one.
			if len(lines) < 8*(files-1)+1 || len(lines) > 9*files {
				t.Fatalf("%d lines kept in %d files of %d bytes:\n%v", len(lines), files, c.cfg.LogMaxSize, lines)
			}
			for i, l := range lines {
				if want := fmt.Sprintf("line-%d", 60-len(lines)+1+i); l != want {
					t.Fatalf("kept lines %v, want the last %d in order", lines, len(lines))
				}
			}
		})
	}
}

// attachFrames reads frames from conn until the exit frame or EOF and
// returns stdout, stderr and the exit code (-1 without an exit frame).
func attachFrames(t *testing.T, conn net.Conn) (string, string, int) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	var out, errOut strings.Builder
	for {
		kind, data, err := streams.ReadFrame(conn)
		if err != nil {
			return out.String(), errOut.String(), -1
		}
		switch kind {
		case streams.FrameStdout:
			out.Write(data)
		case streams.FrameStderr:
			errOut.Write(data)
		case streams.FrameExit:
			if len(data) != 4 {
				t.Fatalf("exit frame of %d bytes", len(data))
			}
			return out.String(), errOut.String(), int(int32(binary.BigEndian.Uint32(data)))
		}
	}
}

// With WaitAttach the container is created but starts only once a client
// is attached on AttachSocket (OnListen says when it listens); the client
// then gets all the output, and the exit status in the last frame. With
// Stdin, the client's input reaches the container.
func TestWaitAttach(t *testing.T) {
	for _, stdin := range []bool{false, true} {
		t.Run(fmt.Sprintf("stdin %v", stdin), func(t *testing.T) {
			script := "echo hello; echo oops >&2; exit 5"
			if stdin {
				script = "cat; exit 5"
			}
			c := newContainer(t, sh(script), nil)
			c.cfg.AttachSocket = filepath.Join(t.TempDir(), "attach.sock")
			c.cfg.WaitAttach, c.cfg.Stdin = true, stdin
			listening := make(chan struct{})
			c.cfg.OnListen = func() { close(listening) }
			rec := newRecorder()
			ended := make(chan runResult, 1)
			go func() { ended <- c.run(rec) }()
			select {
			case <-listening:
			case <-time.After(30 * time.Second):
				t.Fatal("OnListen not called")
			}
			// The container waits for the client: created, not started.
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, err := c.rt.State(c.cfg.ID)
				if err == nil && st.Status == specs.StateCreated {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("container not created while waiting for a client: %+v, %v", st, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			if k := rec.kinds(); k != "" {
				t.Fatalf("recorder calls %q before a client attached", k)
			}
			conn, err := streams.Dial(c.cfg.AttachSocket)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if stdin {
				streams.WriteFrame(conn, streams.FrameStdin, []byte("typed\n"))
				streams.WriteFrame(conn, streams.FrameStdinClose, nil)
			}
			out, errOut, code := attachFrames(t, conn)
			want, wantErr := "hello\n", "oops\n"
			if stdin {
				want, wantErr = "typed\n", ""
			}
			if out != want || errOut != wantErr || code != 5 {
				t.Errorf("client got stdout %q, stderr %q, exit %d; want %q, %q, 5", out, errOut, code, want, wantErr)
			}
			res := <-ended
			if res.err != nil || res.ready != nil || res.readies != 1 {
				t.Errorf("Run = %v, ready(%v) called %d times", res.err, res.ready, res.readies)
			}
			if x := rec.of("exited"); len(x) != 1 || x[0].Exit.Code != 5 {
				t.Errorf("recorded exits %+v, want code 5", x)
			}
		})
	}
}

// A client that goes before it attaches (ClientGone) never will: the
// container is not started, the run fails at once with why, and nothing
// of it ran.
func TestWaitAttachClientGone(t *testing.T) {
	c := newContainer(t, []string{"true"}, nil)
	c.cfg.AttachSocket = filepath.Join(t.TempDir(), "attach.sock")
	c.cfg.WaitAttach = true
	var gone atomic.Bool
	c.cfg.ClientGone = gone.Load
	c.cfg.OnListen = func() { gone.Store(true) }
	rec := newRecorder()
	ended := make(chan runResult, 1)
	began := time.Now()
	go func() { ended <- c.run(rec) }()
	var res runResult
	select {
	case res = <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("Run still waiting for a client that has gone")
	}
	if res.ready == nil || !strings.Contains(res.ready.Error(), "exited before it attached") {
		t.Errorf("ready(%v), want the client's exit named", res.ready)
	}
	if got := rec.kinds(); got != "exited done" {
		t.Errorf("recorder calls %q, want %q (never started)", got, "exited done")
	}
	if x := rec.of("exited"); len(x) != 1 || x[0].Exit.Code != 125 || x[0].Exit.Stage != "start" {
		t.Errorf("recorded exits %+v, want 125 at start", x)
	}
	t.Logf("gave up after %s", time.Since(began).Round(time.Millisecond))
}

// With TTY the container gets a terminal: the monitor receives the pty
// master over the console socket and logs what the container writes to it
// (stdout and stderr alike) as stdout, lines ending in \r\n recorded
// without the \r.
func TestTerminalOutputIsLogged(t *testing.T) {
	c := newContainer(t, sh("tty; echo to-stderr >&2"), func(s *specs.Spec) { s.Process.Terminal = true })
	c.cfg.TTY = true
	rec := newRecorder()
	if res := c.run(rec); res.err != nil || res.ready != nil {
		t.Fatalf("Run = %v, ready(%v)", res.err, res.ready)
	}
	var lines []string
	for _, r := range logRecords(t, c.cfg.LogPath) {
		if r.Stream != "stdout" {
			t.Errorf("record on %s through a terminal: %+v", r.Stream, r)
		}
		lines = append(lines, r.Line)
	}
	if fmt.Sprint(lines) != "[/dev/pts/0 to-stderr]" {
		t.Errorf("logged %q, want the terminal's name and the line written to stderr", lines)
	}
	if x := rec.of("exited"); len(x) != 1 || x[0].Exit.Code != 0 {
		t.Errorf("recorded exits %+v, want code 0", x)
	}
}
