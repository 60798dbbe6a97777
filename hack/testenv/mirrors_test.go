package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hull/internal/config"
)

// The block registries-toml prints, after a [network] section as the
// scripts write it, is a hull.toml hull loads with mirrors_only set and
// one mirror per host of the joined runs' lines.
func TestRegistriesTOML(t *testing.T) {
	in := strings.Join([]string{
		"pushed something", // not a MIRROR line: ignored
		"MIRROR docker.io 127.0.0.1:5000/docker.io",
		"MIRROR registry.k8s.io 127.0.0.1:5000/registry.k8s.io",
		"MIRROR docker.io 127.0.0.1:5000/docker.io", // a second run's
	}, "\n")
	var out strings.Builder
	out.WriteString("[network]\ndefault_bridge = \"x0\"\n")
	if err := writeRegistriesTOML(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hull.toml")
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !cfg.Registries.MirrorsOnly {
		t.Errorf("mirrors_only not set:\n%s", out.String())
	}
	want := map[string][]string{
		"docker.io":       {"127.0.0.1:5000/docker.io"},
		"registry.k8s.io": {"127.0.0.1:5000/registry.k8s.io"},
	}
	if len(cfg.Registries.Mirrors) != len(want) {
		t.Errorf("mirrors = %v, want %v", cfg.Registries.Mirrors, want)
	}
	for h, w := range want {
		if !slices.Equal(cfg.Registries.Mirrors[h], w) {
			t.Errorf("mirrors[%s] = %v, want %v", h, cfg.Registries.Mirrors[h], w)
		}
	}
}

// No MIRROR lines (a failed push run) and two mirrors for one host are
// errors, not a block without mirrors or with a duplicate key.
func TestRegistriesTOMLErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"MIRROR docker.io 127.0.0.1:5000/docker.io\nMIRROR docker.io 127.0.0.1:6000/docker.io",
		"MIRROR docker.io",
	} {
		if err := writeRegistriesTOML(&strings.Builder{}, strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
