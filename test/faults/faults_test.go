package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hull/internal/testenv"
)

// An operation is a hull command to kill part way, with the container it
// needs first and what must hold once it was killed.
type operation struct {
	name string
	// marks are the stages worth killing it at (full pass); short are
	// the few the short pass kills at.
	marks, short []string
	// monitorFault: the marks are a monitor's, reached later by the
	// monitor setup started; setup gets HULL_FAULT, act runs clean, and a
	// random-delay fault kills the monitor only.
	monitorFault bool
	// hasMonitor: a random-delay kill may also kill the monitor.
	hasMonitor bool
	setup      func(h *harness, env []string)
	act        func(h *harness, env []string) (*exec.Cmd, func() result)
	// check runs once the states settled: lost records, statuses.
	check func(h *harness, f *fault, r result, all map[string]container)
}

// The container every scenario works on, and what its processes run.
const name = "c"

var (
	sleeper = []string{"sleep", "300"}
	// stoppable exits 0 on SIGTERM at once (a shell as pid 1 would
	// ignore it).
	stoppable = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"}
)

func (h *harness) runDetached(env []string, args ...string) {
	r := h.hull(env, append([]string{"run", "-d", "--name", name, "-e", h.token, h.image}, args...)...)
	if r.code != 0 {
		h.t.Fatalf("setup: run -d: %s", r)
	}
}

