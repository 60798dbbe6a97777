package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hull/internal/perm"
	"hull/internal/testenv"
)

// hullBin is the hull binary under test: HULL_BIN, or one built by
// TestMain (without hull-init, so containers start from hull itself).
var hullBin string

// systemCheck says whether this build has `hull system check`; when it
// does, every scenario ends with it and counts what it reports.
var systemCheck bool

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "skipping fault tests: they need root")
		return 0
	}
	hullBin = os.Getenv("HULL_BIN")
	if hullBin == "" {
		dir, err := os.MkdirTemp("", "hull-faults-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		hullBin = filepath.Join(dir, "hull")
		for _, b := range [][]string{
			{"go", "build", "-tags", "libsqlite3", "-o", hullBin, "hull/cmd/hull"},
			{"go", "build", "-o", filepath.Join(dir, "hull-shim"), "hull/cmd/hull-shim"},
		} {
			cmd := exec.Command(b[0], b[1:]...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "build:", err)
				return 1
			}
		}
	}
	systemCheck = hasSystemCheck()
	return testenv.Main(m)
}

// hasSystemCheck looks for `hull system check` in the build's help.
func hasSystemCheck() bool {
	out, _ := exec.Command(hullBin, "system", "--help").CombinedOutput()
	return strings.Contains(string(out), "\n  check ")
}

// tally counts a campaign's outcomes for the summary.
type tally struct {
	mu         sync.Mutex
	scenarios  int
	injected   int // faults that hit: the mark was reached, or the kill landed
	notReached int // marks the operation never reached
	stuck      int // containers left transitional, commands that hung
	lost       int // records that vanished
	leaked     int // processes, mounts, cgroups, snapshots, directories left
	wrong      int // wrong exit statuses or states
	failed     int // recovery commands that failed
	checked    int // inconsistencies `hull system check` reported
}

func (c *tally) add(f func(*tally)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := fmt.Sprintf("scenarios %d: faults injected %d (marks not reached %d) / stuck %d / lost %d / leaked %d / wrong status %d / failed recovery %d",
		c.scenarios, c.injected, c.notReached, c.stuck, c.lost, c.leaked, c.wrong, c.failed)
	if systemCheck {
		s += fmt.Sprintf(" / system check findings %d", c.checked)
	} else {
		s += " / system check: not in this build"
	}
	return s
}

// cmdTimeout bounds every hull command: one that runs longer is counted
// stuck (nothing here takes more than seconds).
const cmdTimeout = 90 * time.Second

// settleTimeout bounds how long a transitional state may last after a
// fault: a dead start claim is failed after 5 s, the rest at once.
const settleTimeout = 30 * time.Second

// leakTimeout bounds the wait for what the kernel and background purges
// release after a removal.
const leakTimeout = 10 * time.Second

// harness is one scenario's private hull: its roots, the image it runs,
// and what it has seen.
type harness struct {
	t             testing.TB
	tally         *tally
	root, runRoot string
	config        string // its hull.toml: a default network of its own (testenv.NetworkConfig)
	image         string
	// token is in the environment of every container process, so that
	// one left behind is found whatever became of its record.
	token string
	trace string // HULL_TRACE file: which marks were reached, by which pid

	mu  sync.Mutex
	ids map[string]bool // container IDs seen
	// snapshotsBase is the number of snapshot entries a clean pull of
	// the image leaves (the image's layers).
	snapshotsBase int
	// cgroupsBefore are the hull cgroups that existed when the scenario
	// began: one made since (a container process started ahead for an ID
	// that was never recorded) must be gone at the end too. This assumes
	// no other hull makes containers on the host meanwhile, as under
	// `make test` (packages one at a time) and `make faults`.
	cgroupsBefore map[string]bool
}

// hullCgroups lists every hull cgroup on the host.
func hullCgroups() map[string]bool {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/hull-*")
	out := map[string]bool{}
	for _, d := range dirs {
		out[d] = true
	}
	return out
}

