package image_test

import (
	"path/filepath"
	"strings"
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
	cfg := config.Default()
	cfg.Root, cfg.RunRoot, cfg.Registries.AuthFile = root, filepath.Join(root, "run"), filepath.Join(root, "auth.json")
	tune(&cfg)
	byDigest := fx.Busybox.ByDigest()
	res, err = svc.Pull(ctx, byDigest, image.PullOptions{Remote: image.Dial(ctx, cfg, byDigest)})
	if err != nil || res.Manifest.String() != fx.Busybox.Digest {
		t.Fatalf("pull of what only the registry has = %+v, %v; want %s from the registry", res, err, fx.Busybox.Digest)
	}

	// Nobody has it: the error is the most telling one's kind (not found
	// over unreachable) and names each registry with its error.
	missing := fx.Busybox.Repo + ":no-such-tag"
	_, err = svc.Pull(ctx, missing, image.PullOptions{})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{
		"pull " + missing + ": manifest unknown: tried 3 registries: ",
		"mirror " + down + "/" + repo + ": registry unreachable: ",
		"connection refused",
		"; mirror " + mirror.Addr + "/m/" + repo + `: manifest unknown: tag "no-such-tag" does not exist in ` + mirror.Addr + "/m/" + repo,
		"; " + up.Addr + "/" + repo + `: manifest unknown: tag "no-such-tag" does not exist in ` + up.Addr + "/" + repo,
		"registries.mirrors",
	} {
		if !image.IsKind(err, image.ErrNotFound) || !strings.Contains(msg, want) {
			t.Errorf("pull that no registry can serve: %v\nwant NotFound containing %q", err, want)
		}
	}
}
