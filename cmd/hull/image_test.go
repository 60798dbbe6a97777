package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"hull/internal/testenv"
)

// TestMain lets the test binary act as hull itself (HULL_TEST_AS_CLI=1),
// so tests can run it as a separate process and kill it.
func TestMain(m *testing.M) {
	ociInitIfRequested()
	if os.Getenv("HULL_TEST_AS_CLI") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	// Processes hull spawns from tests (container monitors) re-execute
	// this binary: they must act as hull.
	os.Setenv("HULL_TEST_AS_CLI", "1")
	code := m.Run()
	removeStaticBuilds()
	os.Exit(code)
}

// hull runs the command tree in-process against root and returns stdout,
// stderr and the error.
func hull(t *testing.T, root string, args ...string) (string, string, error) {
	t.Helper()
	return hullStdin(t, root, nil, args...)
}

func mustHull(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, errOut, err := hull(t, root, args...)
	if err != nil {
		t.Fatalf("hull %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func TestCLIPullOutputLikeDocker(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	root := t.TempDir()
	out := mustHull(t, root, "pull", fx.Busybox.Ref)
	for _, want := range []string{"1.0: Pulling from " + fx.Busybox.Repo, ": Pull complete", "Digest: " + fx.Busybox.Digest,
		"Status: Downloaded newer image for " + fx.Busybox.Ref, "\n" + fx.Busybox.Ref + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	out = mustHull(t, root, "pull", fx.Busybox.Ref)
	if !strings.Contains(out, "Status: Image is up to date for "+fx.Busybox.Ref) || !strings.Contains(out, ": Already exists") {
		t.Errorf("re-pull output:\n%s", out)
	}
	if out := mustHull(t, root, "pull", "-q", fx.Busybox.Ref); out != fx.Busybox.Ref+"\n" {
		t.Errorf("pull -q printed %q", out)
	}
	// An implicit latest tag is warned about (on stderr) and noted.
	src, _ := name.ParseReference(fx.Busybox.Ref)
	dst, _ := name.ParseReference(reg.Ref("hull-test/busybox:latest"))
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := hull(t, root, "pull", reg.Ref("hull-test/busybox"))
	if err != nil || !strings.Contains(out, "Using default tag: latest") || !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "latest") {
		t.Errorf("implicit latest: err=%v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
}

func TestCLIImagesInspectHistoryRmi(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	root := t.TempDir()
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	mustHull(t, root, "pull", "-q", fx.Config.Ref)
	out := mustHull(t, root, "images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.Contains(lines[0], "IMAGE ID") || !strings.Contains(lines[0], "SIZE") {
		t.Fatalf("images table:\n%s", out)
	}
	id := strings.TrimPrefix(fx.Busybox.ConfigDigest, "sha256:")[:12]
	if !strings.Contains(out, id) {
		t.Errorf("images lacks ID %s:\n%s", id, out)
	}
	if out := mustHull(t, root, "images", "-q"); len(strings.Fields(out)) != 2 {
		t.Errorf("images -q: %q", out)
	}
	if out := mustHull(t, root, "images", "--digests"); !strings.Contains(out, "DIGEST") || !strings.Contains(out, fx.Busybox.Digest) {
		t.Errorf("images --digests:\n%s", out)
	}
	out = mustHull(t, root, "image", "ls", "--format", "json", "--filter", "reference=*/hull-test/config*")
	var row map[string]string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &row); err != nil || row["Tag"] != "1.0" || !strings.HasSuffix(row["Repository"], "hull-test/config") {
		t.Errorf("images --format json --filter: %q (%v)", out, err)
	}
	if out := mustHull(t, root, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "label=org.opencontainers.image.title=nothing"); out != "" {
		t.Errorf("label filter matched: %q", out)
	}
	// The seed: image inspect ... | grep -A 10 Layers
	out = mustHull(t, root, "image", "inspect", fx.Busybox.Ref)
	var docs []map[string]any
	if err := json.Unmarshal([]byte(out), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("inspect is not a JSON array: %v\n%s", err, out)
	}
	if docs[0]["Id"] != fx.Busybox.ConfigDigest || !strings.Contains(out, `"Layers": [`) || !strings.Contains(out, fx.Busybox.DiffIDs[0]) {
		t.Errorf("inspect:\n%s", out)
	}
	if out := mustHull(t, root, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", fx.Busybox.Ref); strings.TrimSpace(out) != "linux/amd64" {
		t.Errorf("inspect -f: %q", out)
	}
	out = mustHull(t, root, "image", "history", fx.Config.Ref)
	if !strings.HasPrefix(out, "IMAGE") || !strings.Contains(out, "CREATED BY") || !strings.Contains(out, "<missing>") {
		t.Errorf("history:\n%s", out)
	}
	mustHull(t, root, "tag", fx.Busybox.Ref, "mine/bb:v2")
	out = mustHull(t, root, "rmi", "mine/bb:v2")
	if strings.TrimSpace(out) != "Untagged: mine/bb:v2" {
		t.Errorf("rmi of an extra tag: %q", out)
	}
	out = mustHull(t, root, "rmi", fx.Config.Ref)
	if !strings.Contains(out, "Untagged: "+fx.Config.Ref) || !strings.Contains(out, "Deleted: "+fx.Config.ConfigDigest) {
		t.Errorf("rmi:\n%s", out)
	}
	if _, _, err := hull(t, root, "rmi", "no/such:image"); err == nil || !strings.Contains(err.Error(), "No such image") {
		t.Errorf("rmi of a missing image: %v", err)
	}
	out = mustHull(t, root, "info")
	if !strings.Contains(out, "Images:           1") || !strings.Contains(out, "Cgroup mode:") {
		t.Errorf("info:\n%s", out)
	}
}

func TestCLIBadInput(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"pull"}, "requires exactly 1 argument"},
		{[]string{"pull", "UPPER/case"}, "invalid reference format"},
		{[]string{"pull", "--no-such-flag", "x"}, "unknown flag"},
		{[]string{"pull", "--platform", "linux", "x"}, "os/arch"},
		{[]string{"images", "--filter", "color=red"}, "unknown key"},
		{[]string{"load", "-i", "/nonexistent.tar"}, "no such file"},
	} {
		_, _, err := hull(t, root, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("hull %v: %v, want an error saying %q", c.args, err, c.says)
		}
	}
	if code := run([]string{"--root", root, "pull", "127.0.0.1:1/x:1"}); code == 0 {
		t.Error("a failed pull exited 0")
	}
}