var tokens struct {
	sync.Mutex
	n int
}

func newHarness(t testing.TB, c *tally, image string, snapshotsBase int) *harness {
	tokens.Lock()
	tokens.n++
	n := tokens.n
	tokens.Unlock()
	dir := t.TempDir()
	h := &harness{
		t: t, tally: c, image: image, snapshotsBase: snapshotsBase,
		root: filepath.Join(dir, "root"), runRoot: filepath.Join(dir, "run"),
		config: testenv.NetworkConfig(t, filepath.Join(dir, "root")),
		token:  fmt.Sprintf("HULL_FAULTS_TOKEN=%d-%d", os.Getpid(), n),
		trace:  filepath.Join(dir, "trace"),
		ids:    map[string]bool{},

		cgroupsBefore: hullCgroups(),
	}
	// Runs before TempDir's removal: nothing of this scenario survives it,
	// whatever failed.
	t.Cleanup(h.teardown)
	return h
}

// result is how a hull command ended.
type result struct {
	out, errOut string
	code        int            // exit status, -1 if killed by a signal
	sig         syscall.Signal // the signal that ended it
	err         error          // could not run, or timed out
}

func (r result) String() string {
	s := fmt.Sprintf("exit %d", r.code)
	if r.sig != 0 {
		s = "killed by " + r.sig.String()
	}
	if r.err != nil {
		s += " (" + r.err.Error() + ")"
	}
	return s + "; stdout: " + strings.TrimSpace(r.out) + "; stderr: " + strings.TrimSpace(r.errOut)
}

// command makes a hull command in the scenario's roots; env adds to the
// test's environment (HULL_FAULT, say).
func (h *harness) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, hullBin, append([]string{"--root", h.root, "--run-root", h.runRoot, "--config", h.config}, args...)...)
	cmd.Env = os.Environ()
	if h.trace != "" {
		cmd.Env = append(cmd.Env, "HULL_TRACE="+h.trace)
	}
	cmd.Env = append(cmd.Env, env...)
	// A monitor forked from the command keeps its output open until it
	// redirects it: do not wait for it beyond the command's own end.
	cmd.WaitDelay = time.Second
	return cmd
}

// finish waits for a started command and says how it ended.
func finish(ctx context.Context, cmd *exec.Cmd) result {
	err := cmd.Wait()
	r := result{out: cmd.Stdout.(*bytes.Buffer).String(), errOut: cmd.Stderr.(*bytes.Buffer).String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.sig = ws.Signal()
		}
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		r.code, r.err = -1, err
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("still running after %s: %w", cmdTimeout, ctx.Err())
	}
	return r
}

// start starts a hull command; wait ends it.
func (h *harness) start(env []string, args ...string) (*exec.Cmd, func() result) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	cmd := h.command(ctx, env, args...)
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, func() result { return result{code: -1, err: err} }
	}
	return cmd, func() result {
		defer cancel()
		r := finish(ctx, cmd)
		if r.err != nil && ctx.Err() != nil {
			h.tally.add(func(c *tally) { c.stuck++ })
			h.t.Errorf("STUCK: hull %s: %s", strings.Join(cmd.Args[5:], " "), r)
		}
		return r
	}
}

// hull runs a hull command to its end.
func (h *harness) hull(env []string, args ...string) result {
	_, wait := h.start(env, args...)
	return wait()
}

// must runs a recovery command that has to succeed; a failure is counted.
func (h *harness) must(args ...string) (string, bool) {
	r := h.hull(nil, args...)
	if r.code != 0 || r.err != nil {
		h.tally.add(func(c *tally) { c.failed++ })
		h.t.Errorf("FAILED RECOVERY: hull %s: %s", strings.Join(args, " "), r)
		return r.out, false
	}
	return r.out, true
}

// container is what the checks read of `hull inspect`.
type container struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status   string
		Pid      int
		ExitCode int
		Error    string
	}
	HullLifecycle struct{ MonitorPid int }
}

