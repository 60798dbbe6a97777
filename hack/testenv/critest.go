package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"hull/internal/testenv"
)

// critestImage is a stand-in for an image critest pulls: its names
// (registry host first) and how it differs from the busybox fixture.
type critestImage struct {
	names []string
	user  string // USER
	cmd   []string
	// nonewprivs: the image has the setuid-root --nonewprivs program at
	// /usr/local/bin/nonewprivs, its command.
	nonewprivs bool
	// execShell: the image's /bin/sh executes commands from disk
	// (execshell.go), when --exec-shell is given.
	execShell bool
}

// critestImages are the images critest v1.37.0's specs pull, from its
// pkg/validate/consts.go and framework. Each is the busybox fixture with
// a label naming it (so images meant to differ have different IDs), the
// USER its spec checks, and accounts layer (critestAccounts). Names that are one image upstream
// (test-image-tags:1..3, the two pause:3.9) are one image here.
// test-image-digest@sha256:9700f9... cannot be made: its digest is fixed.
var critestImages = []critestImage{
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-latest:latest"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-tag:test"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-tag:all"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-1:latest"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-2:latest"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-3:latest"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-tags:1", "gcr.io/k8s-staging-cri-tools/test-image-tags:2", "gcr.io/k8s-staging-cri-tools/test-image-tags:3"}},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest"}, user: "1002"},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-user-username:latest"}, user: "www-data"},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-user-uid-group:latest"}, user: "1003:1004"},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest"}, user: "www-data:1004"},
	{names: []string{"gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest"}},
	{names: []string{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9", "registry.k8s.io/pause:3.10"}, cmd: []string{"sleep", "2147483647"}},
	// critest's default image: most specs run in it, MaskedPaths among
	// them, which needs a shell that executes /bin/ls.
	{names: []string{"registry.k8s.io/e2e-test-images/busybox:1.29-2"}, execShell: true},
	// Web servers: busybox httpd serving 200 on the port the specs dial,
	// its pid where nginx writes its own.
	{names: []string{"registry.k8s.io/e2e-test-images/nginx:1.14-2"}, cmd: serve(80)},
	{names: []string{"gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest"}, cmd: serve(12003)},
	{names: []string{"registry.k8s.io/e2e-test-images/httpd:2.4.39-4"}, cmd: serve(80)},
	{names: []string{"registry.k8s.io/e2e-test-images/nonewprivs:1.3"}, cmd: []string{"/usr/local/bin/nonewprivs"}, nonewprivs: true},
}

// serve is the command of a web server stand-in listening on port: the
// /bin/nginx script (critestAccounts), whose command line has nginx's
// "master process" in it, as the specs check.
func serve(port int) []string {
	return []string{"/bin/nginx", "nginx: master process nginx -g daemon off;", fmt.Sprint(port)}
}

// critest pushes the stand-ins to the registry at addr, each under
// ADDR/<registry host>/<path>: hull's [registries.mirrors] then maps
// "<registry host>" to "ADDR/<registry host>" (the lines printed).
func critest(args []string) error {
	fs := flag.NewFlagSet("critest-images", flag.ExitOnError)
	addr := fs.String("registry", "", "registry address, 127.0.0.1:PORT (required)")
	nonewprivs := fs.String("nonewprivs", "", "a static program printing its effective uid (hack/nonewprivs), installed setuid root in the nonewprivs stand-in; without it that image is not pushed")
	execShell := fs.String("exec-shell", "", "a busybox built without FEATURE_SH_STANDALONE (Debian's dynamically linked busybox), the default image's /bin/sh; without it that sh runs applets in process and the MaskedPaths spec fails")
	fs.Parse(args)
	if *addr == "" {
		return fmt.Errorf("critest-images: --registry is required")
	}
	base, err := standInBase()
	if err != nil {
		return err
	}
	hosts := map[string]bool{}
	for _, ci := range critestImages {
		base := base
		if ci.nonewprivs {
			if *nonewprivs == "" {
				continue
			}
			prog, err := os.ReadFile(*nonewprivs)
			if err != nil {
				return fmt.Errorf("critest-images: %w", err)
			}
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return setuidLayer("usr/local/bin/nonewprivs", prog) })
			if err != nil {
				return err
			}
			if base, err = mutate.AppendLayers(base, l); err != nil {
				return err
			}
		}
		if ci.execShell && *execShell != "" {
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return execShellLayer(*execShell) })
			if err != nil {
				return err
			}
			if base, err = mutate.AppendLayers(base, l); err != nil {
				return err
			}
		}
		if err := pushStandIn(base, *addr, "io.hull.critest.image", ci.user, ci.cmd, ci.names, hosts); err != nil {
			return err
		}
	}
	printMirrors(*addr, hosts)
	return nil
}

