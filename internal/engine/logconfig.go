package engine

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"

	"hull/internal/spec"
	"hull/internal/streams"
)

// LogConfig is a container's logging driver and its options, docker's
// HostConfig.LogConfig (--log-driver, --log-opt). hull's monitor writes
// the log itself, in one format (CRI's: time, stream, P|F, text) whatever
// the driver: json-file, local and k8s-file all name that file, rotated by
// max-size and max-file; none writes nothing. An empty Type is hull's
// default, DefaultLogDriver, with hull's rotation.
type LogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
	// Path, if set, is where the monitor writes the log instead of the
	// container's directory: a CRI container's log_directory/log_path,
	// which kubelet reads and rotates itself (hull's rotation is then
	// off).
	Path string `json:"Path,omitempty"`
}

// DefaultLogDriver is the driver of a container created without one (and
// without a [logging] driver in hull.toml): the name podman gives the CRI
// format hull's log is in (info's LoggingDriver says the same).
const DefaultLogDriver = "k8s-file"

// ErrLogsUnreadable is Logs' error for a container whose driver keeps no
// log (none), in docker's words.
var ErrLogsUnreadable = errdefs.ErrNotImplemented.WithMessage("configured logging driver does not support reading")

// ParseLogConfig checks --log-driver and --log-opt KEY=VALUE values (the
// options apply over defaults, e.g. hull.toml's, when the driver is the
// same): json-file, local, k8s-file take max-size, max-file and
// compress=false; none takes none.
func ParseLogConfig(driver string, opts []string, defaults map[string]string) (LogConfig, error) {
	lc := LogConfig{Type: driver}
	for k, v := range defaults {
		if lc.Config == nil {
			lc.Config = map[string]string{}
		}
		lc.Config[k] = v
	}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return lc, fmt.Errorf("--log-opt %q: use KEY=VALUE (max-size=10m, max-file=3)", o)
		}
		if lc.Config == nil {
			lc.Config = map[string]string{}
		}
		lc.Config[k] = v
	}
	switch driver {
	case "", "json-file", "local", "k8s-file":
	case "none":
		if len(lc.Config) > 0 {
			return lc, fmt.Errorf("--log-opt %s: the none log driver takes no options", firstKey(lc.Config))
		}
		return lc, nil
	default:
		return lc, fmt.Errorf("--log-driver %q: hull's monitor writes the log itself; use json-file, local, k8s-file or none", driver)
	}
	if _, _, err := lc.limits(); err != nil {
		return lc, err
	}
	return lc, nil
}

func firstKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0]
}

// limits are the size at which the log rotates and the files it keeps:
// hull's (streams.LogMaxSize, LogMaxFiles) unless max-size or max-file
// say otherwise; with max-size alone one file is kept, as docker's.
func (lc LogConfig) limits() (size int64, files int, err error) {
	size, files = streams.LogMaxSize, streams.LogMaxFiles
	driver := lc.Type
	if driver == "" {
		driver = DefaultLogDriver
	}
	var keys []string
	for k := range lc.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := lc.Config[k]
		switch k {
		case "max-size":
			if v == "-1" {
				size = 0
				continue
			}
			if size, err = spec.ParseMemory(v); err != nil || size <= 0 {
				return 0, 0, fmt.Errorf("--log-opt max-size=%s: a size such as 10m, or -1 for no limit", v)
			}
			if _, ok := lc.Config["max-file"]; !ok {
				files = 1
			}
		case "max-file":
			if files, err = strconv.Atoi(v); err != nil || files < 1 {
				return 0, 0, fmt.Errorf("--log-opt max-file=%s: a number of files, at least 1", v)
			}
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return 0, 0, fmt.Errorf("--log-opt compress=%s: true or false", v)
			}
			if b {
				return 0, 0, errors.New("--log-opt compress=true: hull does not compress rotated log files; leave it out or set compress=false")
			}
		default:
			return 0, 0, fmt.Errorf("unknown log opt '%s' for %s log driver (hull knows max-size, max-file and compress)", k, driver)
		}
	}
	return size, files, nil
}

// logSettings are where c's monitor writes its log, and the log's limits: ""
// for the none driver (nothing is written).
func (e *Engine) logSettings(c *Container) (path string, size int64, files int) {
	lc := c.Config.LogConfig
	if lc.Path != "" && lc.Type != "none" {
		return lc.Path, 0, 1
	}
	if lc.Type == "" && len(lc.Config) == 0 {
		return e.LogPath(c.ID), logMaxSize, logMaxFiles
	}
	if lc.Type == "none" {
		return "", 0, 1
	}
	size, files, err := lc.limits()
	if err != nil { // checked at create; a record edited since keeps hull's
		size, files = logMaxSize, logMaxFiles
	}
	return e.LogPath(c.ID), size, files
}

// customLog reports whether c's logging differs from hull's default (its
// record then goes to a spare monitor ahead of its spec).
func (c *Container) customLog() bool {
	return c.Config.LogConfig.Type != "" || len(c.Config.LogConfig.Config) > 0 || c.Config.LogConfig.Path != ""
}

// ContainerLogPath is where c's output is logged: its explicit log path
// (a CRI container's), else LogPath.
func (e *Engine) ContainerLogPath(c *Container) string {
	if p := c.Config.LogConfig.Path; p != "" {
		return p
	}
	return e.LogPath(c.ID)
}
