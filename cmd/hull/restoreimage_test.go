package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"hull/internal/testenv"
)

// TestContainerRestoreImage checkpoints a counting container into a
// checkpoint image (hull container checkpoint --create-image), which
// hull image inspect shows annotated, pushes it and removes it and the
// container, then restores with hull container restore IMAGE: the image
// is pulled back and the new container counts on from where the
// checkpoint was taken. hull run of a checkpoint image is refused, and
// restore of a normal image says it is not a checkpoint image.
func TestContainerRestoreImage(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "cki", "--network", "none", fx.Busybox.Ref, "sh", "-c", counterScript)
	waitFor(t, func() bool { return len(logNumbers(t, root, "cki")) >= 10 })
	ref := fmt.Sprintf("%s/hull-test/cli-ckimg-%d:1", fx.Registry, time.Now().UnixNano())
	mustHull(t, root, "container", "checkpoint", "--create-image", ref, "cki")
	before := logNumbers(t, root, "cki")
	last := before[len(before)-1]
	for _, key := range []string{"io.kubernetes.cri-o.annotations.checkpoint.name", "io.podman.annotations.checkpoint.name"} {
		if got := strings.TrimSpace(mustHull(t, root, "image", "inspect", "-f", `{{index .Annotations "`+key+`"}}`, ref)); got != "cki" {
			t.Errorf("hull image inspect: annotation %s = %q; want cki", key, got)
		}
	}
	if _, _, err := hull(t, root, "run", "--rm", ref); err == nil || !strings.Contains(err.Error(), "is a checkpoint image") {
		t.Errorf("hull run of a checkpoint image: %v; want it refused as one", err)
	}
	if _, _, err := hull(t, root, "container", "restore", fx.Busybox.Ref); err == nil || !strings.Contains(err.Error(), "not a checkpoint image") {
		t.Errorf("hull container restore of a normal image: %v", err)
	}
	mustHull(t, root, "push", ref)
	mustHull(t, root, "rm", "-f", "cki")
	mustHull(t, root, "rmi", ref)

	out := mustHull(t, root, "container", "restore", ref)
	id := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if want := containerID(t, root, "cki"); id != want {
		t.Fatalf("restore printed %q; want the new container's ID %s", out, want)
	}
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "cki")); st != "running" {
		t.Fatalf("the restored container is %s, not running", st)
	}
	waitFor(t, func() bool { return len(logNumbers(t, root, "cki")) >= 5 })
	after := logNumbers(t, root, "cki")
	t.Logf("checkpointed at %d; restored from %d", last, after[0])
	if after[0] < last-2 || after[0] > last+2 {
		t.Errorf("the restored counter started at %d; the checkpointed one had reached %d", after[0], last)
	}
	if got := mustHull(t, root, "exec", "cki", "cat", "/state"); got != "before\n" {
		t.Errorf("/state in the restored container: %q", got)
	}
	mustHull(t, root, "rm", "-f", "cki")
}
