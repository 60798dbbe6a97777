package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hull/internal/testenv"
)

// containerEnv is a registry with busybox and the config image and a
// private hull root whose containers (and their anonymous volumes) are
// all removed when the test ends, however it ends.
func containerEnv(t *testing.T) (root string, fx *testenv.Fixtures) {
	t.Helper()
	_, fx = testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	root = t.TempDir()
	testenv.NetworkConfig(t, root) // its removal comes after the containers'
	t.Cleanup(func() {
		out, _, _ := hull(t, root, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			if _, _, err := hull(t, root, "rm", "-f", "-v", id); err != nil {
				t.Errorf("cleanup: rm -f %s: %v", id, err)
			}
		}
		// A health check's prober ends just after its container's
		// monitor, and a round of it may be opening the engine: the
		// root goes once they are gone.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if len(hullProcs(root, func(int, []string) bool { return true })) == 0 {
				break
			}
		}
	})
	return root, fx
}

// hullProc runs hull as a separate process (the test binary acting as the
// CLI), for exit statuses and terminals.
func hullProc(root string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--root", root, "--run-root", filepath.Join(root, "run")}, append(testenv.ConfigArgs(root), args...)...)...)
	cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1")
	return cmd
}

// startHull starts hull as a separate process (hullProc); the channel
// gets its end.
func startHull(t *testing.T, root string, args ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := hullProc(root, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done
}

// exitStatus is the exit status err gives hull: a hull process's
// (hullProc), or the command tree's run in-process (hull); 0 for none.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var pe *exec.ExitError
	if errors.As(err, &pe) {
		return pe.ExitCode()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func TestRunForegroundOutputAndExitStatus(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--rm", fx.Busybox.Ref, "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := exitStatus(err); code != 3 {
		t.Fatalf("exit status %d, want 3 (stderr: %s)", code, stderr.String())
	}
	if stdout.String() != "to-out\n" || !strings.Contains(stderr.String(), "to-err\n") {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if out := mustHull(t, root, "ps", "-aq"); out != "" {
		t.Errorf("--rm container still listed: %q", out)
	}
	// Docker's statuses for hull's own failures: 125, 126, 127.
	cmd = hullProc(root, "run", "--rm", fx.Busybox.Ref, "no-such-command")
	if code := exitStatus(cmd.Run()); code != 127 {
		t.Errorf("missing command: exit %d, want 127", code)
	}
	cmd = hullProc(root, "run", "--rm", fx.Busybox.Ref, "/etc/passwd")
	if code := exitStatus(cmd.Run()); code != 126 {
		t.Errorf("non-executable command: exit %d, want 126", code)
	}
	cmd = hullProc(root, "run", "--rm", "--memory", "lots", fx.Busybox.Ref, "true")
	if code := exitStatus(cmd.Run()); code != 125 {
		t.Errorf("bad flag value: exit %d, want 125", code)
	}
}

func TestImageConfigIsHonoured(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--rm", fx.Config.Ref)
	out, err := cmd.Output()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("ENTRYPOINT+CMD: %q %v", out, err)
	}
	cmd = hullProc(root, "run", "--rm", fx.Config.Ref, "id -un; pwd; echo $FOO")
	out, err = cmd.Output()
	if err != nil || string(out) != "app\n/home/app\nbar\n" {
		t.Fatalf("USER/WORKDIR/ENV: %q %v", out, err)
	}
	cmd = hullProc(root, "run", "--rm", "-u", "nobody", "-w", "/tmp", "-e", "FOO=baz", fx.Config.Ref, "id -un; pwd; echo $FOO")
	out, err = cmd.Output()
	if err != nil || string(out) != "nobody\n/tmp\nbaz\n" {
		t.Fatalf("-u -w -e: %q %v", out, err)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	root, fx := containerEnv(t)
	id := strings.TrimSpace(mustHull(t, root, "run", "-d", "--name", "web", fx.Busybox.Ref, "sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	out := mustHull(t, root, "ps")
	if !strings.Contains(out, "web") || !strings.Contains(out, "Up ") {
		t.Fatalf("ps:\n%s", out)
	}
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "web"), "started") })
	var doc []map[string]any
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "web")), &doc)
	state, _ := doc[0]["State"].(map[string]any)
	if state["Status"] != "running" || state["Running"] != true || state["Pid"].(float64) <= 0 {
		t.Fatalf("inspect State: %v", state)
	}
	if _, _, err := hull(t, root, "rm", "web"); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("rm of a running container: %v", err)
	}
	mustHull(t, root, "pause", "web")
	if !strings.Contains(mustHull(t, root, "ps"), "(Paused)") {
		t.Error("pause not shown in ps")
	}
	mustHull(t, root, "unpause", "web")
	mustHull(t, root, "stop", "web")
	out = mustHull(t, root, "ps", "-a", "--filter", "name=web")
	if !strings.Contains(out, "Exited (0)") {
		t.Fatalf("after stop (the trap exits 0):\n%s", out)
	}
	if out := mustHull(t, root, "ps", "-q"); out != "" {
		t.Fatalf("ps without -a lists a stopped container: %q", out)
	}
	mustHull(t, root, "start", "web")
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "ps"), "web") })
	mustHull(t, root, "kill", "-s", "KILL", "web")
	if out := strings.TrimSpace(mustHull(t, root, "wait", "web")); out != "137" {
		t.Fatalf("wait after kill -s KILL: %q", out)
	}
	out = mustHull(t, root, "why", "web")
	if !strings.Contains(out, "killed by signal SIGKILL") {
		t.Errorf("why after kill:\n%s", out)
	}
	mustHull(t, root, "rename", "web", "web2")
	mustHull(t, root, "rm", "web2")
	if _, _, err := hull(t, root, "inspect", "web2"); err == nil {
		t.Fatal("container still there after rm")
	}
}

