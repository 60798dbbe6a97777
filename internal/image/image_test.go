package image_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"hull/internal/config"
	"hull/internal/image"
	"hull/internal/metadata"
	"hull/internal/snapshot"
	"hull/internal/testenv"
)

// newService opens a service over a fresh root, with the overlay
// snapshotter attached, as the CLI does.
func newService(t *testing.T, root string) *image.Service {
	t.Helper()
	return newServiceWith(t, root, snapshot.Overlay)
}

// testConfig is the configuration newServiceWith opens a service over
// root with: the defaults, hull's state and credentials under root, then
// tune's changes. A test that also dials (image.Dial) passes it the same.
func testConfig(root string, tune ...func(*config.Config)) config.Config {
	cfg := config.Default()
	cfg.Root = root
	cfg.RunRoot = filepath.Join(root, "run")
	cfg.Registries.AuthFile = filepath.Join(root, "auth.json")
	for _, f := range tune {
		f(&cfg)
	}
	return cfg
}

// newServiceWith is newService with another snapshotter and, if given,
// settings changed by tune (testConfig).
func newServiceWith(t *testing.T, root, driver string, tune ...func(*config.Config)) *image.Service {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	cfg := testConfig(root, tune...)
	db, err := metadata.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := image.Open(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := snapshot.Open(db, root, snapshot.Options{Driver: driver})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetUnpacker(snap)
	return svc
}

var ctx = context.Background()

// verifyStore checks every visible blob hashes to its name: nothing partial.
func verifyStore(t *testing.T, svc *image.Service) {
	t.Helper()
	blobs, err := svc.Store().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		f, err := svc.Store().Open(b.Digest)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		if hex.EncodeToString(h.Sum(nil)) != b.Digest.Hex {
			t.Errorf("blob %s does not match its digest", b.Digest)
		}
	}
}

func TestPullEveryFixture(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixBusyboxOCI, testenv.FixBusyboxZstd, testenv.FixLayered, testenv.FixConfig, testenv.FixMultiDocker)
	svc := newService(t, "")
	for _, want := range []testenv.Image{fx.Busybox, fx.BusyboxOCI, fx.BusyboxZstd, fx.Layered, fx.Config} {
		res, err := svc.Pull(ctx, want.Ref, image.PullOptions{})
		if err != nil {
			t.Fatalf("pull %s: %v", want.Ref, err)
		}
		if res.Manifest.String() != want.Digest || res.ConfigID.String() != want.ConfigDigest || res.UpToDate {
			t.Errorf("pull %s: got manifest %s config %s uptodate=%v, want %s %s", want.Ref, res.Manifest, res.ConfigID, res.UpToDate, want.Digest, want.ConfigDigest)
		}
		r, err := svc.Resolve(ctx, want.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if r.MediaType != want.MediaType {
			t.Errorf("%s: media type %s, want %s", want.Ref, r.MediaType, want.MediaType)
		}
		doc, err := svc.Inspect(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(doc.RootFS.Layers, ",") != strings.Join(want.DiffIDs, ",") {
			t.Errorf("%s: RootFS.Layers %v, want %v", want.Ref, doc.RootFS.Layers, want.DiffIDs)
		}
	}
	// A re-pull finds everything present.
	res, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{})
	if err != nil || !res.UpToDate {
		t.Fatalf("re-pull: uptodate=%v err=%v", res != nil && res.UpToDate, err)
	}
	// The config fixture's settings survive into inspect.
	r, _ := svc.Resolve(ctx, fx.Config.Ref)
	doc, _ := svc.Inspect(ctx, r)
	if doc.Config.User != "app" || doc.Config.WorkingDir != "/home/app" || strings.Join(doc.Config.Entrypoint, " ") != "/bin/sh -c" {
		t.Errorf("config fixture inspect: %+v", doc.Config)
	}
	// Busybox and layered share their base layer: stored once, shared by both.
	bb, _ := svc.Resolve(ctx, fx.Busybox.Ref)
	bdoc, _ := svc.Inspect(ctx, bb)
	if bdoc.LayerDetails[0].SharedBy < 2 {
		t.Errorf("base layer SharedBy = %d, want >= 2", bdoc.LayerDetails[0].SharedBy)
	}
	verifyStore(t, svc)
}

