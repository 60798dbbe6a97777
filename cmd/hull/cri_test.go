package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `hull cri serve` hands its flags and hull's configuration to hull-cri
// (internal/cri's TestHullCRIServe serves through it end to end).
func TestCRIServeFlagsReachHullCRI(t *testing.T) {
	bin := os.Getenv("HULL_BIN")
	if bin == "" {
		t.Skip("needs HULL_BIN (make build builds hull-cri beside it)")
	}
	root := t.TempDir()
	cmd := hullProc(root, "cri", "serve", "--listen", "tcp://127.0.0.1:1")
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(bin), "hull-cri"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `--listen "tcp://127.0.0.1:1": only unix:// endpoints are served`) {
		t.Errorf("hull cri serve --listen tcp://...: %v\n%s\nwant hull-cri refusing the endpoint", err, out)
	}

	// The NRI flags reach hull-cri too.
	cmd = hullProc(root, "cri", "serve", "--listen", "unix://"+filepath.Join(root, "cri.sock"), "--nri-socket", "relative/nri.sock")
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(bin), "hull-cri"))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `--nri-socket "relative/nri.sock": give an absolute path`) {
		t.Errorf("hull cri serve --nri-socket relative/nri.sock: %v\n%s\nwant hull-cri refusing it", err, out)
	}
	cmd = hullProc(root, "cri", "serve", "--listen", "unix://"+filepath.Join(root, "cri.sock"), "--streaming-address", "127.0.0.1:bad")
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(bin), "hull-cri"))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "streaming server: listen on 127.0.0.1:bad") || !strings.Contains(string(out), "give another --streaming-address") {
		t.Errorf("hull cri serve --streaming-address 127.0.0.1:bad: %v\n%s\nwant hull-cri refusing the address", err, out)
	}

	// And --spares.
	cmd = hullProc(root, "cri", "serve", "--listen", "unix://"+filepath.Join(root, "cri.sock"), "--spares", "-1")
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(bin), "hull-cri"))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--spares -1: give 0") {
		t.Errorf("hull cri serve --spares -1: %v\n%s\nwant hull-cri refusing it", err, out)
	}

	t.Setenv("HULL_CRI", filepath.Join(root, "no-hull-cri"))
	_, _, err = hull(t, root, "cri", "serve")
	if err == nil || !strings.Contains(err.Error(), "no-hull-cri") || !strings.Contains(err.Error(), "make build, or set HULL_CRI") {
		t.Errorf("hull cri serve without hull-cri: %v; want an error naming it and saying how to get it", err)
	}
	if _, _, err = hull(t, root, "cri", "serve", "extra"); err == nil {
		t.Errorf("hull cri serve extra: no error")
	}
	if _, _, err = hull(t, root, "cri", "nosuch"); err == nil || !strings.Contains(err.Error(), `unknown command "nosuch"`) {
		t.Errorf("hull cri nosuch: %v", err)
	}
}