// The seed's memory exercise: -m 32m and a process that allocates past it.
func TestOOMKillIsReported(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--name", "hog", "-m", "32m", fx.Busybox.Ref, "tail", "/dev/zero")
	if code := exitStatus(cmd.Run()); code != 137 {
		t.Fatalf("exit status %d, want 137", code)
	}
	var doc []struct {
		State struct {
			OOMKilled bool
			ExitCode  int
		}
	}
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "hog")), &doc)
	if len(doc) != 1 || !doc[0].State.OOMKilled || doc[0].State.ExitCode != 137 {
		t.Fatalf("inspect: %+v", doc)
	}
	if out := mustHull(t, root, "ps", "-a"); !strings.Contains(out, "Exited (137) OOMKilled") {
		t.Errorf("ps -a STATUS lacks the OOM clue:\n%s", out)
	}
	out := mustHull(t, root, "why", "hog")
	if !strings.Contains(out, "OOM killer") || !strings.Contains(out, "memory limit 32.0MiB") {
		t.Errorf("why:\n%s", out)
	}
}

func TestWhyExplainsAPullFailure(t *testing.T) {
	root, fx := containerEnv(t)
	_, _, err := hull(t, root, "create", "--name", "typo", fx.Busybox.Repo+":no-such-tag")
	if err == nil {
		t.Fatal("create of a missing tag succeeded")
	}
	out := mustHull(t, root, "why", "typo")
	if !strings.Contains(out, "Stage:     image pull") || !strings.Contains(out, "does not exist") {
		t.Errorf("why:\n%s", out)
	}
	// Nothing is kept (docker's behaviour): the name is free for the
	// next try, and ps -a lists no failed attempts.
	cmd := hullProc(root, "run", "--name", "again", fx.Busybox.Repo+":no-such-tag", "true")
	if b, err := cmd.CombinedOutput(); exitStatus(err) != 125 {
		t.Errorf("run of a missing tag: status %d, want 125\n%s", exitStatus(err), b)
	}
	if out := mustHull(t, root, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("failed pulls left containers:\n%s", out)
	}
	if out := mustHull(t, root, "run", "--rm", "--name", "again", fx.Busybox.Ref, "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Errorf("run with the name of a failed attempt: %q", out)
	}
	if _, _, err := hull(t, root, "why", "again"); err == nil {
		t.Error("why explains a removed container that ran as a pull failure")
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	root, fx := containerEnv(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "20")
	mustHull(t, root, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", fx.Busybox.Ref, "sh", "-c", "echo attempt; exit 1")
	if out := strings.TrimSpace(mustHull(t, root, "wait", "flaky")); out != "1" {
		t.Fatalf("wait: %q", out)
	}
	var doc []struct{ RestartCount int }
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "flaky")), &doc)
	if len(doc) != 1 || doc[0].RestartCount != 2 {
		t.Fatalf("RestartCount %+v, want 2", doc)
	}
	if n := strings.Count(mustHull(t, root, "logs", "flaky"), "attempt"); n != 3 {
		t.Errorf("%d attempts logged, want 3", n)
	}
	// always: restarts until stopped, and stop ends it for good.
	mustHull(t, root, "run", "-d", "--name", "loop", "--restart", "always", fx.Busybox.Ref, "true")
	waitFor(t, func() bool {
		json.Unmarshal([]byte(mustHull(t, root, "inspect", "loop")), &doc)
		return doc[0].RestartCount >= 2
	})
	mustHull(t, root, "stop", "loop")
	out := mustHull(t, root, "ps", "-a", "--filter", "name=loop", "--format", "{{.State}}")
	if strings.TrimSpace(out) != "exited" {
		t.Fatalf("after stop: %q", out)
	}
}

// kill -9 of a container's monitor: the next command notices, records
// the container as exited with an Error saying why, and stops the
// unsupervised process.
func TestMonitorCrashIsDetected(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "orphan", fx.Busybox.Ref, "sleep", "300")
	var doc []struct {
		State         struct{ Pid int }
		HullLifecycle struct{ MonitorPid int }
	}
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "orphan")), &doc)
	mon, pid := doc[0].HullLifecycle.MonitorPid, doc[0].State.Pid
	if mon <= 0 || pid <= 0 {
		t.Fatalf("inspect: %+v", doc)
	}
	syscall.Kill(mon, syscall.SIGKILL)
	// Gone, not just a zombie: a killed Go process shows as one while its
	// threads exit, and hull rightly takes it for alive until then. This
	// process started the monitor (in-process run) and reaps it.
	waitFor(t, func() bool { return syscall.Kill(mon, 0) != nil })
	out := mustHull(t, root, "ps", "-a", "--format", "{{.Status}}")
	if !strings.HasPrefix(out, "Exited (137)") {
		t.Fatalf("ps after the monitor died: %q", out)
	}
	waitFor(t, func() bool { return !testenv.ProcessRunning(pid) })
	if out := mustHull(t, root, "why", "orphan"); !strings.Contains(out, "monitor") || !strings.Contains(out, "died") {
		t.Errorf("why:\n%s", out)
	}
}

