// Package config holds hull's settings: where state lives, how registries are
// reached, and the defaults commands fall back on. Settings come from built-in
// defaults, then an optional TOML file (--config, default /etc/hull/hull.toml),
// then global flags, in that order of increasing precedence.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPullIdleTimeout is long enough for a registry busy assembling a
// response (or a slow proxy) and short enough that a dead connection is
// noticed while the user still waits for it.
const DefaultPullIdleTimeout = 30 * time.Second

// DefaultPath is read when --config is not given; a missing file is fine.
const DefaultPath = "/etc/hull/hull.toml"

// Config is the whole of hull's configuration.
type Config struct {
	// Root holds persistent state: images, snapshots, the metadata database.
	Root string `toml:"root"`
	// RunRoot holds state that must not survive a reboot: pid files, sockets.
	RunRoot string `toml:"run_root"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log_level"`

	Registries Registries `toml:"registries"`
	Storage    Storage    `toml:"storage"`
	Warnings   Warnings   `toml:"warnings"`
}

// Registries controls how hull talks to image registries.
type Registries struct {
	// Insecure lists registry hosts (host or host:port) that may be reached
	// over plain HTTP or with unverified TLS. Loopback hosts are always allowed
	// plain HTTP, as docker does.
	Insecure []string `toml:"insecure"`
	// AuthFile is the Docker-format credentials file; default
	// $DOCKER_CONFIG/config.json or ~/.docker/config.json.
	AuthFile string `toml:"auth_file"`
	// MaxConcurrentDownloads bounds parallel layer fetches per pull.
	MaxConcurrentDownloads int `toml:"max_concurrent_downloads"`
	// PullIdleTimeout fails a registry read (manifest or blob) that
	// receives nothing for this long, so a stalled registry cannot hang a
	// pull; a blob is then retried from where it stopped. A string such as
	// "30s"; 0 means the default.
	PullIdleTimeout time.Duration `toml:"pull_idle_timeout"`
}

// Storage selects how root filesystems are assembled.
type Storage struct {
	// Snapshotter is "overlay" (default) or "copy" for filesystems without
	// overlay support.
	Snapshotter string `toml:"snapshotter"`
}

// Warnings silences advisory messages.
type Warnings struct {
	// NoLatestWarning silences the warning printed when an image is used by
	// its implicit or explicit "latest" tag.
	NoLatestWarning bool `toml:"no_latest_warning"`
	// NoRootWarning silences the warning printed when a container runs as root.
	NoRootWarning bool `toml:"no_root_warning"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Root:     "/var/lib/hull",
		RunRoot:  "/run/hull",
		LogLevel: "warn",
		Registries: Registries{
			MaxConcurrentDownloads: 6,
			PullIdleTimeout:        DefaultPullIdleTimeout,
		},
		Storage: Storage{Snapshotter: "overlay"},
	}
}

// Load reads path over the defaults. If path is empty, DefaultPath is tried
// and its absence ignored; a path given explicitly must exist.
func Load(path string) (Config, error) {
	cfg := Default()
	explicit := path != ""
	if !explicit {
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return cfg, nil
		}
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("parse config %s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		return cfg, fmt.Errorf("config %s: unknown key %q (see README for the settings hull knows)", path, undec[0].String())
	}
	return cfg, cfg.Validate()
}

// Validate checks values that would otherwise fail later and obscurely.
func (c *Config) Validate() error {
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		return fmt.Errorf("config: root %q must be an absolute path", c.Root)
	}
	if c.RunRoot == "" || !filepath.IsAbs(c.RunRoot) {
		return fmt.Errorf("config: run_root %q must be an absolute path", c.RunRoot)
	}
	switch c.Storage.Snapshotter {
	case "overlay", "copy":
	default:
		return fmt.Errorf("config: storage.snapshotter %q unknown (use overlay or copy)", c.Storage.Snapshotter)
	}
	if c.Registries.MaxConcurrentDownloads <= 0 {
		c.Registries.MaxConcurrentDownloads = 6
	}
	switch {
	case c.Registries.PullIdleTimeout < 0:
		return fmt.Errorf("config: registries.pull_idle_timeout %s must not be negative (e.g. \"30s\")", c.Registries.PullIdleTimeout)
	case c.Registries.PullIdleTimeout == 0:
		c.Registries.PullIdleTimeout = DefaultPullIdleTimeout
	}
	return nil
}
