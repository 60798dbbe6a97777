package main

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
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
	wantRestored(t, root, "cki", out, last)
	mustHull(t, root, "rm", "-f", "cki")
}

// TestImageCheckpoint makes a checkpoint image from an exported
// checkpoint archive with hull image checkpoint (what kubelet's
// checkpoint API leaves, here hull container checkpoint -R -e's): the
// image carries the container's name in both annotations, and hull
// container restore IMAGE, once the container is gone, counts on from
// the checkpoint.
func TestImageCheckpoint(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "ckarch", "--network", "none", fx.Busybox.Ref, "sh", "-c", counterScript)
	waitFor(t, func() bool { return len(logNumbers(t, root, "ckarch")) >= 10 })
	archive := filepath.Join(t.TempDir(), "ckarch.tar")
	mustHull(t, root, "container", "checkpoint", "-R", "-e", archive, "ckarch")
	mustHull(t, root, "stop", "-t", "0", "ckarch")
	before := logNumbers(t, root, "ckarch")
	ref := "hull-test/ckarch-image:1"
	out := strings.TrimSpace(mustHull(t, root, "image", "checkpoint", archive, ref))
	if id := strings.TrimSpace(mustHull(t, root, "image", "inspect", "-f", "{{.Id}}", ref)); out != id {
		t.Errorf("hull image checkpoint printed %q; want the image ID %s", out, id)
	}
	for _, key := range []string{"io.kubernetes.cri-o.annotations.checkpoint.name", "io.podman.annotations.checkpoint.name"} {
		if got := strings.TrimSpace(mustHull(t, root, "image", "inspect", "-f", `{{index .Annotations "`+key+`"}}`, ref)); got != "ckarch" {
			t.Errorf("hull image inspect: annotation %s = %q; want ckarch", key, got)
		}
	}
	mustHull(t, root, "rm", "-f", "ckarch")
	mustHull(t, root, "container", "restore", ref)
	waitFor(t, func() bool { return len(logNumbers(t, root, "ckarch")) >= 5 })
	after := logNumbers(t, root, "ckarch")
	t.Logf("stopped at %d; restored from %d", before[len(before)-1], after[0])
	if after[0] < 9 || after[0] > before[len(before)-1]+2 {
		t.Errorf("the restored counter started at %d; checkpointed past 9, stopped at %d", after[0], before[len(before)-1])
	}
	mustHull(t, root, "rm", "-f", "ckarch")
}

// TestImageCheckpointRefusals: hull image checkpoint of a file that is
// not a checkpoint archive (a tar without config.dump, a file that is no
// tar at all), of a missing file, or to a name with a digest, fails
// saying why, and stores nothing.
func TestImageCheckpointRefusals(t *testing.T) {
	root, _ := containerEnv(t)
	dir := t.TempDir()
	notArchive := filepath.Join(dir, "other.tar")
	f, err := os.Create(notArchive)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "spec.dump", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("{}"))
	tw.Close()
	f.Close()
	notTar := filepath.Join(dir, "notes.txt")
	os.WriteFile(notTar, []byte(strings.Repeat("not a tar\n", 100)), 0o644)
	imagesBefore := mustHull(t, root, "images", "-a", "-q", "--no-trunc")
	for _, c := range []struct{ archive, name, want string }{
		{notArchive, "hull-test/bad-ckpt:1", "no config.dump: not a checkpoint archive"},
		{notTar, "hull-test/bad-ckpt:2", "is it a checkpoint archive?"},
		{filepath.Join(dir, "missing.tar"), "hull-test/bad-ckpt:3", "not found"},
		{notArchive, "hull-test/bad-ckpt@sha256:" + strings.Repeat("0", 64), "has a digest"},
	} {
		_, _, err := hull(t, root, "image", "checkpoint", c.archive, c.name)
		t.Logf("hull image checkpoint %s %s: %v", filepath.Base(c.archive), c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("hull image checkpoint %s %s: %v; want it refused with %q", c.archive, c.name, err, c.want)
		}
	}
	if after := mustHull(t, root, "images", "-a", "-q", "--no-trunc"); after != imagesBefore {
		t.Errorf("refused checkpoint images stored something: images before %q, after %q", imagesBefore, after)
	}
}