func TestConcurrentRunsAndRemovals(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := hullProc(root, "run", "--name", fmt.Sprintf("par%d", i), fx.Busybox.Ref, "echo", strconv.Itoa(i)).Output()
			if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(i) {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				errs <- fmt.Errorf("run %d: %q %v: %s", i, out, err, stderr)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(strings.Fields(mustHull(t, root, "ps", "-aq"))); n != 20 {
		t.Fatalf("%d containers, want 20", n)
	}
	// Two rm -f of one container at once: it goes, exactly once.
	mustHull(t, root, "run", "-d", "--name", "twice", fx.Busybox.Ref, "sleep", "300")
	var ok int
	var mu sync.Mutex
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if hullProc(root, "rm", "-f", "twice").Run() == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok < 1 {
		t.Fatal("neither rm -f succeeded")
	}
	if _, _, err := hull(t, root, "inspect", "twice"); err == nil {
		t.Fatal("container survived two rm -f")
	}
}

// The seed's first task: run -it busybox sh through a terminal, where ps
// shows the shell as PID 1; after exit, ps -a shows Exited (0).
func TestInteractiveTerminalShell(t *testing.T) {
	root, fx := containerEnv(t)
	master, slave, err := testenv.OpenPTY()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	defer master.Close()
	cmd := hullProc(root, "run", "-it", "--name", "shell", fx.Busybox.Ref, "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var screen safeBuffer
	go io.Copy(&screen, master)
	master.Write([]byte("ps -o pid,comm\n"))
	waitFor(t, func() bool { return strings.Contains(screen.String(), "1 sh") })
	master.Write([]byte("exit\n"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitStatus(err); code != 0 {
			t.Fatalf("exit status %d; screen:\n%s", code, screen.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("shell did not exit; screen:\n%s", screen.String())
	}
	if out := mustHull(t, root, "ps", "-a"); !strings.Contains(out, "Exited (0)") {
		t.Errorf("ps -a:\n%s", out)
	}
}

func TestLogsOptions(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--name", "talker", fx.Busybox.Ref, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo oops >&2")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := hull(t, root, "logs", "--tail", "2", "talker")
	if err != nil || out != "line5\n" || errOut != "oops\n" {
		t.Fatalf("logs --tail 2: %q %q %v", out, errOut, err)
	}
	out = mustHull(t, root, "logs", "-t", "talker")
	if first := strings.SplitN(out, "\n", 2)[0]; !strings.HasSuffix(first, " line1") || len(first) < 30 {
		t.Errorf("logs -t: %q", first)
	}
	if out := mustHull(t, root, "logs", "--since", "2099-01-01T00:00:00Z", "talker"); out != "" {
		t.Errorf("logs --since the future: %q", out)
	}
	data, _ := os.ReadFile(filepath.Join(root, "containers", containerID(t, root, "talker"), "container.log"))
	if !strings.Contains(string(data), " stdout F line1\n") || !strings.Contains(string(data), " stderr F oops\n") {
		t.Errorf("log file is not in the CRI format:\n%s", data)
	}
}

func containerID(t *testing.T, root, name string) string {
	return strings.TrimSpace(mustHull(t, root, "ps", "-aq", "--no-trunc", "--filter", "name="+name))
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// staticBuilds caches the static helper binaries tests build themselves
// when the Makefile has not (HULL_INIT, HULL_SHIM unset); TestMain removes
// their directories.
var (
	staticBuilds sync.Map // package path -> func() (string, error)
	staticDirs   sync.Map // directory -> true
)

func removeStaticBuilds() {
	staticDirs.Range(func(dir, _ any) bool {
		os.RemoveAll(dir.(string))
		return true
	})
}

// useStatic points env at a static build of pkg, building it once per
// test binary unless env already names one.
func useStatic(t *testing.T, env, pkg string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" && p != "none" {
		return p
	}
	build, _ := staticBuilds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "hull-static-")
		if err != nil {
			return "", err
		}
		staticDirs.Store(dir, true)
		path := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if pkg == "hull/cmd/hull-init" {
			cmd = exec.Command("../../hack/build-init.sh", path)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
		return path, nil
	}))
	path, err := build.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(env, path)
	return path
}

func useInit(t *testing.T) { useStatic(t, "HULL_INIT", "hull/cmd/hull-init") }

func useShim(t *testing.T) string { return useStatic(t, "HULL_SHIM", "hull/cmd/hull-shim") }

// --init: a tiny init is PID 1, the command its child; signals reach the
// command and orphans are reaped.
func TestInitReapsAndForwardsSignals(t *testing.T) {
	useInit(t)
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--rm", "--init", fx.Busybox.Ref, "sh", "-c", "ps -o pid,comm | grep ' 1 '; (sleep 0.1 &) ; sleep 1.5; ps -o stat,comm | grep -c Z || true")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run --init: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "hull-init") || strings.TrimSpace(lines[1]) != "0" {
		t.Fatalf("PID 1 should be hull-init and no zombies remain: %q", out)
	}
	mustHull(t, root, "run", "-d", "--init", "--name", "sig", fx.Busybox.Ref, "sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done")
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "sig"), "ready") })
	mustHull(t, root, "kill", "-s", "TERM", "sig")
	if out := strings.TrimSpace(mustHull(t, root, "wait", "sig")); out != "7" {
		t.Fatalf("TERM forwarded through init should exit 7, got %q", out)
	}
}

