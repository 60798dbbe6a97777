package spec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ContainerMode is the container a "container:<name|id>" namespace mode
// names, or "" for any other mode.
func ContainerMode(mode string) string {
	c, _ := strings.CutPrefix(mode, "container:")
	if c == mode {
		return ""
	}
	return c
}

// nsPath is the path of a mode "ns:PATH" (join the namespace pinned at
// PATH: a pod's), "" for other modes.
func nsPath(mode string) string {
	p, ok := strings.CutPrefix(mode, "ns:")
	if !ok || !filepath.IsAbs(p) {
		return ""
	}
	return p
}

// CheckNamespaceModes checks --pid, --ipc, --uts and --cgroupns as
// docker's CLI does, with its messages, and their conflicts with
// --hostname and --sysctl.
func CheckNamespaceModes(o Options) error {
	container := func(flag, mode string) error {
		if c := ContainerMode(mode); c == "" && strings.HasPrefix(mode, "container:") {
			return fmt.Errorf("--%s %s: name the container after container: (container:NAME or container:ID)", flag, mode)
		}
		return nil
	}
	switch m := o.PidMode; {
	case m == "" || m == "host" || nsPath(m) != "":
	case strings.HasPrefix(m, "container:"):
		if err := container("pid", m); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--pid %q: invalid PID mode (use host or container:NAME)", m)
	}
	switch m := o.IpcMode; {
	case m == "" || m == "host" || m == "private" || m == "shareable" || m == "none" || nsPath(m) != "":
	case strings.HasPrefix(m, "container:"):
		if err := container("ipc", m); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--ipc %q: invalid IPC mode (use private, shareable, none, host or container:NAME)", m)
	}
	switch {
	case o.UTSMode == "", nsPath(o.UTSMode) != "":
	case o.UTSMode == "host":
		if o.Hostname != "" {
			return fmt.Errorf("conflicting options: --hostname and --uts host (the host's name is the container's)")
		}
	default:
		return fmt.Errorf("--uts %q: invalid UTS mode (use host)", o.UTSMode)
	}
	switch o.CgroupnsMode {
	case "", "private", "host":
	default:
		return fmt.Errorf("--cgroupns %q: invalid cgroup namespace mode (use host or private)", o.CgroupnsMode)
	}
	if o.ShmSize < 0 {
		return fmt.Errorf("invalid --shm-size %d: must be positive", o.ShmSize)
	}
	for k := range o.Sysctls {
		if err := ValidateSysctl(k); err != nil {
			return err
		}
	}
	return nil
}

// Namespaces are the namespaces of the spec Generate makes from o (the
// engine's spare monitor starts a pod container's first process in them
// before the spec exists; a user namespace, which the engine adds to a
// mapped container's spec, is not among them).
func Namespaces(o Options) ([]specs.LinuxNamespace, error) { return namespaces(o) }

// namespaces are docker's: a private pid, ipc, uts, mount and cgroup
// namespace, and a network namespace unless the host's is shared; the
// modes share the host's (no entry) or join another container's (a
// path the engine resolved into JoinNamespaces).
func namespaces(o Options) ([]specs.LinuxNamespace, error) {
	if err := CheckNamespaceModes(o); err != nil {
		return nil, err
	}
	var ns []specs.LinuxNamespace
	add := func(typ specs.LinuxNamespaceType, key, mode string) error {
		switch {
		case mode == "host":
		case nsPath(mode) != "":
			ns = append(ns, specs.LinuxNamespace{Type: typ, Path: nsPath(mode)})
		case ContainerMode(mode) != "":
			p := o.JoinNamespaces[key]
			if !filepath.IsAbs(p) {
				return fmt.Errorf("--%s %s: the container's namespace is not resolved (Options.JoinNamespaces[%q])", key, mode, key)
			}
			ns = append(ns, specs.LinuxNamespace{Type: typ, Path: p})
		default:
			ns = append(ns, specs.LinuxNamespace{Type: typ})
		}
		return nil
	}
	if err := add(specs.PIDNamespace, "pid", o.PidMode); err != nil {
		return nil, err
	}
	if err := add(specs.IPCNamespace, "ipc", o.IpcMode); err != nil {
		return nil, err
	}
	_ = add(specs.UTSNamespace, "uts", o.UTSMode)
	ns = append(ns, specs.LinuxNamespace{Type: specs.MountNamespace})
	_ = add(specs.CgroupNamespace, "cgroupns", o.CgroupnsMode)
	switch network := o.Network; {
	case network == "host":
	case strings.HasPrefix(network, "ns:") && filepath.IsAbs(network[3:]):
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: network[3:]})
	case strings.HasPrefix(network, "container:"):
		if err := add(specs.NetworkNamespace, "net", network); err != nil {
			return nil, err
		}
	default:
		// none, bridge or a network's name: a namespace of its own, which
		// the engine connects to the networks before the process starts.
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	return ns, nil
}

