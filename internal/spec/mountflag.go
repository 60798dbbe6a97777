package spec

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ParseMount reads docker's long form --mount: a CSV record (quoted as
// docker's parser quotes, so a field may hold a comma) of key=value
// fields: type=bind|volume|tmpfs (volume when absent), src|source,
// dst|destination|target, readonly|ro[=bool], bind-propagation=,
// volume-nocopy[=bool], tmpfs-size=, tmpfs-mode=. The result is the
// Mount that -v or --tmpfs would give. As docker's daemon does, a bind
// whose host path does not exist is refused (-v would create it).
func ParseMount(s string) (Mount, error) {
	bad := func(format string, args ...any) (Mount, error) {
		return Mount{}, fmt.Errorf("invalid --mount %q: %s", s, fmt.Sprintf(format, args...))
	}
	r := csv.NewReader(strings.NewReader(s))
	fields, err := r.Read()
	if err != nil {
		return bad("%v (fields are comma-separated key=value pairs; quote a field that holds a comma)", err)
	}
	m := Mount{Type: "volume"}
	var propagation string
	var nocopy, volumeOpts, bindOpts, tmpfsOpts bool
	var size, mode string
	parseBool := func(key, val string) (bool, error) {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return false, fmt.Errorf("invalid value for %s: %s (use true or false)", key, val)
		}
		return b, nil
	}
	for _, field := range fields {
		key, val, ok := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !ok {
			switch key {
			case "readonly", "ro":
				m.ReadOnly = true
			case "volume-nocopy":
				nocopy, volumeOpts = true, true
			default:
				return bad("invalid field '%s' must be a key=value pair", field)
			}
			continue
		}
		switch key {
		case "type":
			m.Type = strings.ToLower(val)
		case "source", "src":
			m.Source = val
			if val == "." || strings.HasPrefix(val, "./") || strings.HasPrefix(val, "../") {
				if m.Source, err = filepath.Abs(val); err != nil {
					return bad("source %s: %v", val, err)
				}
			}
		case "target", "dst", "destination":
			m.Destination = val
		case "readonly", "ro":
			if m.ReadOnly, err = parseBool(key, val); err != nil {
				return bad("%v", err)
			}
		case "consistency":
			// macOS file sharing modes: nothing on Linux, as in docker.
		case "bind-propagation":
			if !slices.Contains(propagations, strings.ToLower(val)) {
				return bad("invalid value for %s: %s (use one of %s)", key, val, strings.Join(propagations, ", "))
			}
			propagation, bindOpts = strings.ToLower(val), true
		case "volume-nocopy":
			if nocopy, err = parseBool(key, val); err != nil {
				return bad("%v", err)
			}
			volumeOpts = true
		case "tmpfs-size":
			n, err := ParseMemory(val)
			if err != nil {
				return bad("invalid value for %s: %s (a size such as 64m)", key, val)
			}
			size, tmpfsOpts = "size="+strconv.FormatInt(n, 10), true
		case "tmpfs-mode":
			v, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return bad("invalid value for %s: %s (an octal mode such as 1777)", key, val)
			}
			mode, tmpfsOpts = "mode="+strconv.FormatUint(v, 8), true
		default:
			return bad("unexpected key '%s' in '%s' (hull knows type, source, target, readonly, bind-propagation, volume-nocopy, tmpfs-size, tmpfs-mode)", key, field)
		}
	}
	switch {
	case m.Type != "bind" && m.Type != "volume" && m.Type != "tmpfs":
		return bad("unknown type %q (use bind, volume or tmpfs)", m.Type)
	case m.Destination == "":
		return bad("target is required")
	case volumeOpts && m.Type != "volume":
		return bad("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	case bindOpts && m.Type != "bind":
		return bad("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	case tmpfsOpts && m.Type != "tmpfs":
		return bad("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	case !filepath.IsAbs(m.Destination):
		return bad("target %q is not an absolute path", m.Destination)
	}
	m.Destination = filepath.Clean(m.Destination)
	if m.Destination == "/" {
		return bad("the target can't be '/'")
	}
	switch m.Type {
	case "bind":
		if m.Source == "" {
			return bad("a bind mount needs a source (the host path)")
		}
		if !filepath.IsAbs(m.Source) {
			return bad("bind source %q is not an absolute path", m.Source)
		}
		m.Source = filepath.Clean(m.Source)
		if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
			return bad("bind source path does not exist: %s", m.Source)
		}
		if propagation != "" {
			m.Options = append(m.Options, propagation)
		}
	case "volume":
		if m.Source != "" && !volumeNameRE().MatchString(m.Source) {
			return bad("%q is not a valid volume name (letters, digits, _ . -, at least two characters); use type=bind for a host path", m.Source)
		}
		if nocopy {
			m.Options = append(m.Options, "nocopy")
		}
	case "tmpfs":
		if m.Source != "" {
			return bad("a tmpfs mount takes no source")
		}
		for _, o := range []string{size, mode} {
			if o != "" {
				m.Options = append(m.Options, o)
			}
		}
	}
	return m, nil
}