// kill -9 of hull in the middle of create: the next command reports the
// container as interrupted, and rm cleans up everything it had made.
func TestKilledCreateIsReported(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBig)
	root := t.TempDir()
	t.Cleanup(func() {
		out, _, _ := hull(t, root, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			hull(t, root, "rm", "-f", id)
		}
	})
	caught := false
	for attempt := 0; attempt < 5 && !caught; attempt++ {
		name := fmt.Sprintf("cut%d", attempt)
		cmd := hullProc(root, "create", "--name", name, fx.Big.Ref, "true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill as soon as the record exists (the pull is still running).
		for i := 0; i < 2000; i++ {
			if out, _, _ := hull(t, root, "ps", "-aq", "--filter", "name="+name); out != "" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		out := mustHull(t, root, "why", name)
		if strings.Contains(out, "creation was interrupted") {
			caught = true
			mustHull(t, root, "rm", name)
		} else if !strings.Contains(out, "created but never started") {
			t.Fatalf("why after a killed create:\n%s", out)
		}
		// The image stays consistent whichever way it went.
		mustHull(t, root, "pull", "-q", fx.Big.Ref)
		mustHull(t, root, "rmi", "-f", fx.Big.Ref)
	}
	if !caught {
		t.Fatal("create always finished before the kill; could not test an interrupted create")
	}
	if out := mustHull(t, root, "ps", "-aq"); strings.Contains(out, "cut") {
		t.Errorf("left behind: %q", out)
	}
}

func TestRmiRefusesAnImageInUse(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "create", "--name", "user", fx.Busybox.Ref, "true")
	_, _, err := hull(t, root, "rmi", fx.Busybox.Ref)
	if err == nil || !strings.Contains(err.Error(), "being used by container user") {
		t.Fatalf("rmi of an image in use: %v", err)
	}
	mustHull(t, root, "tag", fx.Busybox.Ref, "other/name:1")
	mustHull(t, root, "rmi", "other/name:1") // an extra name goes freely
	mustHull(t, root, "rm", "user")
	mustHull(t, root, "rmi", fx.Busybox.Ref)
}

// rmi removes the image's unpacked layers with it (docker's), keeping
// those another image shares; nothing waits for a prune.
func TestRmiRemovesItsUnpackedLayers(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	mustHull(t, root, "pull", "-q", fx.Config.Ref)
	both := dfCounts(t, root)["Layers"][0]
	mustHull(t, root, "rmi", fx.Config.Ref)
	one := dfCounts(t, root)["Layers"][0]
	if one == both || one == "0" {
		t.Errorf("layers: %s with both images, %s after rmi of one; want fewer, but the shared ones kept", both, one)
	}
	mustHull(t, root, "rmi", fx.Busybox.Ref)
	if n := dfCounts(t, root)["Layers"][0]; n != "0" {
		t.Errorf("layers after rmi of every image: %s, want 0", n)
	}
}

// A monitor outlives its start-up: seconds later it still supervises the
// container (and a stop is still recorded by it, not by crash detection).
func TestMonitorKeepsSupervising(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "long", fx.Busybox.Ref, "sleep", "300")
	time.Sleep(3 * time.Second)
	var doc []struct {
		State         struct{ Status string }
		HullLifecycle struct{ MonitorPid int }
	}
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "long")), &doc)
	if doc[0].State.Status != "running" || syscall.Kill(doc[0].HullLifecycle.MonitorPid, 0) != nil {
		t.Fatalf("after 3s: %+v", doc)
	}
	mustHull(t, root, "stop", "-t", "1", "long")
	if out := mustHull(t, root, "why", "long"); !strings.Contains(out, "killed by signal SIGKILL") {
		t.Errorf("why after stop:\n%s", out)
	}
}

// Removing a container leaves no cgroup of it in any hierarchy, whether it
// was removed by rm -f while running or by --rm after it exited.
func TestNoCgroupOutlivesItsContainer(t *testing.T) {
	root, fx := containerEnv(t)
	id := strings.TrimSpace(mustHull(t, root, "run", "-d", fx.Busybox.Ref, "sleep", "300"))
	mustHull(t, root, "rm", "-f", id)
	out, err := hullProc(root, "run", "--rm", "--name", "brief", fx.Busybox.Ref, "true").CombinedOutput()
	if err != nil {
		t.Fatalf("run --rm: %v\n%s", err, out)
	}
	// A run whose start fails leaves its spare monitor unused, with the
	// container's process it started ahead: both go, cgroups included.
	out, err = hullProc(root, "run", "--rm", fx.Busybox.Ref, "/no/such/program").CombinedOutput()
	if code := exitStatus(err); code != 127 {
		t.Fatalf("run of a missing program: exit %d, want 127\n%s", code, out)
	}
	for _, pattern := range []string{"/sys/fs/cgroup/*/hull-" + id, "/sys/fs/cgroup/unified/hull-" + id} {
		if left, _ := filepath.Glob(pattern); len(left) > 0 {
			t.Errorf("cgroups left after rm -f: %v", left)
		}
	}
	// The --rm container's ID is gone with it; no hull cgroup may be empty
	// and stale either.
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/hull-*")
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		// v1 lists a cgroup's processes in tasks, v2 (unified) in
		// cgroup.procs.
		tasks, _ := os.ReadFile(filepath.Join(d, "tasks"))
		procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if len(tasks) == 0 && len(procs) == 0 {
			t.Errorf("stale empty cgroup %s", d)
		}
	}
}