// inspect reads a container; ok is false when there is none by that name.
func (h *harness) inspect(name string) (container, bool) {
	r := h.hull(nil, "inspect", name)
	var doc []container
	if r.code != 0 || json.Unmarshal([]byte(r.out), &doc) != nil || len(doc) != 1 {
		return container{}, false
	}
	h.seen(doc[0].ID)
	return doc[0], true
}

func (h *harness) seen(id string) {
	h.mu.Lock()
	h.ids[id] = true
	h.mu.Unlock()
}

// list returns the IDs of every container, remembering them.
func (h *harness) list() []string {
	out, _ := h.must("ps", "-aq", "--no-trunc")
	ids := strings.Fields(out)
	for _, id := range ids {
		h.seen(id)
	}
	// Directories name containers whose records may be gone.
	for _, dir := range []string{filepath.Join(h.root, "containers"), filepath.Join(h.runRoot, "containers")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if len(e.Name()) == 64 {
				h.seen(e.Name())
			}
		}
	}
	return ids
}

// transitional: a state that someone must still finish. A start claim
// (running, no process yet) and a removal are transitional; a container
// recorded running whose process is gone is one no-one has noticed dead.
func transitional(c container) bool {
	switch c.State.Status {
	case "removing", "restarting":
		return true
	case "running", "paused":
		return c.State.Pid == 0 || !testenv.ProcessRunning(c.State.Pid)
	}
	return false
}