func TestPullMultiPlatform(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixMulti)
	for _, plat := range testenv.MultiPlatforms {
		svc := newService(t, "")
		p, err := image.ParsePlatform(plat)
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Pull(ctx, fx.Multi.Ref, image.PullOptions{Platform: p, PlatformExplicit: true})
		if err != nil {
			t.Fatalf("pull %s for %s: %v", fx.Multi.Ref, plat, err)
		}
		want, _ := fx.Multi.For(plat)
		if res.Manifest.String() != want.Digest {
			t.Errorf("%s: got manifest %s, want %s", plat, res.Manifest, want.Digest)
		}
		if res.RepoDigest.String() != fx.Multi.Digest {
			t.Errorf("%s: repo digest %s, want the index %s", plat, res.RepoDigest, fx.Multi.Digest)
		}
	}
	svc := newService(t, "")
	_, err := svc.Pull(ctx, fx.Multi.Ref, image.PullOptions{Platform: image.Platform{OS: "linux", Architecture: "s390x"}})
	if !image.IsKind(err, image.ErrNoPlatform) {
		t.Fatalf("want no-platform error, got %v", err)
	}
	for _, p := range testenv.MultiPlatforms {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error should list %s: %v", p, err)
		}
	}
}

func TestPullByDigest(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	svc := newService(t, "")
	res, err := svc.Pull(ctx, fx.Busybox.ByDigest(), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.String() != fx.Busybox.Digest {
		t.Fatalf("got %s", res.Manifest)
	}
	recs, _ := svc.List(ctx)
	if len(recs) != 1 || len(recs[0].Names) != 0 || len(recs[0].RepoDigests) != 1 {
		t.Fatalf("digest pull should record no tag and one repo digest: %+v", recs)
	}
	// name:tag@digest pulls by the digest.
	tagged := fx.Busybox.Repo + ":nonexistent-tag@" + fx.Busybox.Digest
	if _, err := svc.Pull(ctx, tagged, image.PullOptions{}); err != nil {
		t.Fatalf("pull %s: %v", tagged, err)
	}
	if _, err := svc.Resolve(ctx, fx.Busybox.ByDigest()); err != nil {
		t.Fatal(err)
	}
}

func TestPullErrors(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	svc := newService(t, "")
	cases := []struct {
		ref  string
		kind image.ErrorKind
		says string
	}{
		{"Not/Valid::ref", image.ErrInvalidReference, "invalid reference format"},
		{"127.0.0.1:1/x/y:1", image.ErrUnreachable, "check the address"},
		{reg.Ref("hull-test/busybox:no-such-tag"), image.ErrNotFound, `tag "no-such-tag" does not exist`},
		{reg.Ref("hull-test/nothing-here:1"), image.ErrNotFound, "does not exist"},
		{fx.Busybox.Repo + "@sha256:" + strings.Repeat("0", 64), image.ErrNotFound, "does not exist"},
	}
	for _, c := range cases {
		_, err := svc.Pull(ctx, c.ref, image.PullOptions{})
		if !image.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("pull %s: got %v, want %s mentioning %q", c.ref, err, c.kind, c.says)
		}
	}
	recs, _ := svc.List(ctx)
	if len(recs) != 0 {
		t.Fatalf("failed pulls recorded images: %v", recs)
	}
}

