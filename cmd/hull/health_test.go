package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// health is inspect's .State.Health, as the test reads it.
type health struct {
	Status        string
	FailingStreak int
	Log           []struct {
		Start, End time.Time
		ExitCode   int
		Output     string
	}
}

// inspectHealth reads a container's .State.Health (nil when inspect has
// none).
func inspectHealth(t *testing.T, root, c string) *health {
	t.Helper()
	out := mustHull(t, root, "inspect", "--format", "{{json .State.Health}}", c)
	var h *health
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("inspect .State.Health of %s: %q: %v", c, out, err)
	}
	return h
}

// waitHealth polls until the container's health satisfies ok (the
// probes' timing is never asserted: only where they lead).
func waitHealth(t *testing.T, root, c string, ok func(*health) bool) *health {
	t.Helper()
	var h *health
	deadline := time.Now().Add(60 * time.Second)
	for {
		if h = inspectHealth(t, root, c); h != nil && ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: health not as wanted within 60s: %+v", c, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// probersOf lists the prober processes of container id under root: the
// hull-shim health pacing the rounds (or hull health --serve), not the
// rounds it runs (whose parent is the prober).
func probersOf(root, id string) []int {
	all := hullProcs(root, func(_ int, args []string) bool {
		return slices.Contains(args, "health") && slices.Contains(args, id)
	})
	return slices.DeleteFunc(slices.Clone(all), func(pid int) bool {
		ppid := parentOf(pid) // 0: a round that ended meanwhile
		return ppid == 0 || slices.Contains(all, ppid)
	})
}

// anyProberOf reports whether any process of container id's prober, a
// round included, is left.
func anyProberOf(root, id string) bool {
	return len(hullProcs(root, func(_ int, args []string) bool {
		return slices.Contains(args, "health") && slices.Contains(args, id)
	})) > 0
}

// parentOf is a process's parent pid (0 when it is gone).
func parentOf(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			return ppid
		}
	}
	return 0
}

// psStatus is ps's STATUS of container c.
func psStatus(t *testing.T, root, c string) string {
	t.Helper()
	out := mustHull(t, root, "ps", "-a", "--format", "{{.Names}}\t{{.Status}}")
	for _, line := range strings.Split(out, "\n") {
		if n, st, _ := strings.Cut(line, "\t"); n == c {
			return st
		}
	}
	t.Fatalf("ps lacks %s:\n%s", c, out)
	return ""
}

func psNames(t *testing.T, root string, filters ...string) []string {
	t.Helper()
	args := []string{"ps", "--format", "{{.Names}}"}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	return strings.Fields(mustHull(t, root, args...))
}

