// Package config holds hull's settings: where state lives, how registries are
// reached, and the defaults commands fall back on. Settings come from built-in
// defaults, then an optional TOML file (--config, default /etc/hull/hull.toml),
// then global flags, in that order of increasing precedence.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	Logging    Logging    `toml:"logging"`
	Network    Network    `toml:"network"`
	CRI        CRI        `toml:"cri"`
	Kube       Kube       `toml:"kube"`
}

// DefaultKubeCgroupRoot is kubelet's name for the cgroup its pods go in
// (cgroupfs driver, cgroupsPerQOS), the parent `hull kube` pods get.
const DefaultKubeCgroupRoot = "/kubepods"

// Kube configures `hull kube`.
type Kube struct {
	// CgroupRoot is the cgroup under which `hull kube` makes its pods'
	// cgroups, as kubelet's: ROOT/<qos>/pod<uid> (ROOT/pod<uid> for
	// Guaranteed pods). Default /kubepods, what a kubelet node shows.
	// Two hull roots that run kube pods at once can share it; a private
	// root (tests) gives its own so no other root's teardown touches it.
	CgroupRoot string `toml:"cgroup_root"`
}

// KubeCgroupRoot is [kube] cgroup_root, or its default.
func (c *Config) KubeCgroupRoot() string {
	if c.Kube.CgroupRoot == "" {
		return DefaultKubeCgroupRoot
	}
	return c.Kube.CgroupRoot
}

// CRI configures `hull cri serve` (hull-cri's flags override it).
type CRI struct {
	// CNIConfDir is the CNI configuration directory whose first
	// conflist is the pod network (/etc/cni/net.d if unset; "" puts pods
	// on hull's default network). The plugins are [network] plugin_dirs.
	CNIConfDir *string `toml:"cni_conf_dir"`
}

// Network configures container networking (docker's daemon bridge
// settings, podman's network config).
type Network struct {
	// DefaultBridge and DefaultSubnet are the default network's bridge
	// device and IPv4 subnet (hull0, 10.88.0.0/16 if empty), as dockerd's
	// --bridge and --bip. They take effect when the default network is
	// first written under the root.
	DefaultBridge string `toml:"default_bridge"`
	DefaultSubnet string `toml:"default_subnet"`
	// PluginDirs are where CNI plugins are looked up (/usr/lib/cni,
	// /opt/cni/bin if empty).
	PluginDirs []string `toml:"plugin_dirs"`
	// UsePlugins runs every network through its CNI plugins, even those
	// hull sets up itself (slower; for comparison and debugging).
	UsePlugins bool `toml:"use_plugins"`
}

// Logging is the log driver and options of containers created without
// --log-driver (docker's daemon log-driver and log-opts): the options
// apply when the container's driver is this one.
type Logging struct {
	// Driver is k8s-file (default), json-file, local (all three hull's
	// CRI-format log file) or none.
	Driver string `toml:"driver"`
	// Opts are --log-opt's: max-size, max-file, compress=false.
	Opts map[string]string `toml:"opts"`
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
	// PullMinRate, in bytes per second, fails a registry read that keeps
	// sending, but slower than this over a pull_idle_timeout of reading
	// (the time hull spends between reads, hashing and unpacking, does not
	// count), so a trickle cannot hold a pull for hours; a blob is then
	// retried from where it stopped, as after a stall. 0 (the default):
	// no minimum. A fixed deadline for a whole pull (containerd#3833)
	// would fail big images on slow but working links; this does not.
	PullMinRate int64 `toml:"pull_min_rate"`
	// Mirrors maps a registry host ("registry.k8s.io", "docker.io") to the
	// registries pulls of its images go to instead, each "host[:port]" or
	// "host[:port]/path-prefix" (the image's path is appended). A pull
	// tries each mirror in order, then the registry itself, moving on
	// when one is unreachable or answers with an error (404 included), as
	// containerd does with a hosts.toml; the image keeps its own name.
	// Pushes are not mirrored. A mirror reached over plain HTTP must be
	// loopback or listed in Insecure.
	Mirrors map[string][]string `toml:"mirrors"`
	// MirrorsOnly (mirrors_only) keeps pulls of a registry that has
	// Mirrors on its mirrors: when none serves the image the pull fails,
	// and the registry itself is never looked up or contacted (as
	// containerd's hosts.toml with server = a mirror, or CRI-O's location
	// rewritten to one). For air-gapped nodes, and test harnesses that
	// must send nothing past their local registry. Registries without
	// mirrors, and pushes, are not affected. Default false.
	MirrorsOnly bool `toml:"mirrors_only"`
}

