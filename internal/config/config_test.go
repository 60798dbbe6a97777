package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDefaultsFileAndErrors(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	if err == nil {
		t.Fatal("an explicit missing config file must be an error")
	}
	path := filepath.Join(t.TempDir(), "hull.toml")
	os.WriteFile(path, []byte("root = \"/srv/hull\"\n[registries]\ninsecure = [\"reg.lan:5000\"]\n[storage]\nsnapshotter = \"copy\"\n"), 0o644)
	cfg, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != "/srv/hull" || cfg.RunRoot != "/run/hull" || cfg.Storage.Snapshotter != "copy" || cfg.Registries.Insecure[0] != "reg.lan:5000" || cfg.Registries.MaxConcurrentDownloads != 6 {
		t.Fatalf("loaded %+v", cfg)
	}
	for body, says := range map[string]string{
		"rooot = \"/x\"\n":                   "unknown key",
		"root = \"relative\"\n":              "absolute",
		"[storage]\nsnapshotter = \"zfs\"\n": "snapshotter",
		"root = \n":                          "parse config",
	} {
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("config %q: %v, want error about %q", body, err, says)
		}
	}
}
