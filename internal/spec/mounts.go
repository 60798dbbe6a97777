package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/runtime"
)

// defaultMounts are docker's: /proc, a tmpfs /dev with ptys, a 64 MiB
// /dev/shm, mqueue, and /sys and its cgroups read-only unless privileged.
func defaultMounts(privileged bool) []specs.Mount {
	sysMode := "ro"
	if privileged {
		sysMode = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysMode}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", sysMode}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// maskedPaths and readonlyPaths are the runtime's defaults (docker's).
func maskedPaths() []string   { return runtime.DefaultSpec().Linux.MaskedPaths }
func readonlyPaths() []string { return runtime.DefaultSpec().Linux.ReadonlyPaths }

var propagations = []string{"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable"}

// tmpfsDefaults are docker's options for --tmpfs; the user's override
// their opposites (exec beats noexec).
var tmpfsDefaults = []string{"noexec", "nosuid", "nodev"}

// mounts lays out the filesystem: the defaults (minus any a user mount
// replaces: -v x:/dev/shm, or anything under a user's /dev), the user's
// mounts and tmpfs parents first, the init binary, then the engine's.
func mounts(o Options) ([]specs.Mount, error) {
	var user []specs.Mount
	seen := map[string]bool{}
	add := func(m specs.Mount) error {
		if seen[m.Destination] {
			return fmt.Errorf("duplicate mount point: %s (each container path can be mounted once)", m.Destination)
		}
		seen[m.Destination] = true
		user = append(user, m)
		return nil
	}
	for _, m := range o.Mounts {
		sm, err := userMount(m)
		if err != nil {
			return nil, err
		}
		if err := add(sm); err != nil {
			return nil, err
		}
	}
	tmpfsPaths := make([]string, 0, len(o.Tmpfs))
	for p := range o.Tmpfs {
		tmpfsPaths = append(tmpfsPaths, p)
	}
	sort.Strings(tmpfsPaths)
	for _, p := range tmpfsPaths {
		sm, err := userMount(Mount{Type: "tmpfs", Destination: p, Options: splitOptions(o.Tmpfs[p])})
		if err != nil {
			return nil, err
		}
		if err := add(sm); err != nil {
			return nil, err
		}
	}
	// Parents before children, so -v /a and -v /a/b both show.
	sort.SliceStable(user, func(i, j int) bool { return depth(user[i].Destination) < depth(user[j].Destination) })

	var out []specs.Mount
	for _, m := range defaultMounts(o.Privileged) {
		if seen[m.Destination] || (seen["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		if m.Destination == "/dev/shm" {
			switch {
			case o.IpcMode == "none":
				continue // docker: no /dev/shm at all
			case o.ShmSource != "":
				m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: o.ShmSource, Options: []string{"rbind", "rprivate"}}
			case o.ShmSize > 0:
				m.Options = append(slices.Clone(m.Options[:len(m.Options)-1]), fmt.Sprintf("size=%d", o.ShmSize))
			}
		}
		out = append(out, m)
	}
	out = append(out, user...)
	if o.Init && o.InitPath != "" {
		if !filepath.IsAbs(o.InitPath) {
			return nil, fmt.Errorf("init binary %q is not an absolute path", o.InitPath)
		}
		out = append(out, specs.Mount{Destination: InitTarget, Type: "bind", Source: o.InitPath, Options: []string{"bind", "ro", "nosuid", "nodev", "rprivate"}})
	}
	for _, m := range o.ExtraMounts {
		if !seen[m.Destination] {
			out = append(out, m)
		}
	}
	return out, nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

func splitOptions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// userMount converts a -v/--mount/--tmpfs mount: binds and volumes are
// recursive binds (rbind; "bind" in Options asks for a plain one), rw
// unless read-only, rprivate unless another propagation is given;
// tmpfs gets docker's noexec,nosuid,nodev under the user's options.
func userMount(m Mount) (specs.Mount, error) {
	dest := m.Destination
	if !filepath.IsAbs(dest) {
		return specs.Mount{}, fmt.Errorf("mount destination %q is not an absolute path", dest)
	}
	dest = filepath.Clean(dest)
	if dest == "/" {
		return specs.Mount{}, fmt.Errorf("mount destination can't be '/' (use --read-only or a different path)")
	}
	mode := "rw"
	if m.ReadOnly {
		mode = "ro"
	}
	switch m.Type {
	case "bind", "volume", "":
		if !filepath.IsAbs(m.Source) {
			return specs.Mount{}, fmt.Errorf("mount %s: source %q is not an absolute host path (named volumes must be resolved to their directory first)", dest, m.Source)
		}
		bind, prop := "rbind", "rprivate"
		var rest []string
		for _, opt := range m.Options {
			switch {
			case opt == "bind" || opt == "rbind":
				bind = opt
			case slices.Contains(propagations, opt):
				prop = opt
			case opt == "ro" || opt == "rw":
				if opt == "ro" {
					mode = "ro"
				}
			case opt == "nocopy" || opt == "z" || opt == "Z" || opt == "":
				// volume population and SELinux labels: nothing to mount
			default:
				rest = append(rest, opt)
			}
		}
		return specs.Mount{
			Destination: dest, Type: "bind", Source: filepath.Clean(m.Source),
			Options: append([]string{bind, mode, prop}, rest...),
		}, nil
	case "tmpfs":
		opts := mergeTmpfsOptions(append(append([]string{}, tmpfsDefaults...), m.Options...))
		if m.ReadOnly {
			opts = mergeTmpfsOptions(append(opts, "ro"))
		}
		return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	default:
		return specs.Mount{}, fmt.Errorf("mount %s: unknown type %q (use bind, volume or tmpfs)", dest, m.Type)
	}
}

// opposites pairs mount flags that cancel each other.
var opposites = map[string]string{
	"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev", "ro": "rw", "rw": "ro",
	"atime": "noatime", "noatime": "atime", "diratime": "nodiratime", "nodiratime": "diratime",
	"sync": "async", "async": "sync",
}

// mergeTmpfsOptions keeps the last of each flag pair and of each key=.
func mergeTmpfsOptions(opts []string) []string {
	var out []string
	for _, o := range opts {
		if o == "" {
			continue
		}
		key, _, isKV := strings.Cut(o, "=")
		out = slices.DeleteFunc(out, func(prev string) bool {
			if isKV {
				k, _, ok := strings.Cut(prev, "=")
				return ok && k == key
			}
			return prev == o || prev == opposites[o]
		})
		out = append(out, o)
	}
	return out
}

// hostDevices lists the device nodes under dir (the host's /dev) for a
// privileged container, skipping what the runtime mounts itself, as
// docker does.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // vanished or unreadable: not a device we can pass
		}
		if d.IsDir() {
			switch d.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "console" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return nil
		}
		dev, ok := linuxDevice(&st)
		if !ok {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		dev.Path = "/dev/" + rel
		out = append(out, dev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list host devices in %s: %w", dir, err)
	}
	return out, nil
}

// rootfsPropagation is the propagation the container's root needs for
// its mounts' (docker's rule): a shared mount propagates back to the
// host only through a shared root, a slave one needs at least a slave
// root; "" keeps the runtime's default (rslave).
func rootfsPropagation(ms []Mount) string {
	out := ""
	for _, m := range ms {
		for _, opt := range m.Options {
			switch opt {
			case "shared", "rshared":
				return "rshared"
			case "slave", "rslave":
				out = "rslave"
			}
		}
	}
	return out
}