// kill -9 at any moment of a pull leaves no partial blob visible and no
// image recorded; the next pull reuses every completed blob.
func TestCLIKilledPullRecovers(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBig)
	root := t.TempDir()
	interrupted := 0
	for _, delay := range []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond} {
		cmd := exec.Command(os.Args[0], "--root", root, "--run-root", filepath.Join(root, "run"), "--config", testenv.NetworkConfig(t, root), "pull", "-q", fx.Big.Ref)
		cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once it is writing (or after the delay, whichever is later).
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ents, _ := os.ReadDir(filepath.Join(root, "images", "ingest"))
			if len(ents) > 1 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// Killed mid-pull: no image is recorded, and every visible blob
		// is whole.
		if mustHull(t, root, "images", "-q") == "" {
			interrupted++
		}
		blobs, _ := filepath.Glob(filepath.Join(root, "images", "blobs", "sha256", "*"))
		for _, b := range blobs {
			data, err := os.ReadFile(b)
			if sum := sha256.Sum256(data); err != nil || hex.EncodeToString(sum[:]) != filepath.Base(b) {
				t.Fatalf("partial or corrupt blob visible after kill -9: %s", b)
			}
		}
	}
	if interrupted == 0 {
		t.Fatal("every pull finished before its kill; no interrupted pull was tested")
	}
	// Whatever survived is verified; the next pull completes the image.
	out := mustHull(t, root, "pull", fx.Big.Ref)
	if !strings.Contains(out, "Status:") {
		t.Fatalf("pull after kills:\n%s", out)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "images", "ingest"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
	out = mustHull(t, root, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if strings.TrimSpace(out) != fx.Big.Ref {
		t.Fatalf("images after recovery: %q", out)
	}
}

func TestCLISaveLoadFiles(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusyboxOCI)
	root := t.TempDir()
	mustHull(t, root, "pull", "-q", fx.BusyboxOCI.Ref)
	archive := filepath.Join(t.TempDir(), "bb.tar")
	mustHull(t, root, "save", "--format", "oci-archive", "-o", archive, fx.BusyboxOCI.Ref)
	other := t.TempDir()
	out := mustHull(t, other, "load", "-i", archive)
	if strings.TrimSpace(out) != "Loaded image: "+fx.BusyboxOCI.Ref {
		t.Fatalf("load: %q", out)
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		// The store is a plain OCI layout other tools can read.
		cmd := exec.Command("skopeo", "inspect", "--raw", "oci:"+filepath.Join(other, "images")+":"+fx.BusyboxOCI.Ref)
		raw, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(raw), fx.BusyboxOCI.Layers[0]) {
			t.Errorf("skopeo cannot read the store: %v\n%s", err, raw)
		}
	}
}

