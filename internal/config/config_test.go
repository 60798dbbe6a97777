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
	os.WriteFile(path, []byte("[registries.mirrors]\n\"registry.k8s.io\" = [\"127.0.0.1:5000/k8s\"]\n"), 0o644)
	if cfg, err = Load(path); err != nil || cfg.Registries.Mirrors["registry.k8s.io"][0] != "127.0.0.1:5000/k8s" || cfg.Registries.MirrorsOnly {
		t.Fatalf("registries.mirrors: %v mirrors_only %v %v", cfg.Registries.Mirrors, cfg.Registries.MirrorsOnly, err)
	}
	os.WriteFile(path, []byte("[registries]\nmirrors_only = true\n[registries.mirrors]\n\"registry.k8s.io\" = [\"127.0.0.1:5000/k8s\"]\n"), 0o644)
	if cfg, err = Load(path); err != nil || !cfg.Registries.MirrorsOnly || len(cfg.Registries.Mirrors) != 1 {
		t.Fatalf("registries.mirrors_only = true: %v %v %v", cfg.Registries.MirrorsOnly, cfg.Registries.Mirrors, err)
	}
	os.WriteFile(path, []byte("[registries]\npull_idle_timeout = \"2m30s\"\n"), 0o644)
	if cfg, err = Load(path); err != nil || cfg.Registries.PullIdleTimeout != 150*time.Second {
		t.Fatalf("pull_idle_timeout = \"2m30s\": %v %v", cfg.Registries.PullIdleTimeout, err)
	}
	if cfg.KubeCgroupRoot() != "/kubepods" {
		t.Errorf("kube cgroup root by default: %q, want kubelet's /kubepods", cfg.KubeCgroupRoot())
	}
	os.WriteFile(path, []byte("[kube]\ncgroup_root = \"/hull-kube/root1\"\n"), 0o644)
	if cfg, err = Load(path); err != nil || cfg.KubeCgroupRoot() != "/hull-kube/root1" {
		t.Fatalf("kube.cgroup_root: %q %v", cfg.KubeCgroupRoot(), err)
	}
	for body, says := range map[string]string{
		"[kube]\ncgroup_root = \"kubepods\"\n":                        "kube.cgroup_root",
		"[kube]\ncgroup_root = \"/a/../kubepods\"\n":                  "kube.cgroup_root",
		"[kube]\ncgroup_root = \"/\"\n":                               "kube.cgroup_root",
		"rooot = \"/x\"\n":                                            "unknown key",
		"root = \"relative\"\n":                                       "absolute",
		"[storage]\nsnapshotter = \"zfs\"\n":                          "snapshotter",
		"root = \n":                                                   "parse config",
		"[registries]\npull_idle_timeout = \"-1s\"\n":                 "must not be negative",
		"[registries]\npull_idle_timeout = \"soon\"\n":                "parse config",
		"[registries.mirrors]\n\"docker.io\" = []\n":                  "lists no mirror",
		"[registries.mirrors]\n\"docker.io\" = [\"http://m:5000\"]\n": "no scheme",
	} {
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("config %q: %v, want error about %q", body, err, says)
		}
	}
}

func TestStorageSizeLimits(t *testing.T) {
	if d := Default().Storage; d.MaxLayerSize != 64<<30 || d.MaxImageSize != 128<<30 {
		t.Errorf("default limits %d, %d; want 64GiB, 128GiB", d.MaxLayerSize, d.MaxImageSize)
	}
	path := filepath.Join(t.TempDir(), "hull.toml")
	for body, want := range map[string][2]Size{
		"[storage]\nmax_layer_size = \"10g\"\nmax_image_size = \"1.5TiB\"\n": {10 << 30, 3 << 39},
		"[storage]\nmax_layer_size = 1048576\n":                              {1 << 20, 128 << 30},
		"[storage]\nmax_image_size = \"512 MB\"\nmax_layer_size = \"64m\"\n": {64 << 20, 512 << 20},
		"[storage]\nmax_layer_size = \"100KiB\"\n":                           {100 << 10, 128 << 30},
	} {
		os.WriteFile(path, []byte(body), 0o644)
		cfg, err := Load(path)
		if err != nil {
			t.Errorf("config %q: %v", body, err)
			continue
		}
		if got := [2]Size{cfg.Storage.MaxLayerSize, cfg.Storage.MaxImageSize}; got != want {
			t.Errorf("config %q: limits %v, want %v", body, got, want)
		}
	}
	for body, says := range map[string]string{
		"[storage]\nmax_layer_size = \"lots\"\n":   "invalid size",
		"[storage]\nmax_image_size = \"-1g\"\n":    "invalid size",
		"[storage]\nmax_image_size = \"1e9\"\n":    "invalid size",
		"[storage]\nmax_image_size = true\n":       "size",
		"[storage]\nmax_layer_size = 0\n":          "max_layer_size 0 must be positive",
		"[storage]\nmax_layer_size = \"200GiB\"\n": "larger than storage.max_image_size",
	} {
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("config %q: %v, want error about %q", body, err, says)
		}
	}
}
