package monitor_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/monitor"
	"hull/internal/runtime"
	"hull/internal/shim"
	"hull/internal/streams"
)

// The hand-over replaces the monitor's process image (it execs hull-shim,
// which later execs the monitor's command line again), so the test runs the
// monitor in a child: this test binary, told what to supervise through
// handOverEnv. The shim execs the binary again with --resume, and the same
// environment brings it back to handOverChild.

const handOverEnv = "HULL_MONITOR_TEST_HANDOVER"

// handOverSetup is what the child supervises; it writes the Recorder's
// calls as JSON lines (event) to Events.
type handOverSetup struct {
	ID, Bundle, RuntimeRoot, InitPath string
	LogPath, AttachSocket, Events     string
	Shim                              string
	Restart                           monitor.RestartPolicy
	BackoffBase                       time.Duration
}

// fileRecorder appends each call to a file, for the test to read.
type fileRecorder struct{ path string }

func (r fileRecorder) add(e event) {
	e.At = time.Now()
	b, _ := json.Marshal(e)
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recorder:", err)
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}

func (r fileRecorder) Started(pid int, pidStart uint64, restartCount int) error {
	r.add(event{Kind: "started", Pid: pid, PidStart: pidStart, Count: restartCount})
	return nil
}
func (r fileRecorder) Exited(e monitor.Exit) error { r.add(event{Kind: "exited", Exit: e}); return nil }
func (r fileRecorder) Restarting(count int, delay time.Duration) error {
	r.add(event{Kind: "restarting", Count: count, Delay: delay})
	return nil
}
func (r fileRecorder) StopRequested() bool { return false }
func (r fileRecorder) Done(e monitor.Exit) func() {
	r.add(event{Kind: "done", Exit: e})
	return nil
}

// handOverChild is the monitor process of TestHandOverToShim, first
// started by the test, then exec'd by hull-shim with --resume=<exit JSON>
// and --listener-fd=N (what `hull monitor` gets from it).
func handOverChild(setupJSON string) int {
	var s handOverSetup
	if err := json.Unmarshal([]byte(setupJSON), &s); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rec := fileRecorder{s.Events}
	cfg := monitor.Config{
		ID: s.ID, Bundle: s.Bundle, RuntimeRoot: s.RuntimeRoot,
		LogPath: s.LogPath, LogMaxSize: 1 << 20, LogMaxFiles: 2,
		AttachSocket: s.AttachSocket,
		Shim:         &monitor.Shim{Path: s.Shim, Resume: []string{self}},
		Restart:      s.Restart, BackoffBase: s.BackoffBase, BackoffMax: s.BackoffBase,
	}
	for _, arg := range os.Args[1:] {
		if v, ok := strings.CutPrefix(arg, "--resume="); ok {
			var x shim.Exit
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				fmt.Fprintln(os.Stderr, "--resume:", err)
				return 2
			}
			exit := monitor.FromShim(x)
			cfg.Resume = &exit
			rec.add(event{Kind: "resumed", Exit: exit})
		}
		if v, ok := strings.CutPrefix(arg, "--listener-fd="); ok {
			cfg.ListenerFD, _ = strconv.Atoi(v)
		}
	}
	if cfg.Resume != nil {
		// The restarts so far, as the engine reads them from the record.
		for _, e := range readEvents(s.Events) {
			if e.Kind == "restarting" {
				cfg.RestartCount = e.Count
			}
		}
	}
	rt := &runtime.Runtime{Root: s.RuntimeRoot, InitPath: s.InitPath}
	err = monitor.Run(cfg, rt, rec, func(err error) {
		e := event{Kind: "ready"}
		if err != nil {
			e.Error = err.Error()
		}
		rec.add(e)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "monitor:", err)
		return 1
	}
	return 0
}

// shimBinary is hull-shim: $HULL_SHIM (skipped when it names no file), or
// one built for the test.
func shimBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HULL_SHIM"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if unix.Access(abs, unix.X_OK) != nil {
			t.Skipf("HULL_SHIM=%s is not an executable file", p)
		}
		return abs
	}
	path := filepath.Join(t.TempDir(), "hull-shim")
	cmd := exec.Command("go", "build", "-o", path, "hull/cmd/hull-shim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hull-shim: %v\n%s", err, out)
	}
	return path
}

