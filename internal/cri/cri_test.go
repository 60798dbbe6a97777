package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/config"
	"hull/internal/engine"
	"hull/internal/testenv"
)

// client is a CRI client on a server serving a private root.
type client struct {
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient
	eng  *engine.Engine
	srv  *Server // for checks of the server's own state
	root string
	sock string
}

// serve starts a server over a fresh engine under a temp root and
// connects to it; the cleanup stops it and checks the socket is gone.
func serve(t *testing.T, o Options) *client { return serveWith(t, o, config.Default()) }

// serveWith is serve with a configuration (its roots are replaced).
func serveWith(t *testing.T, o Options, cfg config.Config) *client {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (the engine's roots and snapshots)")
	}
	root := t.TempDir()
	cfg.Root, cfg.RunRoot = root, filepath.Join(root, "run")
	eng, err := engine.Open(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, eng, o, cfg)
}

// serveOn serves the CRI over eng (closed at the end) and connects to it.
func serveOn(t testing.TB, eng *engine.Engine, o Options, cfg config.Config) *client {
	t.Helper()
	root := cfg.Root
	o.Root, o.RunRoot = cfg.Root, cfg.RunRoot
	o.RemovalIntents = true // as hull cri serve
	sock := filepath.Join(root, "cri.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	srv := New(eng, o)
	go func() { done <- srv.Serve(ctx, "unix://"+sock, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket %s left after the server stopped (%v)", sock, err)
		}
		srv.Close()
		eng.Close()
	})
	return &client{rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn), eng: eng, srv: srv, root: root, sock: sock}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestVersionStatusRuntimeConfig(t *testing.T) {
	c := serve(t, Options{Version: "1.2.3"})
	ctx := ctxT(t)
	v, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "hull" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion != "1.2.3" || v.Version == "" {
		t.Errorf("Version = %+v; want hull, v1, 1.2.3", v)
	}

	st, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, cd := range st.Status.Conditions {
		conds[cd.Type] = cd
	}
	if cd := conds[runtimeapi.RuntimeReady]; cd == nil || !cd.Status {
		t.Errorf("RuntimeReady = %+v; want true", cd)
	}
	if cd := conds[runtimeapi.NetworkReady]; cd == nil || !cd.Status {
		t.Errorf("NetworkReady = %+v; want true (sandboxes get the default network)", cd)
	}
	if len(st.Info) != 0 {
		t.Errorf("non-verbose Status has info %v", st.Info)
	}
	st, err = c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ CgroupDriver, DockerRootDir string }
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.CgroupDriver != "cgroupfs" || info.DockerRootDir != c.root {
		t.Errorf("verbose info[info] = %q (%v); want hull's info with the root %s", st.Info["info"], err, c.root)
	}
	if !strings.Contains(st.Info["config"], `"cgroupDriver":"cgroupfs"`) {
		t.Errorf("verbose info[config] = %q", st.Info["config"])
	}

	rc, err := c.rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("RuntimeConfig = %v; want cgroupfs", rc)
	}
}

