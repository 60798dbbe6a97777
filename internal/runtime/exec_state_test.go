package runtime

import (
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestExecInStoppedContainer: an exec into a container whose process has
// ended is a FailedPrecondition (the CRI answers it with that code: kubelet's
// probes exec into containers that are ending), not an unclassed error.
func TestExecInStoppedContainer(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	e.mustHull("create", "--bundle", newBundle(t, []string{"true"}, nil), id)
	e.mustHull("start", id)
	for deadline := time.Now().Add(10 * time.Second); e.state(id).Status != specs.StateStopped; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not stop: %s", id, e.state(id).Status)
		}
	}
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	_, err := r.Exec(id, &specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin"}}, ExecOptions{})
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("exec in a stopped container: %v (%T), want FailedPrecondition", err, err)
	}
}