func TestPullUnauthorizedThenLogin(t *testing.T) {
	reg := testenv.NewAuthRegistry(t, "alice", "s3cret")
	fx := testenv.PushFixturesT(t, reg, testenv.FixBusybox)
	root := t.TempDir()
	svc := newService(t, root)
	_, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{})
	if !image.IsKind(err, image.ErrUnauthorized) || !strings.Contains(err.Error(), "hull login "+reg.Addr) {
		t.Fatalf("want unauthorized with a login hint, got %v", err)
	}
	if err := svc.Login(ctx, reg.Addr, "alice", "wrong"); !image.IsKind(err, image.ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "auth.json")); err == nil {
		t.Fatal("a failed login stored credentials")
	}
	if err := svc.Login(ctx, reg.Addr, "alice", "s3cret"); err != nil {
		t.Fatalf("login: %v", err)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	data, _ := os.ReadFile(filepath.Join(root, "auth.json"))
	if err := json.Unmarshal(data, &cfg); err != nil || cfg.Auths[reg.Addr].Auth == "" {
		t.Fatalf("credentials not in Docker config.json format: %s", data)
	}
	if _, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{}); err != nil {
		t.Fatalf("pull after login: %v", err)
	}
	if ok, err := svc.Logout(reg.Addr); !ok || err != nil {
		t.Fatalf("logout: %v %v", ok, err)
	}
	if _, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{}); !image.IsKind(err, image.ErrUnauthorized) {
		t.Fatalf("pull after logout: want unauthorized, got %v", err)
	}
}

// A registry serving tampered content: the pull fails naming the blob, and
// nothing unverified becomes visible.
func TestPullDigestMismatch(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	layer := fx.Busybox.Layers[0]
	hexPart := strings.TrimPrefix(layer, "sha256:")
	data := filepath.Join(reg.Dir, "data", "docker", "registry", "v2", "blobs", "sha256", hexPart[:2], hexPart, "data")
	content, err := os.ReadFile(data)
	if err != nil {
		t.Fatalf("registry blob: %v", err)
	}
	content[len(content)/2] ^= 0xff
	if err := os.WriteFile(data, content, 0o644); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, "")
	_, err = svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{})
	if !image.IsKind(err, image.ErrDigestMismatch) || !strings.Contains(err.Error(), layer) {
		t.Fatalf("want digest mismatch naming %s, got %v", layer, err)
	}
	if d, _ := v1.NewHash(layer); svc.Store().Has(d) {
		t.Fatal("tampered blob became visible")
	}
	verifyStore(t, svc)
	recs, _ := svc.List(ctx)
	if len(recs) != 0 {
		t.Fatal("image recorded despite a corrupt layer")
	}
}

func TestPullUnsupportedMediaType(t *testing.T) {
	reg := testenv.NewRegistry(t)
	// An artifact (a Helm-chart-like config) is not a runnable image.
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, "application/vnd.cncf.helm.config.v1+json")
	art, err := mutate.AppendLayers(art, static.NewLayer([]byte("chart"), "application/vnd.cncf.helm.chart.content.v1.tar+gzip"))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(reg.Ref("hull-test/chart:1"))
	if err := remote.Write(ref, art); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, "")
	_, err = svc.Pull(ctx, ref.String(), image.PullOptions{})
	if !image.IsKind(err, image.ErrUnsupported) {
		t.Fatalf("want unsupported media type, got %v", err)
	}
}

func TestPullDiskFull(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBig)
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	svc := newService(t, root)
	_, err := svc.Pull(ctx, fx.Big.Ref, image.PullOptions{})
	if !image.IsKind(err, image.ErrDiskFull) || !strings.Contains(err.Error(), "free space") {
		t.Fatalf("want disk-full error, got %v", err)
	}
	verifyStore(t, svc)
	recs, _ := svc.List(ctx)
	if len(recs) != 0 {
		t.Fatal("image recorded on a full disk")
	}
}