// The run flags reach the container: hostname, read-only root with a tmpfs
// and a bind mount, resource limits, ulimits, capabilities, environment.
func TestRunFlagsReachTheContainer(t *testing.T) {
	root, fx := containerEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "greeting"), []byte("hi from the host\n"), 0o644)
	script := `hostname; cat /data/greeting; touch /ro-test 2>/dev/null && echo root-writable || echo root-readonly
touch /scratch/x && echo tmpfs-writable; ulimit -n; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max
grep CapEff /proc/self/status; echo "$GREETING"`
	cmd := hullProc(root, "run", "--rm", "-h", "box", "--read-only", "--tmpfs", "/scratch", "-v", host+":/data:ro",
		"--pids-limit", "64", "--ulimit", "nofile=512:512", "--cap-drop", "ALL", "-e", "GREETING=hello",
		fx.Busybox.Ref, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{"box\n", "hi from the host\n", "root-readonly\n", "tmpfs-writable\n", "512\n", "64\n", "CapEff:\t0000000000000000\n", "hello\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// --stop-signal and --stop-timeout: stop sends the container's own signal
// and waits its own time before killing.
func TestStopSignalAndTimeout(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "usr1", "--stop-signal", "USR1", "--stop-timeout", "30", fx.Busybox.Ref,
		"sh", "-c", "trap 'echo got-usr1; exit 5' USR1; echo ready; while true; do sleep 0.1; done")
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "usr1"), "ready") })
	mustHull(t, root, "stop", "usr1")
	if out := mustHull(t, root, "ps", "-a", "--filter", "name=usr1", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (5)") {
		state, _, _ := hull(t, root, "inspect", "-f", "{{json .State}}", "usr1")
		logs, _, _ := hull(t, root, "logs", "usr1")
		t.Fatalf("after stop with SIGUSR1: %q\nstate %s\nlogs %q", out, state, logs)
	}
	if !strings.Contains(mustHull(t, root, "logs", "usr1"), "got-usr1") {
		t.Error("the stop signal did not reach the container")
	}
}

// A program built for another architecture is caught at create: exit 126
// and `hull why` names the architectures.
func TestWrongArchitectureIsExplained(t *testing.T) {
	root := t.TempDir()
	t.Cleanup(func() {
		out, _, _ := hull(t, root, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			hull(t, root, "rm", "-f", id)
		}
	})
	// A minimal ELF64 header for aarch64 (no sections, no segments).
	elfHdr := make([]byte, 64)
	copy(elfHdr, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(elfHdr[16:], 2)   // ET_EXEC
	binary.LittleEndian.PutUint16(elfHdr[18:], 183) // EM_AARCH64
	binary.LittleEndian.PutUint32(elfHdr[20:], 1)
	binary.LittleEndian.PutUint16(elfHdr[52:], 64)
	binary.LittleEndian.PutUint16(elfHdr[54:], 56)
	binary.LittleEndian.PutUint16(elfHdr[58:], 64)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(elfHdr))})
	tw.Write(elfHdr)
	tw.Close()
	archive := filepath.Join(t.TempDir(), "arm.tar")
	os.WriteFile(archive, buf.Bytes(), 0o644)
	mustHull(t, root, "import", archive, "foreign/app:1")
	cmd := hullProc(root, "run", "--name", "foreign", "foreign/app:1", "/bin/app")
	out, err := cmd.CombinedOutput()
	if code := exitStatus(err); code != 126 || !strings.Contains(string(out), "exec format error") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	why := mustHull(t, root, "why", "foreign")
	if !strings.Contains(why, "Stage:     start") || !strings.Contains(why, "EM_AARCH64") || !strings.Contains(why, "--platform") {
		t.Errorf("why:\n%s", why)
	}
}