func TestHealthCheckReachesHealthy(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "hc-ok", "--health-cmd", "echo probe-ran", "--health-interval", "1s")
	// A check whose first probe is an hour away stays starting.
	slow := runDetached(t, root, fx.Busybox.Ref, "hc-slow", "--health-cmd", "true", "--health-interval", "1h")
	plain := runDetached(t, root, fx.Busybox.Ref, "hc-none")

	h := waitHealth(t, root, c, func(h *health) bool { return h.Status == "healthy" })
	if h.FailingStreak != 0 || len(h.Log) == 0 || h.Log[0].ExitCode != 0 || h.Log[0].Output != "probe-ran\n" ||
		h.Log[0].Start.IsZero() || h.Log[0].End.Before(h.Log[0].Start) {
		t.Errorf("health after a passing probe: %+v", h)
	}
	if st := psStatus(t, root, c); !strings.HasPrefix(st, "Up ") || !strings.HasSuffix(st, " (healthy)") {
		t.Errorf("ps STATUS %q, want Up ... (healthy)", st)
	}
	if st := psStatus(t, root, slow); !strings.HasSuffix(st, " (health: starting)") {
		t.Errorf("ps STATUS %q, want Up ... (health: starting)", st)
	}
	if st := psStatus(t, root, plain); strings.Contains(st, "(") {
		t.Errorf("ps STATUS of a container without a check: %q", st)
	}
	if h := inspectHealth(t, root, slow); h.Status != "starting" || h.Log == nil || len(h.Log) != 0 {
		t.Errorf("health before the first probe: %+v", h)
	}
	if h := inspectHealth(t, root, plain); h != nil {
		t.Errorf("a container without a check has health %+v", h)
	}
	cfg := mustHull(t, root, "inspect", "--format", "{{json .Config.Healthcheck}}", c)
	if strings.TrimSpace(cfg) != `{"Test":["CMD-SHELL","echo probe-ran"],"Interval":1000000000}` {
		t.Errorf("inspect .Config.Healthcheck: %s", cfg)
	}
	for filter, want := range map[string][]string{
		"health=healthy": {c}, "health=starting": {slow}, "health=none": {plain}, "health=unhealthy": nil,
	} {
		if got := psNames(t, root, filter); !slices.Equal(got, want) {
			t.Errorf("ps --filter %s: %v, want %v", filter, got, want)
		}
	}
	if _, errOut, err := hull(t, root, "ps", "--filter", "health=sick"); err == nil || !strings.Contains(errOut+err.Error(), "starting, healthy, unhealthy, none") {
		t.Errorf("ps --filter health=sick: %v %s", err, errOut)
	}
	events := mustHull(t, root, "events", "--since", "1h", "--until", "0s", "--filter", "container="+c, "--format", "{{.Action}}")
	for _, want := range []string{"health_status: healthy", "exec_create: /bin/sh -c echo probe-ran", "exec_die"} {
		if !strings.Contains(events, want+"\n") {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	// The log keeps the last five results.
	h = waitHealth(t, root, c, func(h *health) bool { return len(h.Log) == 5 && h.Log[4].Start.After(h.Log[0].Start) })
	time.Sleep(1500 * time.Millisecond)
	if h2 := inspectHealth(t, root, c); len(h2.Log) != 5 {
		t.Errorf("log of %d results, want the last 5", len(h2.Log))
	}
}

func TestHealthCheckReachesUnhealthy(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "hc-bad", "--health-cmd", "echo probe-failed >&2; exit 3",
		"--health-interval", "200ms", "--health-retries", "2")
	h := waitHealth(t, root, c, func(h *health) bool { return h.Status != "starting" })
	// Unhealthy at the second failure; more may have come since.
	if h.Status != "unhealthy" || h.FailingStreak < 2 || h.FailingStreak != len(h.Log) && len(h.Log) < 5 {
		t.Fatalf("health after failing probes: %+v", h)
	}
	for _, r := range h.Log {
		if r.ExitCode != 3 || r.Output != "probe-failed\n" {
			t.Errorf("probe result %+v", r)
		}
	}
	if st := psStatus(t, root, c); !strings.HasSuffix(st, " (unhealthy)") {
		t.Errorf("ps STATUS %q, want ... (unhealthy)", st)
	}
	if got := psNames(t, root, "health=unhealthy"); !slices.Equal(got, []string{c}) {
		t.Errorf("ps --filter health=unhealthy: %v", got)
	}
	out := mustHull(t, root, "why", c)
	if !strings.Contains(out, "unhealthy") || !strings.Contains(out, "probe-failed") || !strings.Contains(out, "exit code 3") {
		t.Errorf("why does not tell the failing check:\n%s", out)
	}
	events := mustHull(t, root, "events", "--since", "1h", "--until", "0s", "--filter", "container="+c, "--format", "{{.Action}}")
	if strings.Count(events, "health_status: unhealthy\n") != 1 || strings.Contains(events, "health_status: healthy") {
		t.Errorf("events:\n%s", events)
	}
	// A probe that runs past its timeout is killed and fails with -1.
	slow := runDetached(t, root, fx.Busybox.Ref, "hc-timeout", "--health-cmd", "echo started; sleep 1000",
		"--health-interval", "200ms", "--health-timeout", "300ms", "--health-retries", "1")
	h = waitHealth(t, root, slow, func(h *health) bool { return h.Status == "unhealthy" })
	if r := h.Log[0]; r.ExitCode != -1 || r.Output != "Health check exceeded timeout (300ms): started\n" {
		t.Errorf("timed-out probe: %+v", r)
	}
}

