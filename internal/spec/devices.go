package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Device is one --device HOST[:CONTAINER][:PERMISSIONS].
type Device struct {
	PathOnHost        string
	PathInContainer   string
	CgroupPermissions string // some of r, w, m
}

// ThrottleDevice is one --device-{read,write}-{bps,iops} DEVICE:RATE.
type ThrottleDevice struct {
	Path string
	Rate uint64
}

func validPermissions(s string) bool {
	return s != "" && len(s) <= 3 && strings.Trim(s, "rwm") == ""
}

// ParseDevice reads --device as docker does: /dev/x, /dev/x:/dev/y,
// /dev/x:rw, /dev/x:/dev/y:rwm (permissions default to rwm).
func ParseDevice(s string) (Device, error) {
	bad := func(why string) (Device, error) {
		return Device{}, fmt.Errorf("invalid --device %q: %s (use /dev/HOST[:/dev/CONTAINER][:rwm])", s, why)
	}
	parts := strings.Split(s, ":")
	d := Device{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 3:
		if !validPermissions(parts[2]) {
			return bad(fmt.Sprintf("%q is not a permission set of r, w and m", parts[2]))
		}
		d.CgroupPermissions = parts[2]
		fallthrough
	case 2:
		if len(parts) == 2 && validPermissions(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
		fallthrough
	case 1:
		d.PathOnHost = parts[0]
	default:
		return bad("too many colons")
	}
	if !filepath.IsAbs(d.PathOnHost) {
		return bad(fmt.Sprintf("%q is not an absolute host path", d.PathOnHost))
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !filepath.IsAbs(d.PathInContainer) {
		return bad(fmt.Sprintf("%q is not an absolute path in the container", d.PathInContainer))
	}
	return d, nil
}

// deviceRuleRE is docker's --device-cgroup-rule syntax.
var deviceRuleRE = lazyRegexp(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// ParseDeviceCgroupRule reads --device-cgroup-rule 'c 1:3 mr' into a
// device cgroup allow rule.
func ParseDeviceCgroupRule(s string) (specs.LinuxDeviceCgroup, error) {
	m := deviceRuleRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return specs.LinuxDeviceCgroup{}, fmt.Errorf("invalid --device-cgroup-rule %q: use 'TYPE MAJOR:MINOR ACCESS' with TYPE a, b or c, * for any number, ACCESS some of rwm (e.g. 'c 1:3 mr')", s)
	}
	num := func(v string) *int64 {
		if v == "*" {
			n := int64(-1)
			return &n
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return &n
	}
	r := specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Major: num(m[2]), Minor: num(m[3]), Access: m[4]}
	if m[1] == "a" {
		r.Major, r.Minor = nil, nil
	}
	return r, nil
}

// devices resolves --device against the host's nodes into the spec's
// linux.devices, and adds its allow rules and --device-cgroup-rule's to
// r's device cgroup.
func devices(o Options, r *specs.LinuxResources) ([]specs.LinuxDevice, error) {
	for _, rule := range o.DeviceCgroupRules {
		dr, err := ParseDeviceCgroupRule(rule)
		if err != nil {
			return nil, err
		}
		r.Devices = append(r.Devices, dr)
	}
	var out []specs.LinuxDevice
	for _, d := range o.Devices {
		node, err := deviceNode(d.PathOnHost)
		if err != nil {
			return nil, err
		}
		node.Path = d.PathInContainer
		out = append(out, node)
		major, minor := node.Major, node.Minor
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: node.Type, Major: &major, Minor: &minor, Access: d.CgroupPermissions})
	}
	return out, nil
}

// deviceNode describes the host's device node at path.
func deviceNode(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, fmt.Errorf("--device %s: error gathering device information while adding custom device %q: %w", path, path, err)
	}
	d, ok := linuxDevice(&st)
	if !ok {
		return d, fmt.Errorf("--device %s: not a device node (give a character or block device such as /dev/fuse)", path)
	}
	return d, nil
}

// linuxDevice is the device node st describes (without its path), if it
// is a character or block device.
func linuxDevice(st *unix.Stat_t) (specs.LinuxDevice, bool) {
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, true
}

// ParseThrottleDevice reads --device-read-bps /dev/sda:1mb (a size) or,
// with iops, --device-read-iops /dev/sda:1000 (a number).
func ParseThrottleDevice(s string, iops bool) (ThrottleDevice, error) {
	path, rate, ok := strings.Cut(s, ":")
	usage := "use /dev/DEVICE:RATE, e.g. /dev/sda:1mb"
	if iops {
		usage = "use /dev/DEVICE:IOPS, e.g. /dev/sda:1000"
	}
	if !ok || !filepath.IsAbs(path) {
		return ThrottleDevice{}, fmt.Errorf("bad format %q: %s", s, usage)
	}
	var n int64
	var err error
	if iops {
		n, err = strconv.ParseInt(rate, 10, 64)
	} else {
		n, err = ParseMemory(rate)
	}
	if err != nil || n < 0 {
		return ThrottleDevice{}, fmt.Errorf("invalid rate %q in %q: %s", rate, s, usage)
	}
	return ThrottleDevice{Path: path, Rate: uint64(n)}, nil
}
