package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// memoryRE is docker's RAMInBytes syntax: a number, an optional binary
// unit, an optional "b" (and "i" as in "MiB").
var memoryRE = lazyRegexp(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// ParseMemory reads a size as docker's -m does: "512m", "1.5g", "64MiB",
// "1024" (bytes); units are binary (k = 1024) and case-insensitive.
func ParseMemory(s string) (int64, error) {
	m := memoryRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q: use a number with an optional unit b, k, m, g or t (e.g. 512m)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[strings.ToLower(m[2])]
	v := n * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v), nil
}

// ParseMemorySwap is ParseMemory that also takes "-1" (unlimited swap).
func ParseMemorySwap(s string) (int64, error) {
	if strings.TrimSpace(s) == "-1" {
		return -1, nil
	}
	return ParseMemory(s)
}

// formatBytes renders a size the way people write -m values.
func formatBytes(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseCPUs reads --cpus ("1.5") into nano-CPUs, exactly: "0.0000000001"
// is refused rather than rounded.
func ParseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("invalid --cpus %q: use a positive decimal number of CPUs, e.g. 1.5", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("invalid --cpus %q: too precise (at most 9 decimal places)", s)
	}
	if !nano.Num().IsInt64() {
		return 0, fmt.Errorf("invalid --cpus %q: too large", s)
	}
	return nano.Num().Int64(), nil
}

// ParseUlimit reads --ulimit name=soft[:hard] (hard defaults to soft; -1
// is unlimited).
func ParseUlimit(s string) (Ulimit, error) {
	usage := "use name=soft[:hard], e.g. nofile=1024:2048"
	name, vals, ok := strings.Cut(s, "=")
	if !ok || name == "" || vals == "" {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: %s", s, usage)
	}
	softS, hardS, hasHard := strings.Cut(vals, ":")
	soft, err := strconv.ParseInt(softS, 10, 64)
	if err != nil {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: soft limit %q is not a number; %s", s, softS, usage)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardS, 10, 64); err != nil {
			return Ulimit{}, fmt.Errorf("invalid ulimit %q: hard limit %q is not a number; %s", s, hardS, usage)
		}
	}
	u := Ulimit{Name: strings.ToLower(name), Soft: soft, Hard: hard}
	if err := u.check(); err != nil {
		return Ulimit{}, err
	}
	return u, nil
}

// volumeNameRE is docker's rule for local volume names (ValidVolumeName).
var volumeNameRE = lazyRegexp(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ParseVolume reads -v as docker does on Linux: "/host:/ctr[:opts]" is a
// bind mount ("./dir" is taken relative to the current directory),
// "name:/ctr[:opts]" a named volume (Source is the name; the engine
// resolves it), "/ctr" an anonymous volume (empty Source). opts is a comma
// list of ro|rw, a propagation mode, nocopy, z|Z.
func ParseVolume(s string) (Mount, error) {
	bad := func(why string) (Mount, error) {
		return Mount{}, fmt.Errorf("invalid volume specification %q: %s (use /host/path:/container/path[:ro], name:/container/path or /container/path)", s, why)
	}
	parts := strings.Split(s, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if validVolumeMode(parts[1]) == nil {
			return bad("a volume without a source cannot have options")
		}
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return bad("too many colons")
	}
	if dst == "" {
		return bad("empty container path")
	}
	if !filepath.IsAbs(dst) {
		return bad(fmt.Sprintf("container path %q is not absolute", dst))
	}
	dst = filepath.Clean(dst)
	if dst == "/" {
		return bad("the container path can't be '/'")
	}
	m := Mount{Type: "volume", Source: src, Destination: dst}
	switch {
	case len(parts) > 1 && src == "":
		return bad("empty source")
	case strings.HasPrefix(src, "."):
		abs, err := filepath.Abs(src)
		if err != nil {
			return bad(err.Error())
		}
		m.Type, m.Source = "bind", abs
	case filepath.IsAbs(src):
		m.Type, m.Source = "bind", filepath.Clean(src)
	case src != "" && !volumeNameRE().MatchString(src):
		return bad(fmt.Sprintf("%q is not a valid volume name (letters, digits, _ . -, at least two characters); a host directory needs an absolute path", src))
	}
	if mode != "" {
		if err := validVolumeMode(mode); err != nil {
			return bad(err.Error())
		}
		for _, o := range strings.Split(mode, ",") {
			switch {
			case o == "ro":
				m.ReadOnly = true
			case o == "rw":
			case o == "nocopy" && m.Type == "bind":
				return bad("nocopy applies to volumes, not host directories")
			default:
				m.Options = append(m.Options, o)
			}
		}
	}
	return m, nil
}

// validVolumeMode checks a -v option list: at most one of ro/rw and one
// propagation mode.
func validVolumeMode(mode string) error {
	var rw, prop int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "ro" || o == "rw":
			rw++
		case slices.Contains(propagations, o):
			prop++
		case o == "nocopy" || o == "z" || o == "Z":
		default:
			return fmt.Errorf("unknown option %q", o)
		}
	}
	if rw > 1 || prop > 1 {
		return fmt.Errorf("conflicting options %q", mode)
	}
	return nil
}

