package image_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"hull/internal/config"
	"hull/internal/image"
	"hull/internal/snapshot"
	"hull/internal/testenv"
)

// A mirrored registry's pulls try each mirror in order, then the registry
// itself (containerd's hosts.toml order): a mirror that is down or lacks
// the image is passed over, the first that has it serves the whole pull
// under the image's own name, and when none has it the error names every
// registry tried with its own error.
func TestPullMirrorsFallBack(t *testing.T) {
	up, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixConfig)
	mirror := testenv.NewRegistry(t)
	down := testenv.ClosedAddr(t)
	repo := strings.TrimPrefix(fx.Busybox.Repo, up.Addr+"/")
	// The mirror holds another image (the config fixture's) under
	// busybox's name: what it serves is told apart by its digest.
	src, err := name.ParseReference(fx.Config.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(mirror.Ref("m/"+repo) + ":" + strings.TrimPrefix(fx.Busybox.Ref, fx.Busybox.Repo+":"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	tune := func(c *config.Config) {
		c.Registries.Mirrors = map[string][]string{up.Addr: {down, mirror.Addr + "/m"}}
	}
	root := t.TempDir()
	svc := newServiceWith(t, root, snapshot.Overlay, tune)

	// The first mirror refuses the connection; the second serves it.
	res, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{})
	if err != nil || res.Manifest.String() != fx.Config.Digest || res.Ref.String() != fx.Busybox.Ref {
		t.Fatalf("pull through the mirrors = %+v, %v; want the second mirror's %s named %s", res, err, fx.Config.Digest, fx.Busybox.Ref)
	}
	// Content only the registry has (busybox's own manifest, by digest):
	// the first mirror is down, the second answers 404, the registry
	// serves it. Dial (the CLI's early connection) resolves the same way.
	cfg := testConfig(root, tune)
	byDigest := fx.Busybox.ByDigest()
	res, err = svc.Pull(ctx, byDigest, image.PullOptions{Remote: image.Dial(ctx, cfg, byDigest)})
	if err != nil || res.Manifest.String() != fx.Busybox.Digest {
		t.Fatalf("pull of what only the registry has = %+v, %v; want %s from the registry", res, err, fx.Busybox.Digest)
	}

	// Nobody has it: the error is the most telling one's kind (not found
	// over unreachable) and names each registry with its error.
	missing := fx.Busybox.Repo + ":no-such-tag"
	_, err = svc.Pull(ctx, missing, image.PullOptions{})
	wantNotFound(t, "pull that no registry can serve", err,
		"pull "+missing+": manifest unknown: tried 3 registries: ",
		"mirror "+down+"/"+repo+": registry unreachable: ",
		"connection refused",
		"; mirror "+mirror.Addr+"/m/"+repo+`: manifest unknown: tag "no-such-tag" does not exist in `+mirror.Addr+"/m/"+repo,
		"; "+up.Addr+"/"+repo+`: manifest unknown: tag "no-such-tag" does not exist in `+up.Addr+"/"+repo,
		"registries.mirrors are tried in order, then "+up.Addr)
}

// wantNotFound fails t unless err is NotFound and says each of wants.
func wantNotFound(t *testing.T, what string, err error, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !image.IsKind(err, image.ErrNotFound) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v\nwant NotFound containing %q", what, err, want)
		}
	}
}

// With mirrors_only, a mirrored registry's pulls go to its mirrors only:
// when none has the image the pull fails, naming each mirror tried, and
// the registry itself is never contacted. Here "the registry itself" is a
// local proxy to a registry that has the image, counting its requests:
// without mirrors_only the same pull is served by it.
func TestPullMirrorsOnly(t *testing.T) {
	up, fx := testenv.Setup(t, testenv.FixBusybox)
	mirror := testenv.NewRegistry(t) // empty: lacks the image
	down := testenv.ClosedAddr(t)
	target, err := url.Parse("http://" + up.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var contacted atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	self := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contacted.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	defer self.Close()
	selfAddr := strings.TrimPrefix(self.URL, "http://")
	repo := strings.TrimPrefix(fx.Busybox.Repo, up.Addr+"/")
	ref := selfAddr + strings.TrimPrefix(fx.Busybox.Ref, up.Addr)
	open := func(mirrorsOnly bool, mirrors ...string) (*image.Service, config.Config) {
		tune := func(c *config.Config) {
			c.Registries.Mirrors = map[string][]string{selfAddr: mirrors}
			c.Registries.MirrorsOnly = mirrorsOnly
		}
		root := t.TempDir()
		return newServiceWith(t, root, snapshot.Overlay, tune), testConfig(root, tune)
	}

	// Without mirrors_only the registry itself serves what the mirrors lack.
	svc, _ := open(false, down, mirror.Addr+"/m")
	if res, err := svc.Pull(ctx, ref, image.PullOptions{}); err != nil || res.Manifest.String() != fx.Busybox.Digest {
		t.Fatalf("pull falling back to the registry itself = %+v, %v; want %s", res, err, fx.Busybox.Digest)
	}
	if contacted.Load() == 0 {
		t.Fatal("the registry itself was not contacted by the pull it served")
	}

	// With it, the pull (and Dial, the CLI's early connection) fails
	// NotFound and the registry itself gets no request.
	contacted.Store(0)
	svc, cfg := open(true, down, mirror.Addr+"/m")
	_, err = svc.Pull(ctx, ref, image.PullOptions{})
	notTried := "mirrors from registries.mirrors are tried in order; " + selfAddr + " itself is not tried (registries.mirrors_only)"
	wantNotFound(t, "mirrors_only pull that no mirror can serve", err,
		"pull "+ref+": manifest unknown: tried 2 registries: ",
		"mirror "+down+"/"+repo+": registry unreachable: ",
		"; mirror "+mirror.Addr+"/m/"+repo+": manifest unknown: ",
		notTried)
	if err != nil && strings.Contains(err.Error(), "; "+selfAddr+"/") {
		t.Errorf("mirrors_only pull error names the registry itself as tried: %v", err)
	}
	_, err = svc.Pull(ctx, ref, image.PullOptions{Remote: image.Dial(ctx, cfg, ref)})
	wantNotFound(t, "mirrors_only pull through Dial", err, notTried)
	// A lone mirror's error is named as such, not passed off as the
	// registry's own.
	svc, _ = open(true, mirror.Addr+"/m")
	_, err = svc.Pull(ctx, ref, image.PullOptions{})
	wantNotFound(t, "mirrors_only pull from a lone mirror that lacks it", err,
		"tried 1 registry: mirror "+mirror.Addr+"/m/"+repo+": manifest unknown: ", notTried)
	if n := contacted.Load(); n != 0 {
		t.Errorf("the registry itself got %d requests with mirrors_only; want none", n)
	}
}