// A detached container is supervised by the small hull-shim once it runs:
// its output is logged, an OOM kill and the exit are recorded when the shim
// hands back to hull, and the restart policy still applies.
func TestDetachedContainerRunsUnderTheShim(t *testing.T) {
	shimPath := useShim(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "20")
	root, fx := containerEnv(t)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(root, "containers", "*", "container.log.monitor"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
	})
	mustHull(t, root, "run", "-d", "--name", "shimmed", fx.Busybox.Ref, "sh", "-c", "echo up; sleep 300")
	var doc []struct {
		HullLifecycle struct{ MonitorPid int }
	}
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "shimmed")), &doc)
	// The monitor hands over right after reporting the start.
	waitFor(t, func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", doc[0].HullLifecycle.MonitorPid))
		return exe == shimPath
	})
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "shimmed"), "up") })
	mustHull(t, root, "stop", "-t", "1", "shimmed")
	if out := mustHull(t, root, "ps", "-a", "--filter", "name=shimmed", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (137)") {
		t.Fatalf("after stop: %q", out)
	}

	mustHull(t, root, "run", "-d", "--name", "hog", "-m", "32m", fx.Busybox.Ref, "tail", "/dev/zero")
	if code := strings.TrimSpace(mustHull(t, root, "wait", "hog")); code != "137" {
		t.Fatalf("OOM container exit %q", code)
	}
	if out := mustHull(t, root, "ps", "-a", "--filter", "name=hog", "--format", "{{.Status}}"); !strings.Contains(out, "OOMKilled") {
		t.Errorf("OOM kill not recorded through the shim: %q\n%s", out, mustHull(t, root, "why", "hog"))
	}

	mustHull(t, root, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", fx.Busybox.Ref, "sh", "-c", "echo attempt; exit 4")
	if code := strings.TrimSpace(mustHull(t, root, "wait", "flaky")); code != "4" {
		t.Fatalf("flaky exit %q", code)
	}
	if n := strings.Count(mustHull(t, root, "logs", "flaky"), "attempt"); n != 3 {
		t.Errorf("%d attempts, want 3 (two restarts through the shim)", n)
	}
}

// system prune removes stopped containers (as docker's does) and keeps
// running ones and the images they use.
func TestSystemPruneRemovesStoppedContainers(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "alive", fx.Busybox.Ref, "sleep", "300")
	if err := hullProc(root, "run", "--name", "done", fx.Busybox.Ref, "true").Run(); err != nil {
		t.Fatal(err)
	}
	doneID := containerID(t, root, "done")
	out := mustHull(t, root, "system", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:\n"+doneID) {
		t.Fatalf("system prune:\n%s", out)
	}
	if ids := mustHull(t, root, "ps", "-aq", "--no-trunc"); strings.Contains(ids, doneID) || strings.TrimSpace(ids) != containerID(t, root, "alive") {
		t.Fatalf("after prune: %q", ids)
	}
	if _, _, err := hull(t, root, "image", "inspect", fx.Busybox.Ref); err != nil {
		t.Fatalf("the running container's image was pruned: %v", err)
	}
}

// The seed's advice, for who asks for it (warnings.root_warning; docker
// prints nothing, see TestParityNoRootWarning): running as root draws a
// one-line warning; an image with a non-root USER, or -u, does not.
func TestRootWarning(t *testing.T) {
	root, fx := containerEnv(t)
	conf := filepath.Join(t.TempDir(), "hull.toml")
	if err := os.WriteFile(conf, []byte("[warnings]\nroot_warning = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{[]string{fx.Busybox.Ref, "true"}, true},
		{[]string{"-u", "nobody", fx.Busybox.Ref, "true"}, false},
		{[]string{fx.Config.Ref}, false},
	} {
		var stderr bytes.Buffer
		cmd := hullProc(root, append([]string{"--config", conf, "run", "--rm"}, c.args...)...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %v: %v\n%s", c.args, err, stderr.String())
		}
		if got := strings.Contains(stderr.String(), "runs as root"); got != c.warn {
			t.Errorf("run %v: root warning %v, want %v\n%s", c.args, got, c.warn, stderr.String())
		}
	}
}

// monitorsOf lists the monitor processes of root: `hull monitor`, and the
// copies of `hull run` its C constructor starts as spare monitors (see
// spare.go), which keep _HULL_SPARE in their starting environment.
func monitorsOf(root string) []int {
	return hullProcs(root, func(pid int, args []string) bool {
		return slices.Contains(args, "monitor") || spareEnv(pid) != ""
	})
}

// hullProcs lists the processes with root among their arguments that
// match says are wanted.
func hullProcs(root string, match func(pid int, args []string) bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if args := strings.Split(string(b), "\x00"); slices.Contains(args, root) && match(pid, args) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// spareEnv is the _HULL_SPARE a process was started with ("" if none).
func spareEnv(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, "_HULL_SPARE="); ok {
			return v
		}
	}
	return ""
}