// tmpfsFlags are the option words --tmpfs accepts; key=value options are
// in tmpfsKeys.
var (
	tmpfsFlags = []string{"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev",
		"atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
		"strictatime", "nostrictatime", "sync", "async", "dirsync", "mand", "nomand"}
	tmpfsKeys   = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"}
	tmpfsSizeRE = lazyRegexp(`^\d+[kKmMgG%]?$`)
)

// ParseTmpfs reads --tmpfs /path[:opts] (opts as mount -t tmpfs takes
// them: size=64m,mode=1777,uid=1000,exec ...).
func ParseTmpfs(s string) (dest, opts string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("invalid --tmpfs %q: %s (use /path[:size=64m,mode=1777,...])", s, why)
	}
	dest, opts, _ = strings.Cut(s, ":")
	if !filepath.IsAbs(dest) {
		return bad(fmt.Sprintf("%q is not an absolute path", dest))
	}
	dest = filepath.Clean(dest)
	if dest == "/" {
		return bad("the path can't be '/'")
	}
	if opts == "" {
		return dest, "", nil
	}
	for _, o := range strings.Split(opts, ",") {
		key, val, isKV := strings.Cut(o, "=")
		switch {
		case !isKV && slices.Contains(tmpfsFlags, o):
		case !isKV || !slices.Contains(tmpfsKeys, key):
			return bad(fmt.Sprintf("unknown option %q", o))
		case key == "size" && !tmpfsSizeRE().MatchString(val):
			return bad(fmt.Sprintf("size %q is not a size such as 64m or 50%%", val))
		case key == "mode":
			if _, err := strconv.ParseUint(val, 8, 32); err != nil {
				return bad(fmt.Sprintf("mode %q is not octal such as 1777", val))
			}
		case key == "uid" || key == "gid" || key == "nr_inodes" || key == "nr_blocks":
			if _, err := strconv.ParseUint(strings.TrimRight(val, "kKmMgG"), 10, 64); err != nil {
				return bad(fmt.Sprintf("%s %q is not a number", key, val))
			}
		}
	}
	return dest, opts, nil
}

// ParseEnv reads -e/--env values as docker does: KEY=VALUE as given, a
// bare KEY taken from hull's own environment (left out if unset there).
// A value with no name ("=x") is refused, not dropped.
func ParseEnv(values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, kv := range values {
		key, _, hasValue := strings.Cut(kv, "=")
		if key == "" {
			return nil, fmt.Errorf("invalid argument %q for \"-e, --env\" flag: no variable name before '=' (use KEY=VALUE)", kv)
		}
		if !hasValue {
			v, ok := os.LookupEnv(kv)
			if !ok {
				continue
			}
			kv += "=" + v
		}
		out = append(out, kv)
	}
	return out, nil
}

// ParseEnvFile reads an --env-file as docker does: one KEY=VALUE per line
// taken literally (no quotes, no expansion), blank lines and lines
// starting with # skipped, and a bare KEY taken from hull's own
// environment (left out if unset there).
func ParseEnvFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Bytes()
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("env file %s line %d: not valid UTF-8", path, n)
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, hasValue := strings.Cut(line, "=")
		if !hasValue {
			key = strings.TrimRightFunc(key, unicode.IsSpace)
		}
		if key == "" {
			return nil, fmt.Errorf("env file %s line %d: no variable name before '=' (use KEY=VALUE)", path, n)
		}
		if strings.ContainsFunc(key, unicode.IsSpace) {
			return nil, fmt.Errorf("env file %s line %d: variable name %q contains whitespace (use KEY=VALUE)", path, n, key)
		}
		if hasValue {
			out = append(out, key+"="+val)
		} else if v, ok := os.LookupEnv(key); ok {
			out = append(out, key+"="+v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	return out, nil
}

// lazyRegexp compiles expr on first use, not at every hull start (this
// package is linked into every command and each container's monitor).
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// ValidVolumeName tells whether name is a valid local volume name.
func ValidVolumeName(name string) bool { return volumeNameRE().MatchString(name) }

// ParseLabelFile reads a --label-file as docker does: one key=value per
// line (a bare key is an empty label), blank lines and lines starting
// with # skipped.
func ParseLabelFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("label file: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var out []string
	for n, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimLeftFunc(strings.TrimRight(raw, "\r"), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("label file %s line %d: not valid UTF-8", path, n+1)
		}
		key, _, _ := strings.Cut(line, "=")
		if key == "" || strings.ContainsFunc(key, unicode.IsSpace) {
			return nil, fmt.Errorf("label file %s line %d: %q is not key=value (no whitespace in the key)", path, n+1, line)
		}
		out = append(out, line)
	}
	return out, nil
}