var operations = []operation{
	{
		name:  "pull",
		marks: []string{"db open", "pull: manifest", "pull: config", "pull: layers", "pull: recorded", "command done"},
		short: []string{"pull: manifest", "pull: layers"},
		setup: func(h *harness, env []string) {},
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "pull", "-q", h.image)
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			h.must("pull", "-q", h.image)
			if out, _ := h.must("images", "-q"); len(strings.Fields(out)) != 1 {
				f.wrong("images after the pull recovered: %q, want the one image", out)
			}
		},
	},
	{
		name: "run-d",
		marks: []string{"cli: engine open", "create: recorded", "create: image resolved", "create: rootfs mounted", "create: spec generated",
			"start: claimed", "start: monitor spawned", "monitor: loaded", "monitor: runtime create", "monitor: runtime created", "monitor: started", "command done"},
		short:      []string{"create: rootfs mounted", "start: claimed", "monitor: runtime created"},
		hasMonitor: true,
		setup:      func(h *harness, env []string) {},
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, append([]string{"run", "-d", "--name", name, "-e", h.token, h.image}, sleeper...)...)
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			c, ok := all[name]
			if r.sig == 0 && r.code == 0 {
				// The command said the container runs: it is recorded.
				if !ok {
					f.lost("run -d succeeded but %s is not listed", name)
					return
				}
			}
			if ok && c.State.Status == "running" {
				h.mustExec(f, 0, "true")
			}
		},
	},
	{
		name: "run-rm",
		marks: []string{"cli: engine open", "create: recorded", "create: image resolved", "create: rootfs mounted", "create: spec generated",
			"start: claimed", "start: monitor spawned", "monitor: loaded", "monitor: runtime create", "monitor: runtime created", "monitor: started",
			"monitor: reaped", "monitor: stats", "monitor: exit recorded", "monitor: rt deleted", "monitor: cleaned up", "monitor: done",
			"cleanup: begin", "cleanup: unmounted", "cleanup: snap removed", "cleanup: set aside", "cleanup: rt deleted", "command done"},
		// "start: monitor spawned": the client dies before it attaches.
		short:      []string{"start: monitor spawned", "monitor: started", "monitor: exit recorded", "cleanup: set aside"},
		hasMonitor: true,
		setup:      func(h *harness, env []string) {},
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "run", "--rm", "--name", name, "-e", h.token, h.image, "sh", "-c", "sleep 0.2; exit 7")
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			// A client that was not killed reports the container's
			// status; when the monitor died, hull's own failure (125)
			// before the start, an unknown status (255) before the exit
			// was recorded.
			if r.sig == 0 && r.code != 7 && !(f.monitorHit && (r.code == 125 || r.code == 255 && !exitRecorded(f.mark))) {
				f.wrong("run --rm ended %s, want exit 7", r)
			}
			c, ok := all[name]
			if !ok || c.State.Status == "created" || c.State.Error != "" {
				return // removed after its run, or it never ran (its error says why)
			}
			// It runs to completion and is removed, or stays recorded
			// with its status.
			w := h.hull(nil, "wait", name)
			code, _ := strconv.Atoi(strings.TrimSpace(w.out))
			switch {
			case w.code != 0 && strings.Contains(w.errOut, "No such"):
			case w.code != 0:
				f.failedf("wait: %s", w)
			case code == 7, code == 255 && f.monitorHit:
			default:
				f.wrong("wait after run --rm was killed: %s, want 7 (or 255 if its monitor died)", w)
			}
		},
	},
	{
		name:       "start",
		marks:      []string{"db open", "start: claimed", "start: monitor spawned", "monitor: loaded", "monitor: runtime create", "monitor: runtime created", "monitor: started", "command done"},
		short:      []string{"start: claimed", "monitor: loaded"},
		hasMonitor: true,
		setup: func(h *harness, env []string) {
			if r := h.hull(env, append([]string{"create", "--name", name, "-e", h.token, h.image}, sleeper...)...); r.code != 0 {
				h.t.Fatalf("setup: create: %s", r)
			}
		},
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "start", name)
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			c, ok := all[name]
			if !ok {
				f.lost("%s is not listed after a start", name)
				return
			}
			if c.State.Status != "running" {
				// The failed start is over: starting again works.
				if _, ok := h.must("start", name); !ok {
					return
				}
			}
			h.mustExec(f, 0, "true")
		},
	},
	{
		name:  "stop",
		marks: []string{"db open", "stop: signalled", "command done"},
		short: []string{"stop: signalled"},
		setup: func(h *harness, env []string) { h.runDetached(env, stoppable...) },
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "stop", name)
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			c, ok := all[name]
			if !ok {
				f.lost("%s is not listed after a stop", name)
				return
			}
			if r.sig == 0 && r.code == 0 && c.State.Status != "exited" {
				f.wrong("stop succeeded but %s is %s", name, c.State.Status)
			}
			if c.State.Status == "exited" {
				if _, ok := h.must("start", name); ok {
					h.mustExec(f, 0, "true")
				}
			}
		},
	},
	{
		// The container exits (stopped) while its monitor, a shim that
		// execs hull again to record the exit, is killed at a stage (the
		// shim reaps: the monitor's earlier marks are not reached), or
		// the shim is killed after a random delay.
		name:         "exit",
		marks:        []string{"monitor: exit recorded", "monitor: done"},
		short:        []string{"monitor: exit recorded"},
		monitorFault: true,
		hasMonitor:   true,
		setup:        func(h *harness, env []string) { h.runDetached(env, stoppable...) },
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "stop", name)
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			if r.code != 0 {
				f.failedf("stop while the monitor was killed at %q: %s", f.mark, r)
			}
			c, ok := all[name]
			if !ok {
				f.lost("%s is not listed after its monitor died", name)
				return
			}
			// Exited 0 (its TERM trap), or, once its monitor died, what
			// the next command found: the exit lost (255), or the
			// container still there and stopped by it (137), with the
			// reason recorded.
			lostMonitor := (c.State.ExitCode == 255 || c.State.ExitCode == 137) && strings.Contains(c.State.Error, "monitor")
			if c.State.Status != "exited" || c.State.ExitCode != 0 && !lostMonitor {
				f.wrong("after stop: %s exit %d (%q), want exited 0, or 255 or 137 saying the monitor died", c.State.Status, c.State.ExitCode, c.State.Error)
			}
			w := h.hull(nil, "wait", name)
			if w.code != 0 || strings.TrimSpace(w.out) != strconv.Itoa(c.State.ExitCode) {
				f.wrong("wait: %s, want %d", w, c.State.ExitCode)
			}
			if _, ok := h.must("start", name); ok {
				h.mustExec(f, 0, "true")
			}
		},
	},
	{
		name:  "exec",
		marks: []string{"db open", "exec: resolved", "exec: started", "command done"},
		short: []string{"exec: started"},
		setup: func(h *harness, env []string) { h.runDetached(env, sleeper...) },
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "exec", name, "sh", "-c", "sleep 0.1; exit 5")
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			if r.sig == 0 && r.code != 5 {
				f.wrong("exec ended %s, want exit 5", r)
			}
			c, ok := all[name]
			if !ok {
				f.lost("%s is not listed after an exec", name)
				return
			}
			if c.State.Status != "running" {
				f.wrong("a killed exec left %s %s", name, c.State.Status)
				return
			}
			h.mustExec(f, 0, "true")
		},
	},
	{
		name:  "rm",
		marks: []string{"db open", "rm: claimed", "rm: killed", "cleanup: begin", "cleanup: unmounted", "cleanup: snap removed", "cleanup: set aside", "cleanup: rt deleted", "command done"},
		short: []string{"rm: killed", "cleanup: unmounted"},
		setup: func(h *harness, env []string) { h.runDetached(env, sleeper...) },
		act: func(h *harness, env []string) (*exec.Cmd, func() result) {
			return h.start(env, "rm", "-f", name)
		},
		check: func(h *harness, f *fault, r result, all map[string]container) {
			c, ok := all[name]
			if r.sig == 0 && r.code == 0 && ok {
				f.wrong("rm -f succeeded but %s is still listed (%s)", name, c.State.Status)
			}
			if ok && c.State.Status == "running" && r.sig == syscall.SIGKILL && f.mark != "" && f.mark != "db open" {
				f.wrong("an rm -f killed at %q left %s running", f.mark, name)
			}
		},
	},
}