// standInBase is the base of every stand-in image: the busybox fixture
// with the critest accounts layer (critestAccounts), then extra layers.
func standInBase(extra ...func() (io.ReadCloser, error)) (v1.Image, error) {
	busybox, err := testenv.BuildImage(testenv.FixBusybox)
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{}
	for _, open := range append([]func() (io.ReadCloser, error){critestAccounts}, extra...) {
		l, err := tarball.LayerFromOpener(open)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return mutate.AppendLayers(busybox, layers...)
}

// pushStandIn pushes base, labelled labelKey=names[0], with its USER and
// command (nil: base's), under ADDR/NAME for each of names, and notes each
// name's registry host in hosts (printMirrors' lines).
func pushStandIn(base v1.Image, addr, labelKey, user string, cmd, names []string, hosts map[string]bool) error {
	cf, err := base.ConfigFile()
	if err != nil {
		return err
	}
	cfg := cf.Config
	cfg.Labels = map[string]string{labelKey: names[0]}
	cfg.User = user
	if cmd != nil {
		cfg.Cmd = cmd
	}
	img, err := mutate.Config(base, cfg)
	if err != nil {
		return err
	}
	for _, n := range names {
		host, _, _ := strings.Cut(n, "/")
		hosts[host] = true
		if err := pushAs(img, addr+"/"+n); err != nil {
			return err
		}
	}
	return nil
}

func pushAs(img v1.Image, ref string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("critest-images: %w", err)
	}
	if err := remote.Write(r, img); err != nil {
		return fmt.Errorf("critest-images: push %s: %w", ref, err)
	}
	return nil
}

// setuidLayer is a layer with one setuid-root program at path.
func setuidLayer(path string, prog []byte) (io.ReadCloser, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o4755, Size: int64(len(prog)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(prog); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}

// critestAccounts is a layer with the accounts critest's specs name:
// www-data (33) for the username images, and group 50000 with user 1000
// as a member for test-image-predefined-group.
func critestAccounts() (io.ReadCloser, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []string{"var/", "var/run/", "www/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return nil, err
		}
	}
	// brctl and pidof are busybox applets; this busybox has no pgrep nor ipcs, so
	// they are scripts doing what the specs use them for.
	for _, applet := range []string{"brctl", "pidof"} {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, body string }{
		{"bin/pgrep", "#!/bin/sh\n# pgrep NAME: the pids whose command is NAME\ns=1\nfor d in /proc/[0-9]*; do\n" +
			"  [ \"$(cat $d/comm 2>/dev/null)\" = \"$1\" ] && { echo ${d#/proc/}; s=0; }\ndone\nexit $s\n"},
		{"bin/nginx", "#!/bin/sh\n# nginx stand-in: busybox httpd on port $2 (80), this shell's pid in\n# /var/run/nginx.pid, ended by SIGTERM\n" +
			"echo $$ >/var/run/nginx.pid\necho \"nginx stand-in: busybox httpd on port ${2:-80}\"\nhttpd -f -p \"${2:-80}\" -h /www &\ntrap 'kill $!; exit 0' TERM INT\nwait\n"},
		{"bin/ipcs", "#!/bin/sh\n# ipcs -m: the shared memory segments of this IPC namespace\ncat /proc/sysvipc/shm\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, body string }{
		{"www/index.html", "<html><body>hull critest stand-in</body></html>\n"},
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n" +
			"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
			"app:x:1000:1000:app:/home/app:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"etc/group", "root:x:0:\nwww-data:x:33:\napp:x:1000:\npredefined:x:50000:app\nnobody:x:65534:\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}