// settle waits until no container is in a transitional state; one still
// there after settleTimeout is stuck. It returns the containers by name.
func (h *harness) settle(label string) map[string]container {
	deadline := time.Now().Add(settleTimeout)
	for {
		all := map[string]container{}
		var pending []string
		for _, id := range h.list() {
			c, ok := h.inspect(id)
			if !ok {
				continue // removed meanwhile
			}
			all[strings.TrimPrefix(c.Name, "/")] = c
			if transitional(c) {
				pending = append(pending, fmt.Sprintf("%s %s pid %d monitor %d error %q", c.Name, c.State.Status, c.State.Pid, c.HullLifecycle.MonitorPid, c.State.Error))
			}
		}
		if len(pending) == 0 {
			return all
		}
		if time.Now().After(deadline) {
			h.tally.add(func(c *tally) { c.stuck += len(pending) })
			h.t.Errorf("STUCK after %s: %d containers still transitional after %s: %s", label, len(pending), settleTimeout, strings.Join(pending, "; "))
			return all
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reached reports whether a process reached mark (HULL_TRACE), and which.
func (h *harness) reached(mark string) (pids []int) {
	f, err := os.Open(h.trace)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hull[PID] 15:04:05.000000 +12.3ms LABEL
		line := sc.Text()
		fields := strings.SplitN(line, " ", 4)
		if len(fields) == 4 && fields[3] == mark {
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(fields[0], "hull["), "]"))
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeAll removes every container, as a user recovering would.
func (h *harness) removeAll() {
	for _, id := range h.list() {
		h.must("rm", "-f", id)
	}
	if ids := h.list(); len(ids) != 0 {
		h.tally.add(func(c *tally) { c.failed++ })
		h.t.Errorf("FAILED RECOVERY: containers still listed after rm -f of all: %v", ids)
	}
}

// leaks lists what is left of the scenario's containers once all were
// removed: processes, mounts, cgroups, snapshots, directories.
func (h *harness) leaks() []string {
	var found []string
	h.mu.Lock()
	ids := make([]string, 0, len(h.ids))
	for id := range h.ids {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, p := range h.processes(ids) {
		found = append(found, fmt.Sprintf("process %d (%s)", p.pid, p.cmdline))
	}
	for _, m := range h.mounts() {
		found = append(found, "mount "+m)
	}
	for d := range hullCgroups() {
		if !h.cgroupsBefore[d] {
			found = append(found, "cgroup "+d)
		}
	}
	if n := h.snapshots(); n > h.snapshotsBase {
		entries, _ := os.ReadDir(filepath.Join(h.root, "snapshots"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		found = append(found, fmt.Sprintf("snapshots: %d entries, the image has %d: %v", n, h.snapshotsBase, names))
	}
	for _, dir := range []string{filepath.Join(h.root, "containers"), filepath.Join(h.runRoot, "containers")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			found = append(found, "directory "+filepath.Join(dir, e.Name()))
		}
	}
	return found
}

// waitLeaks is leaks once they stop going away: a purge in the
// background and the kernel's teardown of a killed cgroup take a moment;
// what is left after leakTimeout is leaked.
func (h *harness) waitLeaks() []string {
	deadline := time.Now().Add(leakTimeout)
	for {
		left := h.leaks()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type proc struct {
	pid     int
	cmdline string
}

// processes finds processes of the scenario: hull processes naming its
// roots, container processes carrying its token, and anything in the
// cgroup of one of its containers.
func (h *harness) processes(ids []string) []proc {
	var found []proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a zombie or kernel thread
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		mine := false
		for _, a := range args {
			if a == h.root || a == h.runRoot {
				mine = true
			}
		}
		if !mine {
			environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
			mine = bytes.Contains(environ, append([]byte(h.token), 0))
		}
		if !mine {
			cg, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
			for _, id := range ids {
				if bytes.Contains(cg, []byte("/hull-"+id)) {
					mine = true
				}
			}
		}
		if mine {
			found = append(found, proc{pid, strings.Join(args, " ")})
		}
	}
	return found
}

// mounts lists mount points under the scenario's roots (nsfs pins
// included).
func (h *harness) mounts() []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		for _, r := range []string{h.root, h.runRoot} {
			if mp == r || strings.HasPrefix(mp, r+"/") {
				found = append(found, mp)
			}
		}
	}
	return found
}

// snapshots counts the entries of the snapshot store.
func (h *harness) snapshots() int {
	entries, _ := os.ReadDir(filepath.Join(h.root, "snapshots"))
	return len(entries)
}

// checkClean removes everything and counts what is left; then `hull
// system check`, where the build has it, must find nothing.
func (h *harness) checkClean(label string) {
	h.removeAll()
	left := h.waitLeaks()
	if len(left) > 0 {
		h.tally.add(func(c *tally) { c.leaked += len(left) })
		h.t.Errorf("LEAKED after %s: %s", label, strings.Join(left, "; "))
	}
	// Nothing the scenario left may be reachable by other users.
	exposed, err := perm.Exposed(h.root, h.runRoot)
	if err != nil {
		h.t.Errorf("walk the roots after %s: %v", label, err)
	}
	for _, x := range exposed {
		h.t.Errorf("after %s: %s", label, x)
	}
	if systemCheck {
		r := h.hull(nil, "system", "check")
		if r.code != 0 {
			n := len(strings.Split(strings.TrimSpace(r.out), "\n"))
			h.tally.add(func(c *tally) { c.checked += n })
			h.t.Errorf("system check after %s: %s", label, r)
		}
	}
}

// teardown leaves nothing of the scenario behind, whatever happened:
// containers removed, processes killed by pid, mounts detached.
func (h *harness) teardown() {
	if _, err := os.Stat(h.root); err == nil {
		out := h.hull(nil, "ps", "-aq", "--no-trunc").out
		for _, id := range strings.Fields(out) {
			h.seen(id)
			h.hull(nil, "rm", "-f", id)
		}
	}
	h.mu.Lock()
	ids := make([]string, 0, len(h.ids))
	for id := range h.ids {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, p := range h.processes(ids) {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	mounts := h.mounts()
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
	for _, id := range ids {
		cg, _ := filepath.Glob("/sys/fs/cgroup/*/hull-" + id)
		for _, d := range cg {
			os.Remove(d)
		}
	}
}