// run starts the container's monitor ahead, while it creates the
// container; when the run fails before starting anything (a bad flag, an
// absent image), that spare monitor goes away with it, and a run that
// succeeds is supervised by it.
func TestSpareMonitorIsUsedOrGoes(t *testing.T) {
	root, fx := containerEnv(t)
	monitors := func() []int { return monitorsOf(root) }
	for _, args := range [][]string{
		{"run", fx.Registry + "/hull-test/absent:1", "true"},
		{"run", "--no-such-flag", fx.Busybox.Ref, "true"},
		{"run", "--rm", "-t", "--network", "bogus", fx.Busybox.Ref, "true"},
	} {
		out, err := hullProc(root, args...).CombinedOutput()
		if err == nil {
			t.Fatalf("%v succeeded: %s", args, out)
		}
		for deadline := time.Now().Add(10 * time.Second); len(monitors()) > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("monitors left after %v failed: %v", args, monitors())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	id := strings.TrimSpace(mustHull(t, root, "run", "-d", fx.Busybox.Ref, "sleep", "60"))
	var doc []struct{ HullLifecycle struct{ MonitorPid int } }
	json.Unmarshal([]byte(mustHull(t, root, "inspect", id)), &doc)
	if len(doc) != 1 || doc[0].HullLifecycle.MonitorPid == 0 {
		t.Fatalf("inspect %s: no monitor pid: %+v", id, doc)
	}
	// The monitor execs hull-shim about now; while it does, its command
	// line reads empty, so the count is taken from the same reading that
	// found it (a second reading could fall within the exec).
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); ; {
		if pids = monitors(); slices.Contains(pids, doc[0].HullLifecycle.MonitorPid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's monitor %+v is not among this root's monitors %v", doc, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 1 {
		t.Errorf("one container, monitors %v", pids)
	}
}

// hull run's monitor is started by its C constructor, before the CLI's own
// Go runtime, as a copy of the command; the id it was given is the
// container's when the container's process was started ahead. Without the
// constructor's spare (HULL_NO_EARLY_SPARE), the CLI starts `hull monitor
// -` itself, and the container runs as well. (Foreground runs: a detached
// container's monitor hands over to hull-shim.)
func TestRunMonitorStartsBeforeTheCLI(t *testing.T) {
	root, fx := containerEnv(t)
	for _, noSpare := range []bool{false, true} {
		name := fmt.Sprintf("fg-%v", noSpare)
		cmd := hullProc(root, "run", "--rm", "--name", name, fx.Busybox.Ref, "sleep", "60")
		if noSpare {
			cmd.Env = append(cmd.Env, "HULL_NO_EARLY_SPARE=1")
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var doc []struct {
			ID    string
			State struct {
				Running bool
				Pid     int
			}
			HullLifecycle struct{ MonitorPid int }
		}
		// Running with a pid: the claim (running, no process yet) comes
		// before the monitor is recorded.
		for deadline := time.Now().Add(10 * time.Second); len(doc) != 1 || !doc[0].State.Running || doc[0].State.Pid == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not running after 10s", name)
			}
			time.Sleep(20 * time.Millisecond)
			out, _, _ := hull(t, root, "inspect", name)
			json.Unmarshal([]byte(out), &doc)
		}
		mon := doc[0].HullLifecycle.MonitorPid
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(mon) + "/cmdline")
		args := strings.Split(string(b), "\x00")
		if noSpare {
			if spareEnv(mon) != "" || !slices.Contains(args, "monitor") {
				t.Errorf("HULL_NO_EARLY_SPARE: monitor %d %q (_HULL_SPARE %q), want hull monitor", mon, args, spareEnv(mon))
			}
		} else {
			if got := spareEnv(mon); got != doc[0].ID {
				t.Errorf("monitor %d was given id %q, want the container's %s", mon, got, doc[0].ID)
			}
			if !slices.Contains(args, "run") || slices.Contains(args, "monitor") {
				t.Errorf("monitor command line %q, want a copy of the run command", args)
			}
		}
		mustHull(t, root, "rm", "-f", name)
		cmd.Wait()
	}
}

// rm -f acts on a container caught as soon as it shows as running, while
// its start may still be under way (claimed, no process yet): the removal
// succeeds, the run ends, and nothing of the container is left.
func TestRmForceDuringStart(t *testing.T) {
	root, fx := containerEnv(t)
	for i := range 5 {
		name := fmt.Sprintf("early-%d", i)
		cmd, done := startHull(t, root, "run", "--rm", "--name", name, fx.Busybox.Ref, "sleep", "60")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if out, _, _ := hull(t, root, "inspect", "-f", "{{.State.Status}}", name); out == "running\n" {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("%s: not running after 10s", name)
			}
		}
		if _, stderr, err := hull(t, root, "rm", "-f", name); err != nil {
			t.Errorf("rm -f %s during its start: %v: %s", name, err, stderr)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("hull run %s did not end after rm -f", name)
		}
		if out := mustHull(t, root, "ps", "-aq"); out != "" {
			t.Fatalf("after rm -f %s: still listed: %s", name, out)
		}
	}
}

// A command that reads a container while another creates and starts it
// never takes it for one whose creation was cut short: the creation lock
// is held until the container's config.json is written, even when that
// comes after the monitor has taken the container.
func TestStartingContainerIsNotTakenForAbandoned(t *testing.T) {
	root, fx := containerEnv(t)
	for i := range 5 {
		name := fmt.Sprintf("watched-%d", i)
		_, done := startHull(t, root, "run", "-d", "--name", name, fx.Busybox.Ref, "sleep", "60")
		for running := false; !running; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run -d %s: %v", name, err)
				}
				running = true
			default:
			}
			if out, _, _ := hull(t, root, "inspect", "-f", "{{.State.Error}}", name); strings.Contains(out, "killed") {
				t.Fatalf("%s while being started: %s", name, out)
			}
		}
		if out := mustHull(t, root, "inspect", "-f", "{{.State.Status}} {{.State.Error}}", name); out != "running \n" {
			t.Fatalf("%s after run -d: %q", name, out)
		}
	}
}

