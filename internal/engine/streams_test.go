package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/runtime"
	"hull/internal/streams"
)

// streamsTestContainer records a container named name as running in a
// test engine, supervised by a stand-in monitor (a sleep, killed to play
// the monitor's exit), and returns it with that process.
func streamsTestContainer(t *testing.T, name string, cfg Config) (*Engine, *Container, *exec.Cmd) {
	t.Helper()
	e := openTestEngine(t)
	mon := exec.Command("sleep", "1000")
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Process.Kill(); mon.Wait() })
	c := &Container{ID: fmt.Sprintf("%012x", time.Now().UnixNano()), Name: name, Image: "busybox", Created: time.Now(),
		State: StateRunning, Stage: StageRunning, Config: cfg}
	if err := e.insert(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{e.persistDir(c.ID), e.runDir(c.ID)} { // as Create's finish
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pid, start := mon.Process.Pid, procStart(mon.Process.Pid)
	if err := e.update(context.Background(), c.ID, map[string]any{"pid": pid, "pid_start": start, "monitor_pid": pid, "monitor_start": start}); err != nil {
		t.Fatal(err)
	}
	return e, c, mon
}

// logLines writes lines to the container's log as its monitor does.
func logLines(t *testing.T, l *streams.LogWriter, stream string, lines ...string) {
	t.Helper()
	l.CopyStream(stream, strings.NewReader(strings.Join(lines, "\n")+"\n"), nil)
}

// readLogs returns the lines Logs gives, as "stream line".
func readLogs(t *testing.T, e *Engine, ref string, o LogsOptions) []string {
	t.Helper()
	l, err := e.Logs(context.Background(), ref, o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []string
	for {
		r, err := l.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Stream+" "+r.Line)
	}
}

// Logs reads the files the writer keeps, rotated ones first, and only
// those; it keeps the tail and selects streams and times.
func TestLogsReadsRotatedFilesAndTail(t *testing.T) {
	e, c, mon := streamsTestContainer(t, "rotating", Config{})
	// Each record is 43 bytes ("<30-byte time> stdout F lineNN\n" or
	// so): three fit in a file of 150, so 10 lines rotate three times
	// and the files kept (LogMaxFiles) hold the last ones.
	l, err := streams.OpenLog(e.LogPath(c.ID), 150, streams.LogMaxFiles)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 10 {
		line := fmt.Sprintf("line%02d", i)
		logLines(t, l, "stdout", line)
		all = append(all, "stdout "+line)
	}
	logLines(t, l, "stderr", "oops")
	all = append(all, "stderr oops")
	l.Close()
	mon.Process.Kill()
	mon.Wait()

	got := readLogs(t, e, c.Name, LogsOptions{Tail: -1})
	if len(got) < 3 || !slices.Equal(got, all[len(all)-len(got):]) {
		t.Fatalf("logs: %q, want a tail of %q", got, all)
	}
	var files int
	for i := range 10 {
		if _, err := os.Stat(rotatedLog(e.LogPath(c.ID), i)); err == nil {
			files++
		}
	}
	if files != streams.LogMaxFiles {
		t.Fatalf("%d log files, want %d", files, streams.LogMaxFiles)
	}
	// Everything the kept files hold, in order: the lines of the oldest
	// file on.
	want := 0
	for i := streams.LogMaxFiles - 1; i >= 0; i-- {
		b, _ := os.ReadFile(rotatedLog(e.LogPath(c.ID), i))
		want += strings.Count(string(b), "\n")
	}
	if len(got) != want {
		t.Errorf("logs returned %d lines, the files hold %d", len(got), want)
	}
	if got := readLogs(t, e, c.Name, LogsOptions{Tail: 2}); !slices.Equal(got, all[len(all)-2:]) {
		t.Errorf("tail 2: %q", got)
	}
	if got := readLogs(t, e, c.Name, LogsOptions{Tail: -1, Stderr: true}); !slices.Equal(got, []string{"stderr oops"}) {
		t.Errorf("stderr only: %q", got)
	}
	if got := readLogs(t, e, c.Name, LogsOptions{Tail: -1, Since: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Errorf("since the future: %q", got)
	}
}

func rotatedLog(path string, i int) string {
	if i == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// A follower gets what is written while it follows, across rotations,
// and ends when the monitor exits, with what was written before.
func TestLogsFollowEndsWhenTheMonitorExits(t *testing.T) {
	e, c, mon := streamsTestContainer(t, "talker", Config{})
	l, err := streams.OpenLog(e.LogPath(c.ID), 200, streams.LogMaxFiles)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logLines(t, l, "stdout", "before")
	ls, err := e.Logs(context.Background(), c.Name, LogsOptions{Tail: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	got := make(chan string, 100)
	ended := make(chan error, 1)
	go func() {
		for {
			r, err := ls.Next()
			if err != nil {
				ended <- err
				return
			}
			got <- r.Line
		}
	}()
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			b, _ := os.ReadFile(e.LogPath(c.ID))
			t.Fatalf("no line within 10s; the log:\n%s", b)
			return ""
		}
	}
	if s := next(); s != "before" {
		t.Fatalf("first line %q", s)
	}
	// Written while following: each arrives, rotations included (a
	// record is ~40 bytes, a file 200).
	for i := range 12 {
		want := fmt.Sprintf("during%02d", i)
		logLines(t, l, "stdout", want)
		if s := next(); s != want {
			t.Fatalf("line %d: %q, want %q", i, s, want)
		}
	}
	select {
	case err := <-ended:
		t.Fatalf("the follower ended while the monitor runs: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// The last line, then the monitor's exit: the line still arrives,
	// then the end.
	logLines(t, l, "stdout", "last")
	mon.Process.Kill()
	mon.Wait()
	if s := next(); s != "last" {
		t.Fatalf("after the exit: %q, want last", s)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the follower ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not end when the monitor exited")
	}
}

// A follower of a stopped container returns what there is and ends.
func TestLogsFollowOfAStoppedContainer(t *testing.T) {
	e, c, _ := streamsTestContainer(t, "stopped", Config{})
	l, err := streams.OpenLog(e.LogPath(c.ID), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	logLines(t, l, "stdout", "one", "two")
	l.Close()
	if err := e.update(context.Background(), c.ID, map[string]any{"state": StateExited, "monitor_pid": 0}); err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	go func() { done <- readLogs(t, e, c.Name, LogsOptions{Tail: -1, Follow: true}) }()
	select {
	case got := <-done:
		if !slices.Equal(got, []string{"stdout one", "stdout two"}) {
			t.Errorf("logs -f: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f of a stopped container did not end")
	}
}

// Attach copies output and input through the attach protocol, returns
// the exit status the monitor sends, and detaches on the detach keys.
func TestAttachOutputInputExitAndDetach(t *testing.T) {
	e, c, _ := streamsTestContainer(t, "attached", Config{OpenStdin: true})
	srv, err := streams.Listen(e.AttachSocket(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Accept()
	inR, inW, _ := os.Pipe()
	defer inR.Close()
	srv.SetInput(inW, nil)
	waitClients := func(n int) {
		for i := 0; srv.Clients() != n; i++ {
			if i > 1000 {
				t.Fatalf("%d clients, want %d", srv.Clients(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	var out, errOut bytes.Buffer
	// Input that does not end: an end would close the container's input.
	typed, typing := io.Pipe()
	defer typing.Close()
	go typing.Write([]byte("typed"))
	a, err := e.Attach(context.Background(), c.Name, AttachOptions{Stdin: typed, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	waitClients(1)
	done := make(chan error, 1)
	var code int
	go func() {
		var err error
		code, err = a.Wait()
		done <- err
	}()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(inR, buf); err != nil || string(buf) != "typed" {
		t.Fatalf("input: %q %v", buf, err)
	}
	srv.Tee(streams.FrameStdout)([]byte("hello\n"))
	srv.Tee(streams.FrameStderr)([]byte("warn\n"))
	srv.Exit(5)
	if err := <-done; err != nil || code != 5 {
		t.Fatalf("wait: %d %v, want 5", code, err)
	}
	a.Close()
	if out.String() != "hello\n" || errOut.String() != "warn\n" {
		t.Errorf("output %q, errors %q", out.String(), errOut.String())
	}

	// ctrl-p,ctrl-q detaches; what came before the keys goes in.
	waitClients(0)
	a, err = e.Attach(context.Background(), c.Name, AttachOptions{Stdin: strings.NewReader("ab\x10\x11cd"), DetachKeys: "ctrl-p,ctrl-q"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(); !errors.Is(err, ErrDetached) {
		t.Fatalf("wait after the detach keys: %v", err)
	}
	a.Close()
	buf = make([]byte, 2)
	if _, err := io.ReadFull(inR, buf); err != nil || string(buf) != "ab" {
		t.Fatalf("input before the keys: %q %v", buf, err)
	}
	if _, err := e.Attach(context.Background(), c.Name, AttachOptions{DetachKeys: "ctrl-"}); err == nil {
		t.Error("bad detach keys accepted")
	}
}

// execTestEngine runs a busybox container under a test engine's runtime
// (no monitor, no image: a bundle of /bin/busybox), recorded as running.
func execTestEngine(t testing.TB) (*Engine, *Container) {
	t.Helper()
	initPath := os.Getenv("HULL_INIT")
	if os.Getuid() != 0 || initPath == "" {
		t.Skip("needs root and HULL_INIT (make test sets it)")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
	e := openTestEngine(t)
	e.rt.InitPath = initPath
	c := &Container{ID: fmt.Sprintf("exec%08x", time.Now().UnixNano()&0xffffffff), Name: "execs", Image: "busybox",
		Created: time.Now(), State: StateRunning, Stage: StageRunning}
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "echo", "stty", "cat", "true"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	s := runtime.DefaultSpec()
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "1000"}
	s.Root.Readonly = false
	s.Linux.CgroupsPath = "/enginetest-" + c.ID // not hull-*: cmd/hull tests take any such for a leak
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	if _, err := e.rt.Create(c.ID, runtime.CreateOptions{Bundle: bundle, Prepared: &runtime.Prepared{Spec: s}, Stdin: devnull, Stdout: devnull, Stderr: devnull}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.rt.Kill(c.ID, unix.SIGKILL, true)
		if err := e.rt.Delete(c.ID, true); err != nil {
			t.Errorf("delete %s: %v", c.ID, err)
		}
	})
	if err := e.rt.Start(c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.insert(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{e.persistDir(c.ID), e.runDir(c.ID)} { // as Create's finish
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return e, c
}

// execDies returns the exit codes of the exec_die events recorded so far.
func execDies(t *testing.T, e *Engine) []string {
	t.Helper()
	evs, err := e.Events(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, ev := range evs {
		if ev.Action == "exec_die" {
			codes = append(codes, ev.Attrs["exitCode"])
		}
	}
	return codes
}

// Exec returns the process's status and output (a missing command is
// docker's 127), resizes its terminal, and kills it.
func TestExecStatusResizeAndKill(t *testing.T) {
	e, c := execTestEngine(t)
	t.Run("child", func(t *testing.T) {
		e.ShimPath, e.HullCommand = "", nil
		testExec(t, e, c)
	})
	t.Run("hull-shim", func(t *testing.T) {
		if e.ShimPath = os.Getenv("HULL_SHIM"); e.ShimPath == "" {
			t.Skip("needs HULL_SHIM (make test sets it)")
		}
		// Not run: the caller lives and records the end itself.
		e.HullCommand = func(args ...string) []string { return append([]string{"/bin/false"}, args...) }
		testExec(t, e, c)
	})
}

func testExec(t *testing.T, e *Engine, c *Container) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	x, err := e.Exec(ctx, c.Name, ExecSpec{Args: []string{"sh", "-c", "cat; echo $A; echo err >&2; exit 3"}, Env: []string{"A=1"}},
		ExecIO{Stdin: strings.NewReader("in\n"), Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	if code := x.Wait(); code != 3 || out.String() != "in\n1\n" || errOut.String() != "err\n" {
		t.Errorf("status %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	// Input that comes late is waited for (a blocking stdin).
	late, lateW := io.Pipe()
	go func() {
		time.Sleep(100 * time.Millisecond)
		lateW.Write([]byte("late\n"))
		lateW.Close()
	}()
	out.Reset()
	x, err = e.Exec(ctx, c.Name, ExecSpec{Args: []string{"cat"}}, ExecIO{Stdin: late, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	if code := x.Wait(); code != 0 || out.String() != "late\n" {
		t.Errorf("cat of late input: status %d, output %q %q", code, out.String(), errOut.String())
	}
	if _, err := e.Exec(ctx, c.Name, ExecSpec{Args: []string{"no-such-command"}}, ExecIO{}); exitCode(err) != 127 {
		t.Errorf("a missing command: %v", err)
	}
	if _, err := e.Exec(ctx, c.Name, ExecSpec{Args: []string{"true"}, Env: []string{"=x"}}, ExecIO{}); exitCode(err) != 125 {
		t.Errorf("a bad -e: %v", err)
	}

	// A size given at the start is the terminal's before the process
	// runs: it reads it at once.
	out.Reset()
	x, err = e.Exec(ctx, c.Name, ExecSpec{Args: []string{"stty", "size"}, TTY: true, Rows: 21, Cols: 66}, ExecIO{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code := x.Wait(); code != 0 || out.String() != "21 66\r\n" {
		t.Errorf("exec -t of size 21x66: status %d, stty size %q", code, out.String())
	}

	out.Reset()
	x, err = e.Exec(ctx, c.Name, ExecSpec{Args: []string{"sh", "-c", "sleep 0.3; stty size"}, TTY: true}, ExecIO{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Resize(33, 77); err != nil {
		t.Fatal(err)
	}
	if code := x.Wait(); code != 0 || out.String() != "33 77\r\n" {
		t.Errorf("after Resize(33, 77): status %d, stty size %q", code, out.String())
	}

	x, err = e.Exec(ctx, c.Name, ExecSpec{Args: []string{"sleep", "100"}}, ExecIO{})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Kill(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := x.Wait(); code != 128+9 {
		t.Errorf("killed: status %d", code)
	}
	if err := x.Kill(unix.SIGKILL); err == nil {
		t.Error("killing a reaped process succeeded")
	}
	if codes := execDies(t, e); len(codes) < 5 || !slices.Equal(codes[len(codes)-5:], []string{"3", "0", "0", "0", "137"}) {
		t.Errorf("exec_die codes %q", codes)
	}
}

// The caller of Exec is killed: under hull-shim exec, the process runs on
// (its output drained, not closed under it), and its end is recorded.
func TestExecOutlivesItsCaller(t *testing.T) {
	if os.Getenv("HULL_EXEC_CALLER") != "" {
		execCaller(t)
		return
	}
	hullBin, shim := os.Getenv("HULL_BIN"), os.Getenv("HULL_SHIM")
	if hullBin == "" || shim == "" {
		t.Skip("needs HULL_BIN and HULL_SHIM (make test sets them)")
	}
	e, c := execTestEngine(t)
	rc, err := e.rt.Get(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(rc.Rootfs, "tmp", "done")
	caller := exec.Command(os.Args[0], "-test.run=^TestExecOutlivesItsCaller$")
	caller.Env = append(os.Environ(), "HULL_EXEC_CALLER="+e.cfg.Root, "HULL_EXEC_ID="+c.ID)
	// Its output goes through a file: a pipe would outlive it in the
	// process's hands.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "caller.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	out := func() string { b, _ := os.ReadFile(outFile.Name()); return string(b) }
	caller.Stdout, caller.Stderr = outFile, outFile
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	defer caller.Process.Kill()
	for i := 0; !strings.Contains(out(), "started"); i++ {
		if i > 2000 {
			t.Fatalf("the caller did not start the process: %s", out())
		}
		time.Sleep(5 * time.Millisecond)
	}
	caller.Process.Kill()
	caller.Wait()
	for i := 0; ; i++ {
		if b, err := os.ReadFile(done); err == nil && string(b) == "after\n" {
			break
		}
		if i > 2000 {
			t.Fatalf("the process did not finish after its caller was killed (no %s); the caller said: %s", done, out())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; !slices.Contains(execDies(t, e), "7"); i++ {
		if i > 2000 {
			t.Fatalf("no exec_die with status 7 recorded: %q", execDies(t, e))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// execCaller is the caller TestExecOutlivesItsCaller kills: it execs a
// process that writes output after a while, then waits.
func execCaller(t *testing.T) {
	root := os.Getenv("HULL_EXEC_CALLER")
	e := openTestEngineAt(t, root)
	e.rt.InitPath = os.Getenv("HULL_INIT")
	e.ShimPath = os.Getenv("HULL_SHIM")
	e.HullCommand = func(args ...string) []string {
		return append([]string{os.Getenv("HULL_BIN"), "--root", root, "--run-root", filepath.Join(root, "run")}, args...)
	}
	x, err := e.Exec(context.Background(), os.Getenv("HULL_EXEC_ID"),
		ExecSpec{Args: []string{"sh", "-c", "sleep 0.5; echo output; echo more >&2; echo after > /tmp/done; exit 7"}},
		ExecIO{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("started")
	x.Wait()
	fmt.Println("the caller was not killed")
	os.Exit(1)
}

// BenchmarkExec measures an exec of true from start to status, as the
// caller's child and under hull-shim exec.
func BenchmarkExec(b *testing.B) {
	for _, mode := range []string{"child", "hull-shim"} {
		b.Run(mode, func(b *testing.B) {
			e, c := execTestEngine(b)
			if mode == "hull-shim" {
				if e.ShimPath = os.Getenv("HULL_SHIM"); e.ShimPath == "" {
					b.Skip("needs HULL_SHIM")
				}
				e.HullCommand = func(args ...string) []string { return append([]string{"/bin/false"}, args...) }
			}
			var out bytes.Buffer
			for b.Loop() {
				x, err := e.Exec(context.Background(), c.Name, ExecSpec{Args: []string{"true"}}, ExecIO{Stdout: &out, Stderr: &out})
				if err != nil {
					b.Fatal(err)
				}
				if code := x.Wait(); code != 0 {
					b.Fatalf("status %d", code)
				}
			}
		})
	}
}
