package faults

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"hull/internal/testenv"
)

// TestChurn runs HULL_STRESS_N (default 1000) containers through a mix of
// lifecycles, HULL_STRESS_WORKERS (default 4) at a time, and then counts
// what is left once all are removed: leaks that one scenario is too short
// to show (a slow accumulation, a race between concurrent commands). Only
// with HULL_STRESS=1 (make stress): it takes minutes.
func TestChurn(t *testing.T) {
	if os.Getenv("HULL_STRESS") == "" {
		t.Skip("HULL_STRESS=1 runs the churn test (make stress)")
	}
	n, workers := envInt("HULL_STRESS_N", 1000), envInt("HULL_STRESS_WORKERS", 4)
	h, image := churnHarness(t)

	fails := &failures{t: t}
	fail := fails.add
	// step runs one command of a lifecycle and checks its status.
	step := func(want int, args ...string) bool {
		r := h.hull(nil, args...)
		if r.code != want || r.err != nil {
			fail("hull %s: %s, want exit %d", strings.Join(args, " "), r, want)
			return false
		}
		return true
	}
	parallel(n, workers, func(i int) {
		name := fmt.Sprintf("churn%d", i)
		run := []string{"--name", name, "-e", h.token, image}
		switch i % 4 {
		case 0:
			step(3, append(append([]string{"run", "--rm"}, run...), "sh", "-c", "exit 3")...)
		case 1:
			if step(0, append(append([]string{"run", "-d"}, run...), sleeper...)...) {
				step(0, "rm", "-f", name)
			}
		case 2:
			if step(0, append(append([]string{"create"}, run...), stoppable...)...) &&
				step(0, "start", name) && step(0, "stop", name) {
				step(0, "rm", name)
			}
		case 3:
			if step(0, append(append([]string{"run", "-d"}, run...), sleeper...)...) {
				step(4, "exec", name, "sh", "-c", "exit 4")
				step(0, "rm", "-f", name)
			}
		}
	})

	h.removeAll()
	left := h.waitLeaks()
	for _, l := range left {
		t.Errorf("LEAKED: %s", l)
	}
	checked := "system check: not in this build"
	if systemCheck {
		r := h.hull(nil, "system", "check")
		checked = "system check: clean"
		if r.code != 0 {
			checked = fmt.Sprintf("system check: %d findings", len(strings.Split(strings.TrimSpace(r.out), "\n")))
			t.Errorf("system check: %s", r)
		}
	}
	summary := fmt.Sprintf("churn: %d containers (%d at a time): %d failed commands, %d leaks, %s", n, workers, fails.count(), len(left), checked)
	t.Log(summary)
	fmt.Println(summary)
}

// churnHarness is a churn test's harness, with the busybox image pulled
// and no trace file (thousands of commands).
func churnHarness(t *testing.T) (*harness, string) {
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	image := fx.Busybox.Ref
	h := newHarness(t, &tally{}, image, imageSnapshots(t, image))
	h.trace = ""
	if _, ok := h.must("pull", "-q", image); !ok {
		t.FailNow()
	}
	return h, image
}

// failures counts a churn's failed commands, the first 20 reported.
type failures struct {
	t  testing.TB
	mu sync.Mutex
	n  int
}

func (f *failures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n <= 20 {
		f.t.Errorf(format, args...)
	}
}

func (f *failures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// parallel runs job(0) to job(n-1), workers at a time.
func parallel(n, workers int, job func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				job(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
		return n
	}
	return def
}