func TestImageService(t *testing.T) {
	_, f := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	c := serve(t, Options{PinnedImages: []string{f.Config.Ref}})
	ctx := ctxT(t)

	// Not there: no image, no error (kubelet pulls then).
	st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}})
	if err != nil || st.Image != nil {
		t.Fatalf("ImageStatus before the pull = %v, %v; want no image, no error", st, err)
	}

	pull, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}})
	if err != nil {
		t.Fatal(err)
	}
	if pull.ImageRef != f.Busybox.ConfigDigest {
		t.Errorf("PullImage image_ref = %s; want the image ID %s", pull.ImageRef, f.Busybox.ConfigDigest)
	}

	// One image, however it is named.
	var first *runtimeapi.Image
	for _, ref := range []string{f.Busybox.Ref, f.Busybox.ByDigest(), pull.ImageRef, strings.TrimPrefix(pull.ImageRef, "sha256:")[:12]} {
		st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil || st.Image == nil {
			t.Fatalf("ImageStatus(%s) = %v, %v", ref, st, err)
		}
		if first == nil {
			first = st.Image
			continue
		}
		if st.Image.String() != first.String() {
			t.Errorf("ImageStatus(%s) = %v; want the same as by tag, %v", ref, st.Image, first)
		}
	}
	if first.Id != f.Busybox.ConfigDigest || len(first.RepoTags) != 1 || first.RepoTags[0] != f.Busybox.Ref ||
		len(first.RepoDigests) != 1 || first.RepoDigests[0] != f.Busybox.ByDigest() || first.Size == 0 || first.Pinned {
		t.Errorf("busybox status = %v; want ID %s, tag %s, digest %s, a size, not pinned", first, f.Busybox.ConfigDigest, f.Busybox.Ref, f.Busybox.ByDigest())
	}
	if first.Uid != nil || first.Username != "" {
		t.Errorf("busybox (no USER) has uid %v username %q", first.Uid, first.Username)
	}

	// USER app, a pinned image, verbose status.
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: f.Config.Ref}}); err != nil {
		t.Fatal(err)
	}
	st, err = c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: f.Config.Ref}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Image.Username != "app" || st.Image.Uid != nil || !st.Image.Pinned {
		t.Errorf("config fixture status = %v; want username app, pinned", st.Image)
	}
	var inspect struct{ Config struct{ User string } }
	if err := json.Unmarshal([]byte(st.Info["info"]), &inspect); err != nil || inspect.Config.User != "app" {
		t.Errorf("verbose info = %q (%v); want the inspect document", st.Info["info"], err)
	}

	// List, and a filter.
	list, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 2 {
		t.Fatalf("ListImages = %v, %v; want 2 images", list, err)
	}
	list, err = c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: f.Config.Ref}}})
	if err != nil || len(list.Images) != 1 || list.Images[0].Id != f.Config.ConfigDigest {
		t.Fatalf("ListImages(filter %s) = %v, %v; want the config image only", f.Config.Ref, list, err)
	}
	list, err = c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "nosuch/image:1"}}})
	if err != nil || len(list.Images) != 0 {
		t.Fatalf("ListImages(filter nosuch) = %v, %v; want none", list, err)
	}

	fs, err := c.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 {
		t.Fatalf("ImageFsInfo = %v, %v", fs, err)
	}
	u := fs.ImageFilesystems[0]
	if u.FsId.GetMountpoint() != c.root || u.UsedBytes.GetValue() < uint64(f.Busybox.Size) || u.InodesUsed.GetValue() < 5 || u.Timestamp == 0 {
		t.Errorf("ImageFsInfo = %v; want mountpoint %s, at least the busybox image's %d bytes, inodes", u, c.root, f.Busybox.Size)
	}

	// Removing by one name removes the image with all its names.
	second := f.Registry + "/other/name:2"
	if err := c.eng.ImageTag(ctx, f.Busybox.Ref, second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: second}}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{f.Busybox.Ref, second, pull.ImageRef} {
		st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil || st.Image != nil {
			t.Errorf("ImageStatus(%s) after RemoveImage = %v, %v; want gone", ref, st.GetImage(), err)
		}
	}
	// Idempotent.
	if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: second}}); err != nil {
		t.Errorf("RemoveImage of a removed image: %v; want success", err)
	}
	after, err := c.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || after.ImageFilesystems[0].UsedBytes.GetValue() >= u.UsedBytes.GetValue() {
		t.Errorf("ImageFsInfo after the removal = %v, %v; want less than %d bytes", after, err, u.UsedBytes.GetValue())
	}

	// Bad input.
	_, err = c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("PullImage of no image: %v; want InvalidArgument", err)
	}
	_, err = c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: f.Registry + "/hull-test/nosuch:1"}})
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "nosuch") {
		t.Errorf("PullImage of a missing image: %v; want NotFound naming it", err)
	}
}