// Tags are mutable: a re-pull that finds the tag moved says so.
func TestTagMoveIsReported(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	moving := reg.Ref("hull-test/moving:1.2")
	copyTag := func(src string) {
		s, _ := name.ParseReference(src)
		d, _ := name.ParseReference(moving)
		img, err := remote.Image(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(d, img); err != nil {
			t.Fatal(err)
		}
	}
	copyTag(fx.Busybox.Ref)
	svc := newService(t, "")
	if res, err := svc.Pull(ctx, moving, image.PullOptions{}); err != nil || res.Moved != nil {
		t.Fatalf("first pull: %v %+v", err, res)
	}
	copyTag(fx.Config.Ref)
	res, err := svc.Pull(ctx, moving, image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved == nil || res.Moved.From.String() != fx.Busybox.Digest || res.Moved.To.String() != fx.Config.Digest {
		t.Fatalf("tag move not reported: %+v", res.Moved)
	}
}

// Two pulls of one image at once (separate databases handles and stores, as
// separate processes) both succeed and store each blob once.
func TestConcurrentPulls(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBig)
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		svc := newService(t, root)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = svc.Pull(ctx, fx.Big.Ref, image.PullOptions{})
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	svc := newService(t, root)
	verifyStore(t, svc)
	blobs, _ := svc.Store().List()
	if want := len(fx.Big.Layers) + 2; len(blobs) != want {
		t.Fatalf("%d blobs stored, want %d (layers + config + manifest)", len(blobs), want)
	}
}

func TestTagAndRemoveLikeDocker(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixLayered)
	svc := newService(t, "")
	for _, r := range []string{fx.Busybox.Ref, fx.Layered.Ref} {
		if _, err := svc.Pull(ctx, r, image.PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Tag(ctx, fx.Busybox.Ref, "example.com/team/bb:v1"); err != nil {
		t.Fatal(err)
	}
	bb, _ := svc.Resolve(ctx, "example.com/team/bb:v1")
	if bb == nil || bb.Digest.String() != fx.Busybox.Digest {
		t.Fatal("tag does not resolve to the source image")
	}
	// By ID with two repositories naming it: refused without force.
	if _, err := svc.Remove(ctx, bb.ConfigID.Hex[:12], false); err == nil || !strings.Contains(err.Error(), "must be forced") {
		t.Fatalf("remove by ID with two names: %v", err)
	}
	// By name: only untagged.
	res, err := svc.Remove(ctx, "example.com/team/bb:v1", false)
	if err != nil || len(res.Deleted) != 0 || len(res.Untagged) != 1 {
		t.Fatalf("untag: %+v %v", res, err)
	}
	// Deleting layered keeps the base layer busybox still uses.
	lay, _ := svc.Resolve(ctx, fx.Layered.Ref)
	res, err = svc.Remove(ctx, fx.Layered.Ref, false)
	if err != nil || len(res.Deleted) == 0 || res.Deleted[0] != lay.ConfigID.String() {
		t.Fatalf("delete layered: %+v %v", res, err)
	}
	for _, l := range fx.Busybox.Layers {
		d, _ := v1.NewHash(l)
		if !svc.Store().Has(d) {
			t.Fatalf("shared layer %s deleted", l)
		}
	}
	for _, l := range fx.Layered.Layers[1:] {
		d, _ := v1.NewHash(l)
		if svc.Store().Has(d) {
			t.Errorf("layered's own layer %s kept after delete", l)
		}
	}
	if _, err := svc.Resolve(ctx, fx.Layered.Ref); !errors.As(err, new(*image.NotFoundError)) {
		t.Fatalf("layered still resolves: %v", err)
	}
	if _, err := svc.Remove(ctx, "nope:1", false); err == nil || !strings.Contains(err.Error(), "No such image") {
		t.Fatalf("remove of a missing image: %v", err)
	}
}

func TestPushThenPullElsewhere(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixLayered)
	svc := newService(t, "")
	if _, err := svc.Pull(ctx, fx.Layered.Ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	target := reg.Ref("pushed/layered:copy")
	if err := svc.Tag(ctx, fx.Layered.Ref, target); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Push(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest.String() != fx.Layered.Digest {
		t.Fatalf("pushed digest %s, want %s", res.Digest, fx.Layered.Digest)
	}
	other := newService(t, "")
	got, err := other.Pull(ctx, target, image.PullOptions{})
	if err != nil || got.Manifest.String() != fx.Layered.Digest {
		t.Fatalf("pull of pushed image: %v %+v", err, got)
	}
	if _, err := svc.Push(ctx, reg.Ref("never/tagged:1"), nil); err == nil {
		t.Fatal("push of an image that is not stored succeeded")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	svc := newService(t, "")
	for _, r := range []string{fx.Busybox.Ref, fx.Config.Ref} {
		if _, err := svc.Pull(ctx, r, image.PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, format := range []string{image.FormatDocker, image.FormatOCI} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "images.tar")
			f, _ := os.Create(path)
			if err := svc.Save(ctx, []string{fx.Busybox.Ref, fx.Config.Ref}, format, f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			other := newService(t, "")
			res, err := other.Load(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Names) != 2 {
				t.Fatalf("loaded names %v", res.Names)
			}
			for _, want := range []testenv.Image{fx.Busybox, fx.Config} {
				r, err := other.Resolve(ctx, want.Ref)
				if err != nil {
					t.Fatalf("after load: %v", err)
				}
				if r.ConfigID.String() != want.ConfigDigest {
					t.Errorf("%s: config %s, want %s", want.Ref, r.ConfigID, want.ConfigDigest)
				}
			}
			verifyStore(t, other)
		})
	}
	// A corrupt archive stores nothing unverified.
	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, []byte("not a tarball at all"), 0o644)
	other := newService(t, "")
	if _, err := other.Load(ctx, bad); err == nil {
		t.Fatal("loading garbage succeeded")
	}
}

// Both snapshotters: overlay unpacks layers while they download, copy
// applies them in order from the store. Either way the pull is runnable and
// a second image sharing the base reuses it.
func TestPullUnpacksWithEitherSnapshotter(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixLayered)
	for _, driver := range []string{snapshot.Overlay, snapshot.Copy} {
		t.Run(driver, func(t *testing.T) {
			root := t.TempDir()
			svc := newServiceWith(t, root, driver)
			for _, ref := range []string{fx.Busybox.Ref, fx.Layered.Ref} {
				if _, err := svc.Pull(ctx, ref, image.PullOptions{}); err != nil {
					t.Fatalf("pull %s with %s: %v", ref, driver, err)
				}
			}
			db, err := metadata.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			snap, err := snapshot.Open(db, root, snapshot.Options{Driver: driver})
			if err != nil {
				t.Fatal(err)
			}
			for _, chain := range snapshot.ChainIDs(fx.Layered.DiffIDs) {
				if ok, err := snap.Has(ctx, chain); err != nil || !ok {
					t.Fatalf("chain %s not unpacked (%v)", chain, err)
				}
			}
		})
	}
}

// Archives cross tools: hull loads a docker-archive skopeo wrote (the
// format of docker save), and skopeo reads the docker-archive hull saves.
func TestArchivesInteroperateWithSkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatal("skopeo is needed (hack/deps.sh installs it)")
	}
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	dir := t.TempDir()
	theirs := filepath.Join(dir, "skopeo.tar")
	out, err := exec.Command("skopeo", "copy", "-q", "--src-tls-verify=false", "docker://"+fx.Busybox.Ref, "docker-archive:"+theirs+":"+fx.Busybox.Ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	svc := newService(t, "")
	res, err := svc.Load(ctx, theirs)
	if err != nil || len(res.Names) != 1 {
		t.Fatalf("load skopeo's docker-archive: %+v %v", res, err)
	}
	r, err := svc.Resolve(ctx, fx.Busybox.Ref)
	if err != nil || r.ConfigID.String() != fx.Busybox.ConfigDigest {
		t.Fatalf("loaded image: %v %+v", err, r)
	}
	ours := filepath.Join(dir, "hull.tar")
	f, _ := os.Create(ours)
	if err := svc.Save(ctx, []string{fx.Busybox.Ref}, image.FormatDocker, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err = exec.Command("skopeo", "inspect", "--config", "docker-archive:"+ours).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fx.Busybox.DiffIDs[0]) {
		t.Fatalf("skopeo cannot read hull's docker-archive: %v\n%s", err, out)
	}
}