// exitRecorded: a monitor killed at mark had recorded the container's
// exit already ("" is a random kill: not known).
func exitRecorded(mark string) bool {
	switch mark {
	case "", "monitor: loaded", "monitor: runtime create", "monitor: runtime created", "monitor: started",
		"monitor: reaped", "monitor: stats", "monitor: rt deleted", "monitor: cleaned up":
		return false
	}
	return true
}

// mustExec runs a command in the container and checks its status.
func (h *harness) mustExec(f *fault, want int, args ...string) {
	r := h.hull(nil, append([]string{"exec", name}, args...)...)
	if r.code != want {
		f.failedf("exec %s: %s, want exit %d", strings.Join(args, " "), r, want)
	}
}

// A fault is one kill: at a mark (HULL_FAULT), or after a random delay
// (of the command, and maybe of the container's monitor).
type fault struct {
	h           *harness
	mark        string
	delay       time.Duration
	killMonitor bool
	monitorHit  bool // a monitor, not the command, was killed
}

func (f *fault) String() string {
	if f.mark != "" {
		return fmt.Sprintf("at %q", f.mark)
	}
	s := fmt.Sprintf("after %s", f.delay)
	if f.killMonitor {
		s += " (and its monitor)"
	}
	return s
}

func (f *fault) lost(format string, args ...any) {
	f.h.tally.add(func(c *tally) { c.lost++ })
	f.h.t.Errorf("LOST: "+format, args...)
}

func (f *fault) wrong(format string, args ...any) {
	f.h.tally.add(func(c *tally) { c.wrong++ })
	f.h.t.Errorf("WRONG: "+format, args...)
}

func (f *fault) failedf(format string, args ...any) {
	f.h.tally.add(func(c *tally) { c.failed++ })
	f.h.t.Errorf("FAILED RECOVERY: "+format, args...)
}