func TestHealthCheckStartPeriod(t *testing.T) {
	root, fx := containerEnv(t)
	// Failures within the start period do not count: after many of them
	// it is still starting, with no failing streak. The start interval,
	// not the hour-long interval, paces the probes then.
	c := runDetached(t, root, fx.Busybox.Ref, "hc-start", "--health-cmd", "test -e /tmp/ready",
		"--health-interval", "1h", "--health-start-period", "1h", "--health-start-interval", "100ms", "--health-retries", "1")
	h := waitHealth(t, root, c, func(h *health) bool { return len(h.Log) >= 3 })
	if h.Status != "starting" || h.FailingStreak != 0 {
		t.Errorf("failures within the start period counted: %+v", h)
	}
	// A success ends the start: healthy.
	mustHull(t, root, "exec", c, "touch", "/tmp/ready")
	waitHealth(t, root, c, func(h *health) bool { return h.Status == "healthy" })

	// Past the start period failures count again.
	c2 := runDetached(t, root, fx.Busybox.Ref, "hc-short-start", "--health-cmd", "exit 1",
		"--health-interval", "200ms", "--health-start-period", "1ms", "--health-retries", "1")
	h = waitHealth(t, root, c2, func(h *health) bool { return len(h.Log) >= 1 })
	if h.Status != "unhealthy" || h.FailingStreak < 1 {
		t.Errorf("a failure after the start period: %+v", h)
	}
}