// ipcSysctls are the kernel.* sysctls an IPC namespace isolates (docker's
// list, opts.ValidateSysctl).
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// ValidateSysctl accepts the sysctls docker's --sysctl does: the ones a
// namespace of the container isolates (IPC's kernel.* and fs.mqueue.*,
// net.*), with docker's message for others.
func ValidateSysctl(key string) error {
	if slices.Contains(ipcSysctls, key) || strings.HasPrefix(key, "fs.mqueue.") || strings.HasPrefix(key, "net.") {
		return nil
	}
	return fmt.Errorf("sysctl '%s' is not allowed (only namespaced ones: %s, fs.mqueue.*, net.*)", key, strings.Join(ipcSysctls, ", "))
}

// ParseSysctl reads --sysctl KEY=VALUE and checks that KEY is allowed.
func ParseSysctl(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return "", "", fmt.Errorf("sysctl '%s' is not allowed (use --sysctl KEY=VALUE, e.g. net.ipv4.ip_forward=1)", s)
	}
	if ValidateSysctl(key) != nil {
		return "", "", fmt.Errorf("sysctl '%s' is not allowed (only namespaced ones: %s, fs.mqueue.*, net.*)", s, strings.Join(ipcSysctls, ", "))
	}
	return key, value, nil
}

// checkSysctls refuses a sysctl that would change the host's settings:
// net.* without a network namespace of the container's own, the IPC ones
// without a private IPC namespace (runc's messages).
func checkSysctls(o Options, ns []specs.LinuxNamespace) (map[string]string, error) {
	if len(o.Sysctls) == 0 {
		return nil, nil
	}
	private := func(t specs.LinuxNamespaceType) bool {
		return slices.ContainsFunc(ns, func(n specs.LinuxNamespace) bool { return n.Type == t && n.Path == "" })
	}
	for k := range o.Sysctls {
		switch {
		case strings.HasPrefix(k, "net.") && o.Network == "host":
			return nil, fmt.Errorf("sysctl %q not allowed in host network namespace (drop it, or run without --network host)", k)
		case !strings.HasPrefix(k, "net.") && !private(specs.IPCNamespace):
			return nil, fmt.Errorf("sysctl %q is not allowed in the host's or another container's IPC namespace (use a private --ipc)", k)
		}
	}
	out := make(map[string]string, len(o.Sysctls))
	for k, v := range o.Sysctls {
		out[k] = v
	}
	return out, nil
}

// CheckCgroupParent checks --cgroup-parent: a cgroup path below the
// hierarchy's root ("/" is taken off the front), without "..".
func CheckCgroupParent(p string) error {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("invalid --cgroup-parent %q: \"..\" is not allowed (give a path such as /mygroup or mygroup/sub)", p)
		}
	}
	if strings.Trim(p, "/") == "" {
		return fmt.Errorf("invalid --cgroup-parent %q: give a cgroup path such as /mygroup", p)
	}
	return nil
}