// A pull given a Dial's connection uses its manifest and prefetched config
// (the blobs arrive all the same, verified), ignores a Dial for another
// reference, and reports a Dial's failure as a pull's own.
func TestPullWithDial(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	root := t.TempDir()
	svc := newService(t, root)
	cfg := testConfig(root)

	res, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{Remote: image.Dial(ctx, cfg, fx.Busybox.Ref)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.String() != fx.Busybox.Digest || res.ConfigID.String() != fx.Busybox.ConfigDigest {
		t.Errorf("got manifest %s config %s, want %s %s", res.Manifest, res.ConfigID, fx.Busybox.Digest, fx.Busybox.ConfigDigest)
	}
	if !svc.Store().Has(res.ConfigID) {
		t.Error("the prefetched config was not stored")
	}
	res, err = svc.Pull(ctx, fx.Config.Ref, image.PullOptions{Remote: image.Dial(ctx, cfg, fx.Busybox.Ref)})
	if err != nil || res.Manifest.String() != fx.Config.Digest {
		t.Fatalf("pull with another reference's Dial: %v, %+v", err, res)
	}
	verifyStore(t, svc)

	_, err = svc.Pull(ctx, "127.0.0.1:1/x/y:1", image.PullOptions{Remote: image.Dial(ctx, cfg, "127.0.0.1:1/x/y:1")})
	if !image.IsKind(err, image.ErrUnreachable) || !strings.Contains(err.Error(), "check the address") {
		t.Errorf("unreachable registry through Dial: %v", err)
	}
}

// TestRecordsSeeEveryWriter: a long-lived service keeps the image records
// it read (hull-cri answers ImageStatus from them) only while nothing
// changed them, whoever wrote: another process's service (the CLI
// tagging, pulling, removing) or a plain statement on the tables (an
// older hull, a repair), whose triggers move the image generation.
func TestRecordsSeeEveryWriter(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixLayered)
	root := t.TempDir()
	long := newService(t, root)
	other := newService(t, root) // another process's, on the same database
	if _, err := long.Pull(ctx, fx.Busybox.Ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		t.Helper()
		recs, err := long.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.Names...)
		}
		slices.Sort(out)
		return out
	}
	first := names()
	if len(first) != 1 {
		t.Fatalf("names after one pull: %q", first)
	}
	// What a caller does to the records it got is its own.
	recs, _ := long.List(ctx)
	recs[0].Names[0], recs[0].Unpacked = "changed", 1
	if got := names(); !slices.Equal(got, first) {
		t.Fatalf("a caller's change reached the next caller: %q", got)
	}
	if err := other.Tag(ctx, fx.Busybox.Ref, "example.com/team/bb:v1"); err != nil {
		t.Fatal(err)
	}
	if r, err := long.Resolve(ctx, "example.com/team/bb:v1"); err != nil || r.Digest.String() != fx.Busybox.Digest {
		t.Fatalf("another process's tag: %v %v", r, err)
	}
	if _, err := other.Pull(ctx, fx.Layered.Ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := long.Resolve(ctx, fx.Layered.Ref); err != nil {
		t.Fatalf("another process's pull: %v", err)
	}
	if _, err := other.Remove(ctx, fx.Layered.Ref, false); err != nil {
		t.Fatal(err)
	}
	if _, err := long.Resolve(ctx, fx.Layered.Ref); !errors.As(err, new(*image.NotFoundError)) {
		t.Fatalf("another process's removal: still resolves (%v)", err)
	}
	db, err := metadata.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range []string{
		`UPDATE image_names SET name = 'example.com/team/bb:v2' WHERE name = 'example.com/team/bb:v1'`,
		`INSERT INTO image_repo_digests(digest, repo_digest) VALUES('` + fx.Busybox.Digest + `', 'example.com/team/bb@` + fx.Busybox.Digest + `')`,
	} {
		if _, err := db.Exec(st); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := long.Resolve(ctx, "example.com/team/bb:v2"); err != nil {
		t.Fatalf("a renamed tag: %v", err)
	}
	if _, err := long.Resolve(ctx, "example.com/team/bb@"+fx.Busybox.Digest); err != nil {
		t.Fatalf("a repository digest added: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM images`); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 0 {
		t.Fatalf("every image deleted: still %q", got)
	}
}
