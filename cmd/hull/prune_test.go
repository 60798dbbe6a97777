package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// image prune: dangling images by default, every unused one with -a;
// docker's prompt, filters and report.
func TestImagePrune(t *testing.T) {
	root, fx := containerEnv(t)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(tarball, rootfsTar(t, "dangling"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(mustHull(t, root, "import", tarball))
	mustHull(t, root, "pull", fx.Busybox.Ref)

	out, _, err := hullStdin(t, root, strings.NewReader("n\n"), "image", "prune")
	if err != nil || out != "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] " {
		t.Errorf("image prune answered no: %q %v", out, err)
	}
	for _, f := range []string{"until=1h", "label=nosuch", "until=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)} {
		if out := mustHull(t, root, "image", "prune", "-f", "--filter", f); out != "Total reclaimed space: 0B\n" {
			t.Errorf("image prune --filter %s removed an image made just now:\n%s", f, out)
		}
	}
	out = mustHull(t, root, "image", "prune", "-f", "--filter", "label!=nosuch")
	if !strings.HasPrefix(out, "Deleted Images:\ndeleted: "+id+"\n\nTotal reclaimed space: ") || strings.Contains(out, "busybox") {
		t.Errorf("image prune -f:\n%s", out)
	}
	// -a: every image no container uses; a container keeps its image.
	mustHull(t, root, "create", "--name", "user", fx.Busybox.Ref)
	if out := mustHull(t, root, "image", "prune", "-a", "-f"); strings.Contains(out, "Deleted") {
		t.Errorf("image prune -a removed an image a container uses:\n%s", out)
	}
	mustHull(t, root, "rm", "user")
	future := fmt.Sprint(time.Now().Add(time.Minute).Unix())
	out, _, _ = hullStdin(t, root, strings.NewReader("y\n"), "image", "prune", "-a", "--filter", "until="+future)
	if !strings.HasPrefix(out, "WARNING! This will remove all images without at least one container associated to them.\n") ||
		!strings.Contains(out, "untagged: "+fx.Busybox.Ref) || !strings.Contains(out, "Total reclaimed space: ") {
		t.Errorf("image prune -a:\n%s", out)
	}
	if out := mustHull(t, root, "images", "-q"); out != "" {
		t.Errorf("images left: %q", out)
	}
	if _, _, err := hull(t, root, "image", "prune", "-f", "--filter", "until=soon"); err == nil || !strings.Contains(err.Error(), "not a time") {
		t.Errorf("until=soon: %v", err)
	}
	if _, _, err := hull(t, root, "image", "prune", "-f", "--filter", "color=red"); err == nil || !strings.Contains(err.Error(), "invalid filter 'color'") {
		t.Errorf("color=red: %v", err)
	}
}

// Container and volume prune filters, system prune --volumes and its
// prompt.
func TestPruneFilters(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "--name", "old", "--label", "tier=web", fx.Busybox.Ref, "true")
	mustHull(t, root, "run", "--name", "other", "--label", "tier=db", fx.Busybox.Ref, "true")
	// label= keeps to what has the label; until= in unix seconds.
	future := fmt.Sprint(time.Now().Add(time.Minute).Unix())
	out := mustHull(t, root, "container", "prune", "-f", "--filter", "label=tier=web", "--filter", "until="+future)
	if !strings.HasPrefix(out, "Deleted Containers:\n") || strings.Count(out, "\n") != 4 {
		t.Errorf("container prune --filter label=tier=web:\n%s", out)
	}
	if ps := mustHull(t, root, "ps", "-a", "--format", "{{.Names}}"); ps != "other\n" {
		t.Errorf("after prune: %q", ps)
	}
	if _, _, err := hull(t, root, "container", "prune", "-f", "--filter", "until=1h", "--filter", "until=2h"); err == nil || !strings.Contains(err.Error(), "more than one until") {
		t.Errorf("two until filters: %v", err)
	}

	// Volumes: label filters, no until (docker's).
	mustHull(t, root, "volume", "create", "--label", "keep=yes", "kept")
	mustHull(t, root, "volume", "create", "gone")
	out = mustHull(t, root, "volume", "prune", "-a", "-f", "--filter", "label!=keep=yes")
	if !strings.HasPrefix(out, "Deleted Volumes:\ngone\n\n") {
		t.Errorf("volume prune --filter label!=keep=yes:\n%s", out)
	}
	if _, _, err := hull(t, root, "volume", "prune", "-f", "--filter", "until=1h"); err == nil || !strings.Contains(err.Error(), "invalid filter 'until'") {
		t.Errorf("volume prune until=: %v", err)
	}

	// system prune: docker's prompt, with the filters; --volumes takes
	// the anonymous volumes no container uses.
	mustHull(t, root, "run", "--name", "anon", "-v", "/scratch", fx.Busybox.Ref, "true")
	out, _, _ = hullStdin(t, root, strings.NewReader("n\n"), "system", "prune", "--volumes", "--filter", "label=b", "--filter", "label=a")
	want := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all dangling images\n" +
		"  - all unpacked layers no image or container uses\n  - all unreferenced blobs\n\n" +
		"  Items to be pruned will be filtered with:\n  - label=a\n  - label=b\n\nAre you sure you want to continue? [y/N] "
	if out != want {
		t.Errorf("system prune prompt:\n%q\nwant\n%q", out, want)
	}
	if _, _, err := hull(t, root, "system", "prune", "-f", "--volumes", "--filter", "until=1h"); err == nil || !strings.Contains(err.Error(), `"until" filter is not supported with "--volumes"`) {
		t.Errorf("system prune --volumes until=: %v", err)
	}
	out = mustHull(t, root, "system", "prune", "-f", "--volumes")
	if !strings.Contains(out, "Deleted Containers:\n") || !strings.Contains(out, "Deleted Volumes:\n") || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("system prune --volumes:\n%s", out)
	}
	if vols := mustHull(t, root, "volume", "ls", "-q"); vols != "kept\n" {
		t.Errorf("volumes after system prune --volumes: %q", vols)
	}
}