// child is the monitor process of a hand-over test.
type child struct {
	cmd            *exec.Cmd
	exited         chan struct{} // closed once cmd.Wait returned
	events, stderr string        // the files of its recorder and its output
}

// startChild starts the monitor child for c with hull-shim at shimPath; the
// child is killed and reaped when the test ends, if it still runs.
func startChild(t *testing.T, c *container, shimPath string) *child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	events, stderr := filepath.Join(dir, "events"), filepath.Join(dir, "stderr")
	setup, _ := json.Marshal(handOverSetup{
		ID: c.cfg.ID, Bundle: c.cfg.Bundle, RuntimeRoot: c.rt.Root, InitPath: c.rt.InitPath,
		LogPath: c.cfg.LogPath, AttachSocket: c.cfg.AttachSocket, Events: events, Shim: shimPath,
		Restart: c.cfg.Restart, BackoffBase: c.cfg.BackoffBase,
	})
	errFile, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), handOverEnv+"="+string(setup))
	cmd.Stdout, cmd.Stderr = errFile, errFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(stderr)
			t.Logf("monitor child's output:\n%s", b)
		}
	})
	return &child{cmd: cmd, exited: exited, events: events, stderr: stderr}
}

// readEvents reads the events a fileRecorder wrote to path (none if it
// has written nothing yet); a line it cannot decode is returned as an
// event of kind "bad".
func readEvents(path string) []event {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			e = event{Kind: "bad", Error: err.Error()}
		}
		evs = append(evs, e)
	}
	return evs
}

// childEvents reads the events the child has recorded so far.
func childEvents(t *testing.T, path string) []event {
	t.Helper()
	evs := readEvents(path)
	for _, e := range evs {
		if e.Kind == "bad" {
			t.Fatalf("%s: %s", path, e.Error)
		}
	}
	return evs
}

func kindsOf(evs []event) string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the child to end and returns its exit status.
func (ch *child) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-ch.exited:
		return ch.cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		t.Fatal("the monitor child still runs after a minute")
		return 0
	}
}

