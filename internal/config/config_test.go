package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if cfg.Root != "/srv/hull" || cfg.RunRoot != "/run/hull" || cfg.Storage.Snapshotter != "copy" || cfg.Registries.Insecure[0] != "reg.lan:5000" || cfg.Registries.MaxConcurrentDownloads != 6 || cfg.Registries.PullIdleTimeout != 30*time.Second {
		t.Fatalf("loaded %+v", cfg)
	}
	os.WriteFile(path, []byte("[registries]\npull_idle_timeout = \"2m30s\"\n"), 0o644)
	if cfg, err = Load(path); err != nil || cfg.Registries.PullIdleTimeout != 150*time.Second {
		t.Fatalf("pull_idle_timeout = \"2m30s\": %v %v", cfg.Registries.PullIdleTimeout, err)
	}
	for body, says := range map[string]string{
		"rooot = \"/x\"\n":                             "unknown key",
		"root = \"relative\"\n":                        "absolute",
		"[storage]\nsnapshotter = \"zfs\"\n":           "snapshotter",
		"root = \n":                                    "parse config",
		"[registries]\npull_idle_timeout = \"-1s\"\n":  "must not be negative",
		"[registries]\npull_idle_timeout = \"soon\"\n": "parse config",
	} {
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("config %q: %v, want error about %q", body, err, says)
		}
	}
}