// pushHealthImage pushes busybox with hc as its config's Healthcheck,
// written as JSON (go-containerregistry's config lacks StartInterval),
// and returns its reference.
func pushHealthImage(t *testing.T, busybox, tag string, hc map[string]any) string {
	t.Helper()
	src, err := name.ParseReference(busybox, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["config"].(map[string]any)["Healthcheck"] = hc
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	ref := src.Context().Tag(tag).String()
	dst, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(dst, rawConfigImage{img, raw}); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestImageHealthcheckAndFlagsOverIt(t *testing.T) {
	root, fx := containerEnv(t)
	ref := pushHealthImage(t, fx.Busybox.Ref, "healthcheck", map[string]any{
		"Test": []string{"CMD", "sh", "-c", "echo from-image"}, "Interval": 200 * time.Millisecond, "Retries": 4,
	})
	c := runDetached(t, root, ref, "hc-image")
	h := waitHealth(t, root, c, func(h *health) bool { return h.Status == "healthy" })
	if h.Log[0].Output != "from-image\n" {
		t.Errorf("the image's check: %+v", h)
	}
	// The flags override the image's fields one by one.
	c2 := runDetached(t, root, ref, "hc-image-over", "--health-timeout", "5s", "--health-retries", "2")
	got := strings.TrimSpace(mustHull(t, root, "inspect", "--format", "{{json .Config.Healthcheck}}", c2))
	if want := `{"Test":["CMD","sh","-c","echo from-image"],"Interval":200000000,"Timeout":5000000000,"Retries":2}`; got != want {
		t.Errorf("merged check %s, want %s", got, want)
	}
	c3 := runDetached(t, root, ref, "hc-image-cmd", "--health-cmd", "echo from-flag")
	waitHealth(t, root, c3, func(h *health) bool { return len(h.Log) > 0 && h.Log[0].Output == "from-flag\n" })

	// --no-healthcheck disables the image's: no health, no prober.
	c4 := runDetached(t, root, ref, "hc-image-off", "--no-healthcheck")
	got = strings.TrimSpace(mustHull(t, root, "inspect", "--format", "{{json .Config.Healthcheck}}", c4))
	// docker lays the image's other fields under NONE all the same.
	if got != `{"Test":["NONE"],"Interval":200000000,"Retries":4}` {
		t.Errorf("--no-healthcheck: .Config.Healthcheck %s", got)
	}
	if h := inspectHealth(t, root, c4); h != nil {
		t.Errorf("--no-healthcheck: health %+v", h)
	}
	if anyProberOf(root, containerID(t, root, c4)) {
		t.Error("--no-healthcheck: a prober runs")
	}
	if got := psNames(t, root, "health=none"); !slices.Equal(got, []string{c4}) {
		t.Errorf("ps --filter health=none: %v", got)
	}

	// Bad flags are usage errors (125), and name what to do.
	for _, bad := range [][]string{
		{"--no-healthcheck", "--health-cmd", "true"},
		{"--health-interval", "-1s", "--health-cmd", "true"},
		{"--health-timeout", "10us", "--health-cmd", "true"},
		{"--health-retries", "-1", "--health-cmd", "true"},
	} {
		cmd := hullProc(root, append(append([]string{"run", "-d"}, bad...), fx.Busybox.Ref, "true")...)
		out, err := cmd.CombinedOutput()
		if code := exitStatus(err); code != 125 || !strings.Contains(string(out), "health") {
			t.Errorf("run %v: exit %d: %s", bad, code, out)
		}
	}
}

func TestProberEndsWithItsContainer(t *testing.T) {
	root, fx := containerEnv(t)
	flags := []string{"--health-cmd", "true", "--health-interval", "200ms"}
	waitProber := func(c string) (string, int) {
		t.Helper()
		id := containerID(t, root, c)
		var pids []int
		waitFor(t, func() bool { pids = probersOf(root, id); return len(pids) > 0 })
		if len(pids) != 1 {
			t.Errorf("%s has %d probers: %v\n%s", c, len(pids), pids, proberReport(root, id))
		}
		return id, pids[0]
	}
	gone := func(c, id, how string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for anyProberOf(root, id) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: prober still there 30s after %s:\n%s", c, how, proberReport(root, id))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, how := range [][]string{{"stop", "-t", "1"}, {"kill"}, {"rm", "-f"}} {
		c := runDetached(t, root, fx.Busybox.Ref, "hc-end-"+how[0], flags...)
		id, _ := waitProber(c)
		waitHealth(t, root, c, func(h *health) bool { return h.Status == "healthy" })
		mustHull(t, root, append(how, c)...)
		gone(c, id, how[0])
		if how[0] != "rm" {
			// The last status stays, as docker's.
			if h := inspectHealth(t, root, c); h == nil || h.Status != "healthy" {
				t.Errorf("health after %s: %+v", how[0], h)
			}
		}
	}
	// A restart ends the prober with its monitor; the new run has its own.
	c := runDetached(t, root, fx.Busybox.Ref, "hc-restart", flags...)
	id, old := waitProber(c)
	waitHealth(t, root, c, func(h *health) bool { return h.Status == "healthy" })
	restarted := time.Now()
	mustHull(t, root, "restart", "-t", "1", c)
	waitFor(t, func() bool { return !slices.Contains(probersOf(root, id), old) })
	waitProber(c)
	waitHealth(t, root, c, func(h *health) bool {
		return h.Status == "healthy" && h.Log[len(h.Log)-1].Start.After(restarted)
	})
	_ = id
	// A foreground run, its monitor started ahead by the command's
	// constructor (a separate hull process), and never handing over.
	fg := "hc-foreground"
	_, done := startHull(t, root, append(append([]string{"run", "--name", fg}, flags...), fx.Busybox.Ref, "sleep", "1000")...)
	var fgID string
	waitFor(t, func() bool { fgID = containerID(t, root, fg); return fgID != "" })
	waitProber(fg)
	waitHealth(t, root, fg, func(h *health) bool { return h.Status == "healthy" })
	mustHull(t, root, "kill", fg)
	<-done
	gone(fg, fgID, "kill")
	// A container ending by itself (no restart) ends it too.
	short := "hc-exits"
	mustHull(t, root, append(append([]string{"run", "-d", "--name", short}, flags...),
		fx.Busybox.Ref, "sh", "-c", "until [ -e /tmp/stop ]; do sleep 0.1; done")...)
	sid, _ := waitProber(short)
	mustHull(t, root, "exec", short, "touch", "/tmp/stop")
	gone(short, sid, "its exit")
}

// A restart by the restart policy keeps the prober (its monitor goes on)
// and starts the new run's health from starting: with a start period
// that has not ended, failures then leave it starting, where the
// healthy status of the run before would have counted them.
func TestHealthAcrossPolicyRestarts(t *testing.T) {
	root, fx := containerEnv(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "50")
	c := "hc-policy"
	mustHull(t, root, "run", "-d", "--name", c, "--restart", "always",
		"--health-cmd", "test ! -e /tmp/second", "--health-interval", "1h", "--health-start-period", "1h",
		"--health-start-interval", "100ms", "--health-retries", "1",
		fx.Busybox.Ref, "sh", "-c", "if [ -e /tmp/first ]; then touch /tmp/second; exec sleep 1000; fi; touch /tmp/first; until [ -e /tmp/go ]; do sleep 0.1; done; exit 1")
	id := containerID(t, root, c)
	waitHealth(t, root, c, func(h *health) bool { return h.Status == "healthy" })
	probers := probersOf(root, id)
	if len(probers) != 1 {
		t.Fatalf("probers %v, want one", probers)
	}
	mustHull(t, root, "exec", c, "touch", "/tmp/go")
	h := waitHealth(t, root, c, func(h *health) bool {
		n := len(h.Log)
		return n >= 3 && h.Log[n-1].ExitCode != 0 && h.Log[n-2].ExitCode != 0 && h.Log[n-3].ExitCode != 0
	})
	if h.Status != "starting" || h.FailingStreak != 0 {
		t.Errorf("health of the restarted run: %+v", h)
	}
	if got := probersOf(root, id); !slices.Equal(got, probers) {
		t.Errorf("probers %v after the restart, want %v", got, probers)
	}
	mustHull(t, root, "stop", "-t", "1", c)
	deadline := time.Now().Add(30 * time.Second)
	for anyProberOf(root, id) {
		if time.Now().After(deadline) {
			t.Fatalf("prober still there 30s after stop:\n%s", proberReport(root, id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proberReport describes the processes of container id's prober left,
// and its monitor, for a failure.
func proberReport(root, id string) string {
	var b strings.Builder
	pids := hullProcs(root, func(_ int, args []string) bool {
		return slices.Contains(args, id) && (slices.Contains(args, "health") || slices.Contains(args, "monitor"))
	})
	seen := map[int]bool{}
	var describe func(pid int, depth int)
	describe = func(pid int, depth int) {
		if seen[pid] || depth > 4 {
			return
		}
		seen[pid] = true
		args, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		wchan, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
		stack, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stack")
		fmt.Fprintf(&b, "%spid %d ppid %d wchan %s: %.200s\n  stat %.60s\n  stack %s\n", strings.Repeat("  ", depth), pid, parentOf(pid), wchan,
			strings.ReplaceAll(string(args), "\x00", " "), stat, stack)
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if child, err := strconv.Atoi(e.Name()); err == nil && parentOf(child) == pid {
				describe(child, depth+1)
			}
		}
		for _, a := range strings.Split(string(args), "\x00") {
			if v, ok := strings.CutPrefix(a, "--pid="); ok {
				if cpid, err := strconv.Atoi(v); err == nil {
					describe(cpid, depth+1)
				}
			}
		}
	}
	for _, pid := range pids {
		describe(pid, 0)
	}
	if log, err := os.ReadFile(root + "/containers/" + id + "/container.log.monitor"); err == nil {
		fmt.Fprintf(&b, "monitor log:\n%s", log)
	}
	return b.String()
}

// commit keeps the container's check in the image, and -c HEALTHCHECK
// sets one, as docker's.
func TestCommitKeepsAndSetsHealthchecks(t *testing.T) {
	root, fx := containerEnv(t)
	runDetached(t, root, fx.Busybox.Ref, "hc-src", "--health-cmd", "echo kept", "--health-interval", "200ms")
	mustHull(t, root, "commit", "hc-src", "mine/kept:1")
	got := strings.TrimSpace(mustHull(t, root, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", "mine/kept:1"))
	if got != `{"Test":["CMD-SHELL","echo kept"],"Interval":200000000}` {
		t.Errorf("committed image's check: %s", got)
	}
	mustHull(t, root, "commit", "-c", "HEALTHCHECK --interval=200ms --retries=1 CMD [\"sh\", \"-c\", \"echo set; exit 2\"]", "hc-src", "mine/set:1")
	c := runDetached(t, root, "mine/set:1", "hc-set")
	h := waitHealth(t, root, c, func(h *health) bool { return h.Status == "unhealthy" })
	if r := h.Log[len(h.Log)-1]; r.ExitCode != 2 || r.Output != "set\n" {
		t.Errorf("the check -c set: %+v", r)
	}
	if _, _, err := hull(t, root, "commit", "-c", "HEALTHCHECK --start-interval=1s CMD true", "hc-src"); err == nil || !strings.Contains(err.Error(), "--health-start-interval") {
		t.Errorf("HEALTHCHECK --start-interval: %v", err)
	}
}

// rawConfigImage is an image with its config replaced by raw JSON, for
// fields go-containerregistry does not model (Healthcheck.StartInterval).
type rawConfigImage struct {
	v1.Image
	raw []byte
}

func (i rawConfigImage) RawConfigFile() ([]byte, error) { return i.raw, nil }

func (i rawConfigImage) ConfigName() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(i.raw))
	return h, err
}

func (i rawConfigImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.raw))
}

func (i rawConfigImage) Manifest() (*v1.Manifest, error) {
	m, err := i.Image.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	if m.Config.Digest, err = i.ConfigName(); err != nil {
		return nil, err
	}
	m.Config.Size = int64(len(i.raw))
	return m, nil
}

func (i rawConfigImage) RawManifest() ([]byte, error) {
	m, err := i.Manifest()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (i rawConfigImage) Digest() (v1.Hash, error) {
	b, err := i.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(b))
	return h, err
}

func (i rawConfigImage) Size() (int64, error) {
	b, err := i.RawManifest()
	return int64(len(b)), err
}

// The image's StartInterval (which go-containerregistry drops) applies:
// within the start period, probes come at it, not at the hour-long
// interval.
func TestImageHealthcheckStartInterval(t *testing.T) {
	root, fx := containerEnv(t)
	ref := pushHealthImage(t, fx.Busybox.Ref, "start-interval", map[string]any{
		"Test": []string{"CMD-SHELL", "exit 1"}, "Interval": time.Hour, "StartPeriod": time.Hour, "StartInterval": 100 * time.Millisecond,
	})
	c := runDetached(t, root, ref, "hc-start-interval")
	got := strings.TrimSpace(mustHull(t, root, "inspect", "--format", "{{json .Config.Healthcheck}}", c))
	if want := `{"Test":["CMD-SHELL","exit 1"],"Interval":3600000000000,"StartPeriod":3600000000000,"StartInterval":100000000}`; got != want {
		t.Errorf("the image's check %s, want %s", got, want)
	}
	h := waitHealth(t, root, c, func(h *health) bool { return len(h.Log) >= 2 })
	if h.Status != "starting" || h.FailingStreak != 0 {
		t.Errorf("health within the start period: %+v", h)
	}
}