// rm answers once the container is gone from the records; its files are
// set aside at once and deleted in the background, leaving nothing.
func TestRmLeavesNoFiles(t *testing.T) {
	root, fx := containerEnv(t)
	id := strings.TrimSpace(mustHull(t, root, "run", "-d", fx.Busybox.Ref, "sh", "-c", "echo data > /file; sleep 60"))
	persist := filepath.Join(root, "containers", id)
	if _, err := os.Stat(persist); err != nil {
		t.Fatalf("the container's directory: %v", err)
	}
	mustHull(t, root, "rm", "-f", id)
	if _, err := os.Stat(persist); !os.IsNotExist(err) {
		t.Errorf("after rm, %s is still there: %v", persist, err)
	}
	leftovers := func() []string {
		var left []string
		for _, pattern := range []string{
			filepath.Join(root, "containers", ".gone-*"),
			filepath.Join(root, "run", "containers", ".gone-*"),
			filepath.Join(root, "snapshots", "tmp", "*"),
		} {
			m, _ := filepath.Glob(pattern)
			left = append(left, m...)
		}
		return left
	}
	for deadline := time.Now().Add(10 * time.Second); len(leftovers()) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("left after rm: %v", leftovers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A --rm container's writable layer is mounted volatile (as podman does):
// nothing syncs a layer that goes when the container exits, not even its
// unmount. A kept container's layer is an ordinary mount.
func TestRmContainersMountVolatile(t *testing.T) {
	root, fx := containerEnv(t)
	kept := strings.TrimSpace(mustHull(t, root, "run", "-d", fx.Busybox.Ref, "sleep", "300"))
	brief := strings.TrimSpace(mustHull(t, root, "run", "-d", "--rm", fx.Busybox.Ref, "sleep", "300"))
	opts := func(id string) string {
		data, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.Contains(f[4], id) && strings.Contains(line, " - overlay ") {
				return f[len(f)-1]
			}
		}
		t.Fatalf("no overlay mount of %s", id)
		return ""
	}
	if o := opts(brief); !strings.Contains(o, "volatile") {
		t.Errorf("--rm container's layer mounted %q, want volatile", o)
	}
	if o := opts(kept); strings.Contains(o, "volatile") {
		t.Errorf("kept container's layer mounted %q: volatile loses data at a crash", o)
	}
}

// A run whose spare monitor got the spec ahead writes config.json after
// handing the container over, and before it returns: a container that
// exited can be started again.
func TestRunLeavesConfigForLaterStarts(t *testing.T) {
	root, fx := containerEnv(t)
	out, err := hullProc(root, "run", "-d", "--name", "again", fx.Busybox.Ref, "echo", "hello").Output()
	if err != nil {
		t.Fatalf("run -d: %v", err)
	}
	id := strings.TrimSpace(string(out))
	// Right away: the command has returned.
	if _, err := os.Stat(filepath.Join(root, "containers", id, "config.json")); err != nil {
		t.Fatalf("config.json after run -d: %v", err)
	}
	mustHull(t, root, "wait", "again")
	out, err = hullProc(root, "start", "-a", "again").Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("start -a again: %q, %v", out, err)
	}
	mustHull(t, root, "rm", "again")
}

// A container whose config.json is missing (a run killed right after
// handing the container to its monitor, before writing the file, leaves
// it so) starts again, and restarts under its policy after a hand-over to
// the shim: the file is made again from the record, the same as it was.
func TestMissingConfigIsMadeAgain(t *testing.T) {
	root, fx := containerEnv(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "20")
	id := strings.TrimSpace(mustHull(t, root, "run", "-d", "--name", "lost", "-u", "nobody", "-e", "X=1", fx.Busybox.Ref, "sh", "-c", "echo $X $(id -un)"))
	path := filepath.Join(root, "containers", id, "config.json")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustHull(t, root, "wait", "lost")
	os.Remove(path)
	out, err := hullProc(root, "start", "-a", "lost").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1 nobody" {
		t.Fatalf("start -a without config.json: %q, %v", out, err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("config.json made again (%d bytes, %v) differs from the first (%d bytes)", len(got), err, len(want))
	}

	id = strings.TrimSpace(mustHull(t, root, "run", "-d", "--name", "lost-again", "--restart", "on-failure:1", fx.Busybox.Ref,
		"sh", "-c", "sleep 0.3; echo attempt; exit 3"))
	os.Remove(filepath.Join(root, "containers", id, "config.json"))
	if out := strings.TrimSpace(mustHull(t, root, "wait", "lost-again")); out != "3" {
		t.Fatalf("wait: %q", out)
	}
	if n := strings.Count(mustHull(t, root, "logs", "lost-again"), "attempt"); n != 2 {
		why, _, _ := hull(t, root, "why", "lost-again")
		t.Errorf("%d attempts logged, want 2 (one restart):\n%s", n, why)
	}
}

// A _HULL_SPARE in the environment of a run, without the pipes the
// constructor gives a monitor it starts, does not make that run a monitor.
func TestStraySpareVariableIsIgnored(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--rm", fx.Busybox.Ref, "echo", "ran")
	cmd.Env = append(cmd.Env, "_HULL_SPARE=0123")
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "ran" {
		t.Fatalf("run with a stray _HULL_SPARE: %q, %v", out, err)
	}
}
