package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"hull/internal/testenv"
)

// `hull pull` goes through a registry's mirrors: a first mirror that is
// down is passed over for the next, and a mirror that speaks plain HTTP
// is used only once listed in registries.insecure. The image's own
// registry is down too (a closed local port), so only the mirror can
// have served the pull; with mirrors_only it is not tried at all.
//
// A plain-HTTP mirror on 127.0.0.1 would be trusted as loopback; the test
// names it hull-mirror.test instead, which an /etc/hosts bind-mounted in
// the pulling hull's own mount namespace maps to 127.0.0.1.
func TestCLIPullThroughMirrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a private mount namespace)")
	}
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	upstream, firstMirror := testenv.ClosedAddr(t), testenv.ClosedAddr(t)
	_, port, _ := strings.Cut(reg.Addr, ":")
	mirror := "hull-mirror.test:" + port
	image := upstream + strings.TrimPrefix(fx.Busybox.Ref, reg.Addr)
	root := t.TempDir()
	hosts := filepath.Join(root, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n127.0.0.1 hull-mirror.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pull := func(insecure string, mirrorsOnly bool) (string, error) {
		t.Helper()
		cfg := filepath.Join(root, "mirrors.toml")
		data := fmt.Sprintf("[registries]\ninsecure = [%s]\nmirrors_only = %t\n[registries.mirrors]\n%q = [%q, %q]\n", insecure, mirrorsOnly, upstream, firstMirror, mirror)
		if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`,
			hosts, os.Args[0], "--root", root, "--run-root", filepath.Join(root, "run"), "--config", cfg, "pull", image)
		cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Not listed insecure: the mirror is tried over HTTPS only, and the
	// error names all three registries, the mirror's with its remedy.
	out, err := pull("", false)
	for _, want := range []string{"tried 3 registries", "mirror " + firstMirror + "/hull-test/busybox: registry unreachable",
		"mirror " + mirror + "/hull-test/busybox: insecure registry", "; " + upstream + "/hull-test/busybox: registry unreachable"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("pull through a plain-HTTP mirror not listed insecure: %v\n%s\nwant it to say %q", err, out, want)
		}
	}
	// With mirrors_only the registry itself is left out, and the error
	// says so.
	out, err = pull("", true)
	if err == nil || !strings.Contains(out, "tried 2 registries") || strings.Contains(out, "; "+upstream+"/") ||
		!strings.Contains(out, upstream+" itself is not tried (registries.mirrors_only)") {
		t.Errorf("mirrors_only pull through mirrors that cannot serve it: %v\n%s\nwant 2 registries tried, %s not", err, out, upstream)
	}
	out, err = pull(fmt.Sprintf("%q", mirror), true)
	if err != nil || !strings.Contains(out, "Digest: "+fx.Busybox.Digest) || !strings.Contains(out, "Status: Downloaded newer image for "+image) {
		t.Fatalf("pull through the insecure mirror: %v\n%s", err, out)
	}
	if out := mustHull(t, root, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != image {
		t.Errorf("images after the pull through mirrors = %q; want the image under its own name %s", out, image)
	}
}