// An image saved by its ID loads untagged (<none>:<none>), as docker's
// does, in both archive formats; saved by name it keeps just that name.
func TestCLISaveByIDLoadsUntagged(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	root := t.TempDir()
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	mustHull(t, root, "tag", fx.Busybox.Ref, "other/name:v1")
	id := strings.TrimSpace(mustHull(t, root, "images", "-q", fx.Busybox.Ref))
	for _, format := range []string{"docker-archive", "oci-archive"} {
		archive := filepath.Join(t.TempDir(), "bb.tar")
		mustHull(t, root, "save", "--format", format, "-o", archive, id)
		other := t.TempDir()
		mustHull(t, other, "load", "-i", archive)
		out := mustHull(t, other, "images", "--format", "{{.Repository}}:{{.Tag}}")
		if strings.TrimSpace(out) != "<none>:<none>" {
			t.Errorf("%s saved by ID loads as %q, want <none>:<none>", format, out)
		}
		mustHull(t, root, "save", "--format", format, "-o", archive, "other/name:v1")
		other = t.TempDir()
		mustHull(t, other, "load", "-i", archive)
		out = mustHull(t, other, "images", "--format", "{{.Repository}}:{{.Tag}}")
		if strings.TrimSpace(out) != "other/name:v1" {
			t.Errorf("%s saved by name loads as %q, want other/name:v1", format, out)
		}
	}
}

// `hull image mount` shows the merged view the layered image defines
// (whiteouts hide, opaque directories replace); unmount removes it.
func TestCLIImageMountShowsMergedView(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixLayered)
	root := t.TempDir()
	mustHull(t, root, "pull", "-q", fx.Layered.Ref)
	target := strings.TrimSpace(mustHull(t, root, "image", "mount", fx.Layered.Ref))
	t.Cleanup(func() { hull(t, root, "image", "unmount", fx.Layered.Ref) })
	if again := strings.TrimSpace(mustHull(t, root, "image", "mount", fx.Layered.Ref)); again != target {
		t.Errorf("second mount at %q, first at %q", again, target)
	}
	if err := testenv.CheckTree(target, testenv.LayeredMerged); err != nil {
		t.Errorf("merged view: %v", err)
	}
	mustHull(t, root, "image", "unmount", fx.Layered.Ref)
	if isMountPoint(target) {
		t.Fatalf("%s still mounted after unmount", target)
	}
}

// On a sized terminal, pull draws a bar per layer and every bar ends in its
// final state; the pull finishes (the bars once deadlocked it).
func TestCLIPullProgressBarsOnATerminal(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBig)
	root := t.TempDir()
	master, slave, err := testenv.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := hullProc(root, "pull", fx.Big.Ref)
	cmd.Stdout, cmd.Stderr = slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var screen safeBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&screen, master) // ends (EIO) once the pull has exited
		close(copied)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pull: %v\n%s", err, screen.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("pull with progress bars did not finish:\n%s", screen.String())
	}
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
	}
	out := screen.String()
	if !strings.Contains(out, "[===") || strings.Count(out, "Pull complete") < len(fx.Big.Layers) || !strings.Contains(out, "Status: Downloaded newer image") {
		t.Fatalf("terminal output:\n%s", out)
	}
}