// ImageStatus answers from the server's view of the image records
// (engine View.Image, which keeps them and each image's unpacked size):
// it follows the store all the same. The size is the one ListImages
// gives, before and after a container unpacks the image; a name another
// caller gives the image is found at once, and one removed is gone.
func TestImageStatusFollowsTheStore(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	status := func(ref string) *runtimeapi.Image {
		t.Helper()
		st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("ImageStatus(%s): %v", ref, err)
		}
		return st.GetImage()
	}
	sameAsListed := func(img *runtimeapi.Image, when string) {
		t.Helper()
		l, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range l.Images {
			if x.Id == img.GetId() {
				if x.Size != img.Size || !slices.Equal(x.RepoTags, img.RepoTags) {
					t.Errorf("%s: ImageStatus = %d bytes, %v; ListImages = %d bytes, %v", when, img.Size, img.RepoTags, x.Size, x.RepoTags)
				}
				return
			}
		}
		t.Errorf("%s: ListImages has no image %s", when, img.GetId())
	}
	img := status(f.Busybox.Ref)
	if img == nil {
		t.Fatal("the pulled image has no status")
	}
	sameAsListed(img, "pulled")
	pod := sandboxConfig(t, "sizes")
	podID := runSandbox(t, c, pod)
	startContainer(t, c, createContainer(t, c, f, podID, pod, "app", nil, "sleep", "60"))
	sameAsListed(status(f.Busybox.Ref), "with a container (the layers unpacked)")

	other := "example.test/renamed:1"
	if err := c.eng.ImageTag(ctx, f.Busybox.Ref, other); err != nil {
		t.Fatal(err)
	}
	if img := status(other); img == nil || !slices.Contains(img.RepoTags, other) {
		t.Fatalf("ImageStatus(%s) after the tag = %v; want the image, named so", other, img)
	}
	sameAsListed(status(f.Busybox.Ref), "tagged")
	if _, err := c.eng.ImageRemove(ctx, other, false); err != nil {
		t.Fatal(err)
	}
	if img := status(other); img != nil {
		t.Fatalf("ImageStatus(%s) after its removal = %v; want none", other, img)
	}
}

func TestPullImageWithAuth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	reg := testenv.NewAuthRegistry(t, "kube", "s3cret")
	f := testenv.PushFixturesT(t, reg, testenv.FixBusybox)
	c := serve(t, Options{})
	ctx := ctxT(t)
	spec := &runtimeapi.ImageSpec{Image: f.Busybox.Ref}

	_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("PullImage without credentials: %v; want Unauthenticated", err)
	}
	_, err = c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: &runtimeapi.AuthConfig{Username: "kube", Password: "wrong"}})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("PullImage with a wrong password: %v; want Unauthenticated", err)
	}
	for _, auth := range []*runtimeapi.AuthConfig{
		{Username: "kube", Password: "s3cret", ServerAddress: reg.Addr},
		{Auth: base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))},
	} {
		res, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: auth})
		if err != nil || res.ImageRef != f.Busybox.ConfigDigest {
			t.Fatalf("PullImage with %v = %v, %v", auth, res, err)
		}
		if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec}); err != nil {
			t.Fatal(err)
		}
	}
}

