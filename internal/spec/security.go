package spec

import (
	"encoding/json"
	"fmt"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/runtime"
	"hull/internal/seccomp"
)

// DefaultCapabilities is docker's default set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCapabilities are the capabilities this kernel knows and hull itself
// may grant (its own bounding set, which a host can have reduced, e.g. no
// CAP_SYS_RESOURCE in a sandbox): what --privileged and --cap-add ALL give,
// as podman does, so the container can actually start.
func allCapabilities() []string {
	var out []string
	for i, name := range runtime.CapabilityNames() {
		if available(i) {
			out = append(out, name)
		}
	}
	return out
}

// available reports whether capability number i is in this process's
// bounding set (EINVAL: the kernel does not know it).
func available(i int) bool {
	v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0)
	return err == nil && v == 1
}

// normalizeCap turns "net_admin", "CAP_NET_ADMIN" or "all" into the
// canonical name.
func normalizeCap(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, nil
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if !slices.Contains(runtime.CapabilityNames(), n) {
		return "", fmt.Errorf("unknown capability %q (use a name from capabilities(7), e.g. NET_ADMIN, or ALL)", name)
	}
	return n, nil
}

// capabilities applies --privileged, --cap-add and --cap-drop to docker's
// default set with docker's precedence: privileged is everything; ALL in
// cap-add is everything but the drops; ALL in cap-drop is only the adds;
// otherwise the defaults minus the drops plus the adds.
func capabilities(o Options) ([]string, error) {
	if o.Privileged {
		return allCapabilities(), nil
	}
	norm := func(in []string) ([]string, error) {
		var out []string
		for _, c := range in {
			n, err := normalizeCap(c)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	}
	add, err := norm(o.CapAdd)
	if err != nil {
		return nil, err
	}
	for _, c := range add {
		if i := slices.Index(runtime.CapabilityNames(), c); i >= 0 && !available(i) {
			return nil, fmt.Errorf("--cap-add %s: this host does not let hull grant it (not in hull's own bounding set, see CapBnd in /proc/self/status)", c)
		}
	}
	drop, err := norm(o.CapDrop)
	if err != nil {
		return nil, err
	}
	var caps []string
	keep := func(c string) {
		if c != "ALL" && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range allCapabilities() {
			if !slices.Contains(drop, c) {
				keep(c)
			}
		}
	case slices.Contains(drop, "ALL"):
		for _, c := range add {
			keep(c)
		}
	default:
		for _, c := range DefaultCapabilities {
			if !slices.Contains(drop, c) {
				keep(c)
			}
		}
		for _, c := range add {
			keep(c)
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

// seccompProfile is --security-opt seccomp=: hull's default profile for
// the granted capabilities, none for "unconfined", or a docker profile.
func seccompProfile(profile string, caps []string) (*specs.LinuxSeccomp, error) {
	switch profile {
	case "":
		return seccomp.Default(caps), nil
	case "unconfined":
		return nil, nil
	}
	b, err := os.ReadFile(profile)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	s, err := ParseSeccompProfile(b, caps)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", profile, err)
	}
	return s, nil
}

// dockerProfile is docker's seccomp profile format (moby's
// profiles/seccomp/default.json).
type dockerProfile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet"`
	Architectures    []specs.Arch             `json:"architectures"`
	ArchMap          []dockerArch             `json:"archMap"`
	ListenerPath     string                   `json:"listenerPath"`
	ListenerMetadata string                   `json:"listenerMetadata"`
	Flags            []specs.LinuxSeccompFlag `json:"flags"`
	Syscalls         []dockerSyscall          `json:"syscalls"`
}

type dockerArch struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type dockerSyscall struct {
	Name     string                   `json:"name"`
	Names    []string                 `json:"names"`
	Action   specs.LinuxSeccompAction `json:"action"`
	Args     []specs.LinuxSeccompArg  `json:"args"`
	ErrnoRet *uint                    `json:"errnoRet"`
	Includes dockerFilter             `json:"includes"`
	Excludes dockerFilter             `json:"excludes"`
}

// dockerFilter makes a rule conditional: includes need all listed caps,
// one of the arches (GOARCH names) and at least minKernel; excludes drop
// the rule on any listed cap or arch.
type dockerFilter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

var seccompActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var seccompOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

var seccompArches = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
	specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
}

// nativeSeccompArch is this machine's SCMP_ARCH_ name, which picks the
// archMap entry that applies.
func nativeSeccompArch() specs.Arch {
	return map[string]specs.Arch{
		"amd64": specs.ArchX86_64, "386": specs.ArchX86, "arm64": specs.ArchAARCH64, "arm": specs.ArchARM,
		"ppc64le": specs.ArchPPC64LE, "ppc64": specs.ArchPPC64, "s390x": specs.ArchS390X,
		"riscv64": specs.ArchRISCV64, "loong64": specs.ArchLOONGARCH64, "mips64le": specs.ArchMIPSEL64,
	}[goruntime.GOARCH]
}

// ParseSeccompProfile converts a docker-format seccomp profile into the
// OCI form for a container with the given capabilities, resolving the
// profile's per-architecture, per-capability and per-kernel conditions.
func ParseSeccompProfile(b []byte, caps []string) (*specs.LinuxSeccomp, error) {
	var p dockerProfile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w (expected docker's format: {\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [...], \"action\": \"SCMP_ACT_ALLOW\"}]})", err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("defaultAction is missing (e.g. \"defaultAction\": \"SCMP_ACT_ERRNO\")")
	}
	if !slices.Contains(seccompActions, p.DefaultAction) {
		return nil, fmt.Errorf("unknown defaultAction %q (use one of %v)", p.DefaultAction, seccompActions)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("both architectures and archMap are set; use one of them")
	}
	s := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    p.Architectures,
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
		Flags:            p.Flags,
	}
	native := nativeSeccompArch()
	for _, a := range p.ArchMap {
		if a.Arch == native {
			s.Architectures = append(s.Architectures, a.Arch)
			s.Architectures = append(s.Architectures, a.SubArches...)
		}
	}
	for _, a := range s.Architectures {
		if !slices.Contains(seccompArches, a) {
			return nil, fmt.Errorf("unknown architecture %q (use SCMP_ARCH_ names such as %s)", a, native)
		}
	}
	kernel := kernelVersion()
	for i, sc := range p.Syscalls {
		names := sc.Names
		if sc.Name != "" {
			if len(names) > 0 {
				return nil, fmt.Errorf("syscalls[%d] has both name and names; use names", i)
			}
			names = []string{sc.Name}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("syscalls[%d] names no syscall", i)
		}
		if !slices.Contains(seccompActions, sc.Action) {
			return nil, fmt.Errorf("syscalls[%d] (%s): unknown action %q (use one of %v)", i, names[0], sc.Action, seccompActions)
		}
		for _, a := range sc.Args {
			if !slices.Contains(seccompOps, a.Op) {
				return nil, fmt.Errorf("syscalls[%d] (%s): unknown operator %q (use one of %v)", i, names[0], a.Op, seccompOps)
			}
		}
		if !sc.Includes.matches(caps, kernel, true) || sc.Excludes.matches(caps, kernel, false) {
			continue
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names: names, Action: sc.Action, ErrnoRet: sc.ErrnoRet, Args: sc.Args,
		})
	}
	return s, nil
}

