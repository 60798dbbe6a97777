package engine

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// newTestView is a view over e, closed at the end of the test.
func newTestView(t *testing.T, e *Engine) *View {
	t.Helper()
	v, err := e.NewView(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// A view answers with what was last committed, whoever committed it:
// this process, or another one (a monitor recording an exit, the CLI),
// here another connection to the same database, as another process has.
func TestViewSeesEveryCommit(t *testing.T) {
	e, c := createdTestContainer(t, "viewed")
	ctx := context.Background()
	other := openTestEngineAt(t, e.cfg.Root) // another process's connections
	v := newTestView(t, e)

	got, err := v.Container(ctx, c.Name)
	if err != nil || got.State != StateCreated {
		t.Fatalf("view: %+v, %v; want the created container", got, err)
	}
	// Another process records an exit.
	if err := other.update(ctx, c.ID, map[string]any{"state": StateExited, "exit_code": 3, "finished": time.Now().UnixNano()}); err != nil {
		t.Fatal(err)
	}
	got, err = v.Container(ctx, c.ID[:6])
	if err != nil || got.State != StateExited || got.ExitCode != 3 {
		t.Fatalf("after another process recorded the exit: %+v, %v; want exited with 3", got, err)
	}
	// This process changes it back (its own pool's commits count too).
	if err := e.update(ctx, c.ID, map[string]any{"exit_code": 4}); err != nil {
		t.Fatal(err)
	}
	if got, err = v.Container(ctx, c.ID); err != nil || got.ExitCode != 4 {
		t.Fatalf("after this process's update: %+v, %v; want exit code 4", got, err)
	}
	// A container another process makes is listed; one it removes is gone.
	c2 := &Container{ID: "fedcba987654", Name: "second", Image: "busybox", Created: time.Now(), State: StateCreated, Stage: StageCreate}
	c2.Config.Pod = "somepod"
	if err := other.insert(ctx, c2); err != nil {
		t.Fatal(err)
	}
	cs, err := v.Containers(ctx)
	if err != nil || len(cs) != 2 || cs[0].ID != c2.ID || cs[1].ID != c.ID {
		t.Fatalf("Containers = %v, %v; want the new one first, then the first", ids(cs), err)
	}
	if cs, err := v.PodContainers(ctx, "somepod"); err != nil || len(cs) != 1 || cs[0].ID != c2.ID {
		t.Fatalf("PodContainers = %v, %v; want the second only", ids(cs), err)
	}
	if _, err := other.db.ExecContext(ctx, `DELETE FROM containers WHERE id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Container(ctx, c.ID); !IsNotFound(err) {
		t.Fatalf("a container another process removed: %v; want not found", err)
	}
	if _, err := v.Container(ctx, "f"); err != nil {
		t.Fatalf("a unique prefix: %v", err)
	}
	if _, err := v.Container(ctx, "nosuch"); !IsNotFound(err) {
		t.Fatalf("an unknown name: %v; want not found", err)
	}
}

func ids(cs []*Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// A running container whose monitor dies without recording anything (no
// commit for the view to see) is reported exited, as Get reports it: the
// view watches the monitor.
func TestViewNoticesADeadMonitor(t *testing.T) {
	e, c := createdTestContainer(t, "watched")
	ctx := context.Background()
	mon := exec.Command("sleep", "60")
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Process.Kill(); mon.Wait() })
	pid := mon.Process.Pid
	if err := e.update(ctx, c.ID, map[string]any{"state": StateRunning, "stage": StageRunning, "started": time.Now().UnixNano(),
		"monitor_pid": pid, "monitor_start": procStart(pid)}); err != nil {
		t.Fatal(err)
	}
	v := newTestView(t, e)
	for range 2 { // loaded, then from memory
		if got, err := v.Container(ctx, c.ID); err != nil || got.State != StateRunning {
			t.Fatalf("with its monitor alive: %+v, %v; want running", got, err)
		}
	}
	mon.Process.Kill()
	mon.Wait()
	got, err := v.Container(ctx, c.ID)
	if err != nil || got.State != StateExited || got.ExitCode != 255 || !strings.Contains(got.Error, "monitor") {
		t.Fatalf("after its monitor died: state %s, exit %d, error %q, %v; want exited, 255, the monitor's death", got.State, got.ExitCode, got.Error, err)
	}
	// Recorded, as Get records it.
	if rec, err := e.Get(ctx, c.ID); err != nil || rec.State != StateExited || rec.Error != got.Error {
		t.Fatalf("the record: %+v, %v; want the view's exit", rec, err)
	}
}

// Pods: another process's changes show; prefixes and names resolve as
// GetPod resolves them.
func TestViewPods(t *testing.T) {
	e := openTestEngine(t)
	other := openTestEngineAt(t, e.cfg.Root)
	ctx := context.Background()
	v := newTestView(t, e)
	if ps, err := v.Pods(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("Pods = %v, %v; want none", ps, err)
	}
	p, err := other.CreatePod(ctx, "web", PodConfig{Network: NetworkNone, Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Pod(ctx, "web")
	if err != nil || got.ID != p.ID || got.State != PodCreated || got.Config.Labels["a"] != "b" {
		t.Fatalf("Pod(web) = %+v, %v; want the new pod", got, err)
	}
	if err := other.setPodState(ctx, p, PodExited); err != nil {
		t.Fatal(err)
	}
	if got, err = v.Pod(ctx, p.ID[:8]); err != nil || got.State != PodExited {
		t.Fatalf("after another process changed its state: %+v, %v; want exited", got, err)
	}
	if _, err := other.db.ExecContext(ctx, `DELETE FROM pods WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Pod(ctx, "web"); !errdefs.IsNotFound(err) {
		t.Fatalf("a removed pod: %v; want not found", err)
	}
}

// A look-up by whole ID reads that one row when something changed; the
// lists read every row at their next call all the same.
func TestViewWholeIDs(t *testing.T) {
	e := openTestEngine(t)
	other := openTestEngineAt(t, e.cfg.Root)
	ctx := context.Background()
	v := newTestView(t, e)
	c := &Container{ID: NewID(), Name: "whole", Image: "busybox", Created: time.Now(), State: StateCreated, Stage: StageCreate}
	if err := e.insert(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Unknown to the view when asked by ID: read.
	if got, err := v.Container(ctx, c.ID); err != nil || got.Name != "whole" {
		t.Fatalf("Container(new ID) = %+v, %v", got, err)
	}
	if err := other.update(ctx, c.ID, map[string]any{"state": StateExited, "exit_code": 9}); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Container(ctx, c.ID); err != nil || got.ExitCode != 9 {
		t.Fatalf("Container(ID) after another process's update = %+v, %v; want exit code 9", got, err)
	}
	c2 := &Container{ID: NewID(), Name: "later", Image: "busybox", Created: time.Now(), State: StateCreated, Stage: StageCreate}
	if err := other.insert(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Container(ctx, c2.ID); err != nil || got.Name != "later" {
		t.Fatalf("Container(another process's new ID) = %+v, %v", got, err)
	}
	cs, err := v.Containers(ctx)
	if err != nil || len(cs) != 2 || cs[0].ID != c2.ID || cs[1].ExitCode != 9 {
		t.Fatalf("Containers = %v, %v; want both, the newest first, the first exited 9", ids(cs), err)
	}
	if _, err := other.db.ExecContext(ctx, `DELETE FROM containers WHERE id = ?`, c2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Container(ctx, c2.ID); !IsNotFound(err) {
		t.Fatalf("Container(removed ID): %v; want not found", err)
	}
	if cs, err := v.Containers(ctx); err != nil || len(cs) != 1 || cs[0].ID != c.ID {
		t.Fatalf("Containers after the removal = %v, %v; want the first only", ids(cs), err)
	}

	p, err := other.CreatePod(ctx, "pod", PodConfig{Network: NetworkNone})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Pod(ctx, p.ID); err != nil || got.Name != "pod" || got.State != PodCreated {
		t.Fatalf("Pod(new ID) = %+v, %v", got, err)
	}
	if err := other.setPodState(ctx, p, PodExited); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Pod(ctx, p.ID); err != nil || got.State != PodExited {
		t.Fatalf("Pod(ID) after another process's change = %+v, %v; want exited", got, err)
	}
	if ps, err := v.Pods(ctx); err != nil || len(ps) != 1 || ps[0].State != PodExited {
		t.Fatalf("Pods = %v, %v; want the pod, exited", ps, err)
	}
}