// A socket a killed server left is replaced; a live server's is not.
func TestServeReplacesStaleSocket(t *testing.T) {
	c := serve(t, Options{})
	if err := New(c.eng, Options{}).Serve(context.Background(), "unix://"+c.sock, nil); err == nil || !strings.Contains(err.Error(), "another server is listening") {
		t.Errorf("a second server on a live socket: %v; want refused", err)
	}
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := listenUnix(stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	l.Close() // as a killed server leaves it
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- New(c.eng, Options{}).Serve(ctx, stale, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve on a stale socket: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"tcp://127.0.0.1:1", "relative.sock"} {
		if err := New(c.eng, Options{}).Serve(context.Background(), bad, nil); err == nil {
			t.Errorf("Serve(%q) succeeded; want refused", bad)
		}
	}
}

// A registry's mirror serves its pulls; the image keeps its own name (as
// critest needs: it compares the names it pulled with those listed).
func TestPullThroughMirror(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	reg := testenv.NewRegistry(t)
	img, err := testenv.BuildImage(testenv.FixBusybox)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(reg.Ref("k8s/pause:3.9"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img, reg.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	// Mirrors only, so that a pull the mirror cannot serve never reaches
	// registry.k8s.io (the fallback to the registry itself is tested on
	// local registries in internal/image and cmd/hull). The pull the
	// mirror lacks is of another mirrored registry, a closed local port:
	// were mirrors_only ignored, that is all it would reach.
	down := testenv.ClosedAddr(t)
	cfg.Registries.Mirrors = map[string][]string{"registry.k8s.io": {reg.Addr + "/k8s"}, down: {reg.Addr + "/k8s"}}
	cfg.Registries.MirrorsOnly = true
	c := serveWith(t, Options{PinnedImages: []string{"registry.k8s.io/pause:3.9"}}, cfg)
	ctx := ctxT(t)
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "registry.k8s.io/pause:3.9"}}); err != nil {
		t.Fatal(err)
	}
	st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "registry.k8s.io/pause:3.9"}})
	if err != nil || st.Image == nil {
		t.Fatalf("ImageStatus = %v, %v", st, err)
	}
	if len(st.Image.RepoTags) != 1 || st.Image.RepoTags[0] != "registry.k8s.io/pause:3.9" || !st.Image.Pinned ||
		len(st.Image.RepoDigests) != 1 || !strings.HasPrefix(st.Image.RepoDigests[0], "registry.k8s.io/pause@sha256:") {
		t.Errorf("image pulled through the mirror = %v; want named registry.k8s.io/pause:3.9, pinned", st.Image)
	}
	// The mirror registry under its own name is not redirected.
	_, err = c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Addr + "/k8s/pause:3.9"}})
	if err != nil {
		t.Errorf("pull from the mirror registry under its own name: %v", err)
	}
	// An image the mirror lacks: NotFound (kubelet's ErrImagePull), naming
	// the image and the mirror, and saying the registry itself was not
	// tried.
	_, err = c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: down + "/pause:nosuch"}})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), down+"/pause:nosuch") ||
		!strings.Contains(err.Error(), "tried 1 registry: mirror "+reg.Addr+"/k8s/pause: manifest unknown") ||
		!strings.Contains(err.Error(), down+" itself is not tried (registries.mirrors_only)") {
		t.Errorf("pull of a tag the mirror lacks: %v; want NotFound naming the image and the mirror, the registry not tried", err)
	}
}

// kubelet pulls in parallel (serializeImagePulls: false) while it lists
// and inspects images: one engine serves all the calls at once.
func TestConcurrentImageCalls(t *testing.T) {
	_, f := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig, testenv.FixLayered)
	c := serve(t, Options{})
	ctx := ctxT(t)
	refs := []string{f.Busybox.Ref, f.Config.Ref, f.Layered.Ref, f.Busybox.Ref, f.Config.Ref, f.Layered.Ref}
	errs := make(chan error, 3*len(refs))
	for _, ref := range refs {
		go func() {
			_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			errs <- err
		}()
		go func() {
			_, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
			errs <- err
		}()
		go func() {
			_, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			errs <- err
		}()
	}
	for range 3 * len(refs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	list, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 3 {
		t.Fatalf("ListImages after the pulls = %v, %v; want 3 images", list, err)
	}
	for _, ref := range []string{f.Busybox.Ref, f.Config.Ref, f.Layered.Ref} {
		go func() {
			_, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if list, err = c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{}); err != nil || len(list.Images) != 0 {
		t.Errorf("ListImages after the removals = %v, %v; want none", list, err)
	}
}

// Each call is logged at debug; a failure kubelet would not expect as a
// warning (not-found and unimplemented are answers, not failures).
// CheckpointPod of an unknown pod is a not-found.
func TestCallsAreLogged(t *testing.T) {
	var buf syncBuffer
	c := serve(t, Options{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := ctxT(t)
	c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: "x"})
	c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{}})
	out := buf.String()
	for _, want := range []string{
		"level=DEBUG msg=rpc method=Version", "code=OK",
		"level=DEBUG msg=rpc method=CheckpointPod", "code=NotFound",
		`level=WARN msg="rpc failed" method=PullImage code=InvalidArgument`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `level=WARN msg="rpc failed" method=CheckpointPod`) {
		t.Errorf("a not-found is logged as a failure:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