// Storage selects how root filesystems are assembled.
type Storage struct {
	// Snapshotter is "overlay" (default) or "copy" for filesystems without
	// overlay support.
	Snapshotter string `toml:"snapshotter"`
	// MaxLayerSize bounds what one layer unpacks to, and MaxImageSize what
	// all the layers of an image unpack to together (file contents at
	// their full size, a sparse file's holes included): a small layer
	// must not be able to fill the disk.
	MaxLayerSize Size `toml:"max_layer_size"`
	MaxImageSize Size `toml:"max_image_size"`
}

// Size is a number of bytes, written in hull.toml as an integer or as a
// string the way docker's -m takes one: "64GiB", "64g", "512m", "1.5t"
// (binary units, any case, optional "i" and "b").
type Size int64

// UnmarshalTOML reads an integer or a size string.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*s = Size(v)
		return nil
	case string:
		n, err := parseSize(v)
		*s = Size(n)
		return err
	}
	return fmt.Errorf("size %v: want a number of bytes or a string such as \"64GiB\"", v)
}

// parseSize reads "64GiB", "64g", "512m", "1.5t" or "1024" (bytes).
func parseSize(str string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(str))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	shift, ok := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" || num[0] == '.' {
		return 0, fmt.Errorf("invalid size %q: use bytes or a number with a unit k, m, g or t (e.g. \"64GiB\")", str)
	}
	v := n * float64(uint64(1)<<shift)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", str)
	}
	return int64(v), nil
}

// Warnings silences advisory messages.
type Warnings struct {
	// NoLatestWarning silences the warning printed when an image is used by
	// its implicit or explicit "latest" tag.
	NoLatestWarning bool `toml:"no_latest_warning"`
	// RootWarning warns on stderr when a container runs as root. It is
	// off by default: docker and podman print nothing, and on every root
	// one-liner it was the first line a learner saw.
	RootWarning bool `toml:"root_warning"`
	// NoRootWarning is accepted for old config files; the root warning
	// is off unless RootWarning asks for it.
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
		Storage: Storage{Snapshotter: "overlay", MaxLayerSize: 64 << 30, MaxImageSize: 128 << 30},
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
	if s := c.Network.DefaultSubnet; s != "" {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() {
			return fmt.Errorf("config: network.default_subnet %q is not an IPv4 CIDR such as 10.88.0.0/16", s)
		}
	}
	if len(c.Network.DefaultBridge) > 15 {
		return fmt.Errorf("config: network.default_bridge %q is longer than 15 characters", c.Network.DefaultBridge)
	}
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		return fmt.Errorf("config: root %q must be an absolute path", c.Root)
	}
	if c.RunRoot == "" || !filepath.IsAbs(c.RunRoot) {
		return fmt.Errorf("config: run_root %q must be an absolute path", c.RunRoot)
	}
	if r := c.Kube.CgroupRoot; r != "" && (!filepath.IsAbs(r) || filepath.Clean(r) != r || r == "/") {
		return fmt.Errorf("config: kube.cgroup_root %q must be a clean absolute cgroup path below the root, such as \"/kubepods\"", r)
	}
	switch c.Storage.Snapshotter {
	case "overlay", "copy":
	default:
		return fmt.Errorf("config: storage.snapshotter %q unknown (use overlay or copy)", c.Storage.Snapshotter)
	}
	if c.Storage.MaxLayerSize <= 0 {
		return fmt.Errorf("config: storage.max_layer_size %d must be positive", c.Storage.MaxLayerSize)
	}
	if c.Storage.MaxImageSize <= 0 {
		return fmt.Errorf("config: storage.max_image_size %d must be positive", c.Storage.MaxImageSize)
	}
	if c.Storage.MaxLayerSize > c.Storage.MaxImageSize {
		return fmt.Errorf("config: storage.max_layer_size (%d) is larger than storage.max_image_size (%d), which bounds every layer too; raise both", c.Storage.MaxLayerSize, c.Storage.MaxImageSize)
	}
	switch c.Logging.Driver {
	case "", "json-file", "local", "k8s-file", "none":
	default:
		return fmt.Errorf("config: logging.driver %q unknown (use json-file, local, k8s-file or none)", c.Logging.Driver)
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
	if c.Registries.PullMinRate < 0 {
		return fmt.Errorf("config: registries.pull_min_rate %d must not be negative (bytes per second; 0: no minimum)", c.Registries.PullMinRate)
	}
	for host, mirrors := range c.Registries.Mirrors {
		if len(mirrors) == 0 {
			return fmt.Errorf("config: registries.mirrors %q lists no mirror (give [\"host[:port][/prefix]\"], or remove the key)", host)
		}
		for _, m := range mirrors {
			if m == "" || strings.Contains(m, "://") {
				return fmt.Errorf("config: registries.mirrors %q: %q is not host[:port][/prefix] (no scheme: list the host in registries.insecure for plain HTTP)", host, m)
			}
		}
	}
	return nil
}