// matches reports whether the filter's condition holds: for includes
// (all=true) every listed cap, one listed arch and the minimum kernel; for
// excludes any listed cap or arch.
func (f dockerFilter) matches(caps []string, kernel [2]int, all bool) bool {
	hasCap := func(c string) bool {
		n, err := normalizeCap(c)
		return err == nil && slices.Contains(caps, n)
	}
	if all {
		for _, c := range f.Caps {
			if !hasCap(c) {
				return false
			}
		}
		if len(f.Arches) > 0 && !slices.Contains(f.Arches, goruntime.GOARCH) {
			return false
		}
		if min, ok := parseKernel(f.MinKernel); ok && kernel != [2]int{} && (kernel[0] < min[0] || kernel[0] == min[0] && kernel[1] < min[1]) {
			return false
		}
		return true
	}
	return slices.ContainsFunc(f.Caps, hasCap) || slices.Contains(f.Arches, goruntime.GOARCH)
}

// kernelVersion is the running kernel's major.minor ({0,0} if unknown).
func kernelVersion() [2]int {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return [2]int{}
	}
	v, _ := parseKernel(unix.ByteSliceToString(u.Release[:]))
	return v
}

// parseKernel reads "5.10" out of "5.10.0-23-amd64".
func parseKernel(s string) ([2]int, bool) {
	major, rest, ok := strings.Cut(s, ".")
	if !ok {
		return [2]int{}, false
	}
	minor := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = rest[:i]
	}
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return [2]int{}, false
	}
	return [2]int{a, b}, true
}

// ApplySecurityOpt applies one --security-opt as docker does, in its
// KEY=VALUE or KEY:VALUE form: no-new-privileges[=true|false],
// seccomp=PROFILE.json|unconfined, systempaths=unconfined, label=... (SELinux labels: accepted,
// as on any host without SELinux) and apparmor=unconfined (a named
// profile is refused: hull applies none).
func ApplySecurityOpt(o *Options, so string) error {
	k, v, hasValue := strings.Cut(so, "=")
	if !hasValue {
		k, v, hasValue = strings.Cut(so, ":")
	}
	switch k {
	case "no-new-privileges":
		if v != "" && v != "true" && v != "false" {
			return fmt.Errorf("--security-opt %s: use no-new-privileges[=true|false] (or no-new-privileges:true)", so)
		}
		on := v != "false"
		o.NoNewPrivileges = &on
	case "seccomp":
		if v == "" {
			return fmt.Errorf("--security-opt %s: give seccomp=PROFILE.json or seccomp=unconfined", so)
		}
		o.Seccomp = v
	case "systempaths":
		if v != "unconfined" {
			return fmt.Errorf("--security-opt %s: use systempaths=unconfined", so)
		}
		o.SystemPathsUnconfined = true
	case "label":
		if v == "" {
			return fmt.Errorf("--security-opt %s: give label=disable or label=user:USER, role:, type:, level:", so)
		}
	case "apparmor":
		switch {
		case v == "":
			return fmt.Errorf("--security-opt %s: give apparmor=unconfined", so)
		case v == "unconfined":
		case !apparmorEnabled():
			return fmt.Errorf("--security-opt %s: AppArmor is not enabled on this host (no /sys/kernel/security/apparmor), so profile %q cannot be applied; use apparmor=unconfined or drop the option", so, v)
		default:
			return fmt.Errorf("--security-opt %s: hull does not load AppArmor profiles; use apparmor=unconfined or drop the option", so)
		}
	default:
		return fmt.Errorf("--security-opt %q: hull knows no-new-privileges, seccomp=, systempaths=unconfined, label= and apparmor=", so)
	}
	return nil
}

// apparmorEnabled tells whether the kernel has AppArmor on (a variable
// for tests).
var apparmorEnabled = func() bool {
	_, err := os.Stat("/sys/kernel/security/apparmor")
	return err == nil
}