// scenario runs one operation with one fault, then the recovery: the
// states settle, the operation's checks hold, the name is free for a
// new container that runs right, and once all is removed nothing is left.
func scenario(t *testing.T, c *tally, image string, base int, op operation, f *fault) {
	h := newHarness(t, c, image, base)
	f.h = h
	c.add(func(c *tally) { c.scenarios++ })
	if op.name != "pull" {
		h.must("pull", "-q", image)
	}
	var env []string
	if f.mark != "" {
		env = []string{"HULL_FAULT=" + f.mark}
	}
	setupEnv, actEnv := []string(nil), env
	if op.monitorFault {
		setupEnv, actEnv = env, nil
	}
	op.setup(h, setupEnv)
	before, wasThere := h.inspect(name)
	cmd, wait := op.act(h, actEnv)
	if f.mark == "" && cmd != nil {
		time.Sleep(f.delay)
		if f.killMonitor {
			if c, ok := h.inspect(name); ok && c.HullLifecycle.MonitorPid > 0 && syscall.Kill(c.HullLifecycle.MonitorPid, syscall.SIGKILL) == nil {
				f.monitorHit = true
			}
		}
		if !op.monitorFault {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	r := wait()
	injected := false
	if f.mark != "" {
		for _, pid := range h.reached(f.mark) {
			injected = true
			if cmd == nil || pid != cmd.Process.Pid {
				f.monitorHit = true
			}
		}
	} else {
		injected = r.sig == syscall.SIGKILL || f.monitorHit
	}
	c.add(func(c *tally) {
		if injected {
			c.injected++
		} else if f.mark != "" {
			c.notReached++
		}
	})
	if f.mark != "" && !injected {
		t.Logf("%s never reached %q (%s)", op.name, f.mark, r)
	}
	all := h.settle(op.name + " " + f.String())
	if wasThere && before.State.Status == "running" && op.name != "rm" {
		if _, ok := all[name]; !ok {
			f.lost("%s was running before %s was killed %s, and is not listed", name, op.name, f)
		}
	}
	op.check(h, f, r, all)
	// Recovery: every container goes, the name is free again, and a new
	// container runs with the right status.
	h.removeAll()
	if r := h.hull(nil, "run", "--rm", "--name", name, "-e", h.token, image, "sh", "-c", "exit 3"); r.code != 3 {
		f.failedf("run --rm --name %s after recovery: %s, want exit 3", name, r)
	}
	h.checkClean(op.name + " " + f.String())
}

// TestFaults kills each operation at its marks and after random delays.
// The short pass (the default) kills a few times per operation; with
// HULL_FAULTS=full it kills at every mark and after HULL_FAULTS_ROUNDS
// (default 3) rounds of random delays, and the marks as many times.
func TestFaults(t *testing.T) {
	full := os.Getenv("HULL_FAULTS") == "full"
	rounds := 1
	if full {
		rounds = 3
		if n, err := strconv.Atoi(os.Getenv("HULL_FAULTS_ROUNDS")); err == nil && n > 0 {
			rounds = n
		}
	}
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	image := fx.Busybox.Ref
	base := imageSnapshots(t, image)
	var c tally
	t.Cleanup(func() {
		t.Log("faults: " + c.String())
		fmt.Println("faults: " + c.String())
	})
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("HULL_FAULTS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("random delays: HULL_FAULTS_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for round := 0; round < rounds; round++ {
		for _, op := range operations {
			marks := op.short
			if full {
				marks = op.marks
			}
			var faults []*fault
			for _, m := range marks {
				faults = append(faults, &fault{mark: m})
			}
			n := 1
			if full {
				n = 3
			}
			for i := 0; i < n; i++ {
				faults = append(faults, &fault{delay: time.Duration(rng.IntN(31)) * time.Millisecond, killMonitor: op.monitorFault || op.hasMonitor && i%2 == 1})
			}
			for _, f := range faults {
				label := fmt.Sprintf("%d/%s/%s", round, op.name, f)
				t.Run(strings.NewReplacer(" ", "_", "\"", "", ":", "").Replace(label), func(t *testing.T) {
					scenario(t, &c, image, base, op, f)
				})
			}
		}
	}
}

// imageSnapshots is the number of snapshot entries a clean pull of image
// leaves: what a scenario's store must come back to.
func imageSnapshots(t *testing.T, image string) int {
	var c tally
	h := newHarness(t, &c, image, 0)
	if _, ok := h.must("pull", "-q", image); !ok {
		t.FailNow()
	}
	if r := h.hull(nil, "run", "--rm", "-e", h.token, image, "true"); r.code != 0 {
		t.Fatalf("run --rm: %s", r)
	}
	return h.snapshots()
}