// A detached container (Shim set, no WaitAttach) is handed over to
// hull-shim once it runs: the monitor's process becomes the shim, still
// the container's parent, which logs the output, serves attach clients and
// reaps the container; it then execs the monitor's command line with
// --resume and the attach listener, and that monitor records the exit and
// removes what is left.
func TestHandOverToShim(t *testing.T) {
	shimPath := shimBinary(t)
	c := newContainer(t, sh("echo before; while [ ! -e /go ]; do echo tick; sleep 0.05; done; echo after; exit 3"), nil)
	c.cfg.AttachSocket = filepath.Join(t.TempDir(), "attach.sock")
	ch := startChild(t, c, shimPath)

	var pid int
	waitFor(t, "the container to start", func() bool {
		for _, e := range childEvents(t, ch.events) {
			if e.Kind == "started" {
				pid = e.Pid
				return true
			}
		}
		return false
	})
	waitFor(t, "the monitor to exec hull-shim", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", ch.cmd.Process.Pid))
		return exe == shimPath
	})
	if ppid := parentOf(t, pid); ppid != ch.cmd.Process.Pid {
		t.Errorf("the container's parent is %d, want the shim %d", ppid, ch.cmd.Process.Pid)
	}
	// A client attached to the shim gets the output from then on; it
	// learns the shim is gone by EOF (the exec drops its connection).
	conn, err := streams.Dial(c.cfg.AttachSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	var got strings.Builder
	for !strings.Contains(got.String(), "tick\n") {
		kind, data, err := streams.ReadFrame(conn)
		if err != nil {
			t.Fatalf("attach to the shim: %v (got %q)", err, got.String())
		}
		if kind == streams.FrameStdout {
			got.Write(data)
		}
	}
	if err := os.WriteFile(filepath.Join(c.cfg.Bundle, "rootfs", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := attachFrames(t, conn)
	if !strings.HasSuffix(out, "after\n") || code != -1 {
		t.Errorf("client of the shim got %q and exit %d; want the output to \"after\", then EOF", out, code)
	}

	if status := ch.wait(t); status != 0 {
		t.Fatalf("the monitor child exited %d", status)
	}
	evs := childEvents(t, ch.events)
	if k := kindsOf(evs); k != "started ready resumed exited done" {
		t.Fatalf("recorder calls %q, want the start before the hand-over and the exit after it", k)
	}
	if evs[1].Error != "" {
		t.Errorf("ready(%s)", evs[1].Error)
	}
	x := evs[3].Exit
	if x.Code != 3 || x.Signal != 0 || x.OOMKilled || x.At.Before(evs[0].At) {
		t.Errorf("exit recorded after the hand-over %+v, want code 3 after the start", x)
	}
	var lines []string
	for _, r := range logRecords(t, c.cfg.LogPath) {
		if r.Stream == "stdout" && r.Line != "tick" {
			lines = append(lines, r.Line)
		}
	}
	if fmt.Sprint(lines) != "[before after]" {
		t.Errorf("log has %v, want before (the monitor's) and after (the shim's)", lines)
	}
	c.checkGone()
}

// Through the shim, an OOM kill is still seen (the shim gets the cgroup
// and the OOM count before the start) and the restart policy still
// applies: each run is handed over, and each exit comes back with
// --resume.
func TestShimReportsOOMAndRestarts(t *testing.T) {
	shimPath := shimBinary(t)
	limit := int64(32 << 20)
	for _, tc := range []struct {
		name   string
		args   []string
		mutate func(*specs.Spec)
		policy monitor.RestartPolicy
		calls  string
		code   int
		oom    bool
	}{
		{"restart", sh("echo run; exit 3"), nil, monitor.RestartPolicy{Name: "on-failure", MaxRetries: 1},
			"started ready resumed exited restarting started resumed exited done", 3, false},
		{"oom", []string{"tail", "/dev/zero"}, func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
		}, monitor.RestartPolicy{}, "started ready resumed exited done", 137, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, tc.args, tc.mutate)
			c.cfg.Restart = tc.policy
			ch := startChild(t, c, shimPath)
			if status := ch.wait(t); status != 0 {
				t.Fatalf("the monitor child exited %d", status)
			}
			evs := childEvents(t, ch.events)
			if k := kindsOf(evs); k != tc.calls {
				t.Fatalf("recorder calls %q, want %q", k, tc.calls)
			}
			for _, e := range evs {
				if e.Kind != "exited" {
					continue
				}
				if x := e.Exit; x.Code != tc.code || x.OOMKilled != tc.oom || (tc.oom && x.MemoryLimit != uint64(limit)) {
					t.Errorf("exit recorded through the shim %+v, want code %d, OOMKilled %v", x, tc.code, tc.oom)
				}
			}
			c.checkGone()
		})
	}
}

// A monitor that cannot exec the shim (after it has handed its descriptors
// over) exits 125 and says why; the container is left for the next hull
// command to find unsupervised.
func TestHandOverExecFailure(t *testing.T) {
	c := newContainer(t, []string{"sleep", "100"}, nil)
	missing := filepath.Join(t.TempDir(), "no-hull-shim")
	ch := startChild(t, c, missing)
	if status := ch.wait(t); status != 125 {
		t.Fatalf("the monitor child exited %d, want 125", status)
	}
	if b, _ := os.ReadFile(ch.stderr); !strings.Contains(string(b), "monitor: exec "+missing) {
		t.Errorf("the monitor did not say why it ended:\n%s", b)
	}
	evs := childEvents(t, ch.events)
	if k := kindsOf(evs); k != "started ready" {
		t.Fatalf("recorder calls %q, want the start only", k)
	}
	if err := unix.Kill(evs[0].Pid, 0); err != nil {
		t.Errorf("container %d: %v, want it still running", evs[0].Pid, err)
	}
}

// parentOf reads pid's parent from /proc/PID/stat.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, so from the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
