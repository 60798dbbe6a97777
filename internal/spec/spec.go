// Package spec turns an image's config plus the options of `hull run` and
// `hull create` into the OCI runtime spec (config.json) that hull's runtime
// executes. It follows docker's rules wherever a docker user would notice
// a difference: how --entrypoint and the command combine, how -u is
// resolved against the image's own /etc/passwd, the default capability
// set, mounts, devices and masked paths. hull differs on purpose in one
// place: no-new-privileges is on unless asked otherwise.
package spec

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options are the per-container settings of `hull run`/`create` (docker's flags).
type Options struct {
	ID       string // container ID (64 hex)
	Name     string
	Hostname string // default: first 12 chars of ID (the host's name with Network "host")
	// Domainname is the container's NIS domain name (--domainname).
	Domainname string
	// Expose are ports the container listens on beyond its image's
	// (--expose PORT[/PROTO] or a range), as the image's EXPOSE lists them.
	Expose []string

	// Process
	Entrypoint    []string // --entrypoint; with EntrypointSet and empty, clears the image's
	EntrypointSet bool
	Cmd           []string // args after the image; empty: image Cmd
	// Env is KEY=VALUE, merged over the image's Env (later wins); a bare
	// KEY removes the variable. PATH is defaulted if absent, HOSTNAME
	// set, TERM=xterm with TTY, HOME from the user's passwd entry.
	Env        []string
	WorkingDir string   // -w; default image WorkingDir or "/"; created if missing, as docker does
	User       string   // -u user[:group], names or ids, resolved in the rootfs; default image User
	GroupAdd   []string // --group-add: supplementary groups, names (from the image's /etc/group) or gids
	// GroupsStrict leaves out the groups the image's /etc/group lists the
	// user in: only the primary group and GroupAdd's (the CRI's
	// SupplementalGroupsPolicy Strict; docker's and the CRI's default
	// merges them).
	GroupsStrict bool
	TTY          bool   // -t: process.terminal
	Init         bool   // --init: InitPath runs as PID 1 with the process as its child
	InitPath     string // host path of the init binary, mounted read-only at InitTarget

	// Security
	Privileged      bool     // all caps, no seccomp (Seccomp is ignored, as in docker), no masked/readonly paths, all devices, rw /sys
	CapAdd, CapDrop []string // names with or without CAP_, "ALL" allowed, any case
	NoNewPrivileges *bool    // nil: true (hull's default)
	Seccomp         string   // "": hull's default profile; "unconfined"; or a docker-format JSON file
	ReadOnlyRootfs  bool
	// SystemPathsUnconfined is --security-opt systempaths=unconfined: no
	// masked or read-only paths under /proc and /sys.
	SystemPathsUnconfined bool
	// MaskedPaths and ReadonlyPaths, with CustomSystemPaths, replace the default
	// masked and read-only paths (a CRI container's security context
	// lists its own); ignored when privileged or systempaths=unconfined.
	MaskedPaths   []string
	ReadonlyPaths []string
	// CustomSystemPaths says MaskedPaths and ReadonlyPaths are set (an
	// empty list then means none).
	CustomSystemPaths bool

	// Storage
	Mounts []Mount           // -v, named volumes (resolved to a host dir by the engine), --mount
	Tmpfs  map[string]string // --tmpfs: container path -> options ("" for none)
	// ExtraMounts are appended last as they are, unless a user mount has
	// the same destination (a user's -v /etc/hosts wins, as in docker):
	// the engine's /etc/hostname, /etc/hosts and /etc/resolv.conf.
	ExtraMounts []specs.Mount

	// Resources (0 = unset)
	Memory, MemoryReservation, MemorySwap int64 // bytes; MemorySwap -1 = unlimited
	// MemorySwappiness is --memory-swappiness, 0 to 100 (nil: the
	// host's; cgroup v1 only, as docker).
	MemorySwappiness                      *int64
	NanoCPUs                              int64 // --cpus 1.5 => 1.5e9 -> quota 150000 per 100000
	CPUShares                             int64
	CpusetCpus                            string
	PidsLimit                             int64 // -1 unlimited
	Ulimits                               []Ulimit
	CPUPeriod, CPUQuota                   int64  // --cpu-period/--cpu-quota (µs); exclusive with NanoCPUs
	CPURealtimePeriod, CPURealtimeRuntime int64  // --cpu-rt-period/--cpu-rt-runtime (µs)
	CpusetMems                            string // --cpuset-mems: memory nodes (0-1, 0,2)
	KernelMemory                          int64  // --kernel-memory: accepted, ignored (the kernel dropped it)
	OomKillDisable                        bool
	OomScoreAdj                           *int // --oom-score-adj, -1000..1000
	BlkioWeight                           uint16
	// BlkioDevice* are --device-{read,write}-{bps,iops}: host device
	// path and rate.
	BlkioDeviceReadBps, BlkioDeviceWriteBps   []ThrottleDevice
	BlkioDeviceReadIOps, BlkioDeviceWriteIOps []ThrottleDevice
	Devices                                   []Device // --device
	DeviceCgroupRules                         []string // --device-cgroup-rule 'c 1:3 mr'
	Sysctls                                   map[string]string
	ShmSize                                   int64 // --shm-size in bytes; 0: docker's 64m
	// HugepageLimits and Unified are the CRI's hugepage limits (per page
	// size, hugetlb controller) and cgroup v2 files (a v1 host refuses
	// them, as runc does).
	HugepageLimits []specs.LinuxHugepageLimit
	Unified        map[string]string

	// Namespaces
	// Network is docker's network mode: "host" (the host's namespace),
	// "container:<name|id>" (another container's, resolved into
	// JoinNamespaces["net"]), "ns:<path>" (join the namespace at path),
	// or anything else, "none", "bridge" or a network's name: a new
	// namespace (with only lo; the engine adds the networks' interfaces).
	Network string
	// PidMode, IpcMode, UTSMode and CgroupnsMode are docker's modes:
	// "" (private), "host", "container:<name|id>" (pid, ipc), and for
	// ipc also "private", "shareable" and "none".
	PidMode, IpcMode, UTSMode, CgroupnsMode string
	// JoinNamespaces maps a namespace type (pid, ipc) to the path of
	// another container's namespace to join (/proc/PID/ns/X): the
	// engine's resolution of a container:C mode, made at create.
	JoinNamespaces map[string]string
	// UIDMap and GIDMap are --uidmap/--gidmap (container id, host id,
	// size): the container runs in a user namespace with these mappings
	// (a new one, or UsernsMode's). The engine idmaps its root
	// filesystem and bind mounts to them (see userns.go).
	UIDMap, GIDMap []specs.LinuxIDMapping
	// UsernsMode is "" (a new user namespace if UIDMap is set) or
	// "ns:PATH": join the user namespace pinned at PATH (a pod's, whose
	// mappings UIDMap and GIDMap repeat).
	UsernsMode string
	// IDMapBinds idmaps every bind mount in a user namespace (a CRI
	// container's, as kubelet expects), not only named volumes, the
	// engine's /etc files and mounts with the "idmap" option.
	IDMapBinds bool
	// ShmSource is a host directory bound on /dev/shm instead of a tmpfs
	// of its own: the host's with --ipc host, another container's with
	// --ipc container:C (the engine sets it).
	ShmSource   string
	CgroupsPath string // e.g. "/hull-<id>"
	// CgroupParent is --cgroup-parent: the cgroup under which the
	// engine puts the container's (/PARENT/hull-<id>).
	CgroupParent string
	Annotations  map[string]string
}

// Mount is one -v, --mount or named volume.
type Mount struct {
	Type                string // bind, volume, tmpfs
	Source, Destination string
	ReadOnly            bool
	// Options are extra mount options: a propagation mode (rprivate is
	// the default), "bind" for a non-recursive bind, tmpfs size=/mode=...
	Options []string
}

// Ulimit is one --ulimit name=soft[:hard]; -1 is unlimited.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// InitTarget is where --init's binary appears in the container.
const InitTarget = "/sbin/hull-init"

// DefaultPath is PATH when neither the image nor the user sets it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Generate builds the spec. rootfs is the container's mounted root
// filesystem (absolute path): users, groups and the working directory are
// looked up in it (the working directory is created if missing), and
// spec.Root.Path points at it. img may be nil (an image without config).
func Generate(img *v1.ConfigFile, rootfs string, o Options) (*specs.Spec, error) {
	if !filepath.IsAbs(rootfs) {
		return nil, fmt.Errorf("rootfs %q is not an absolute path", rootfs)
	}
	var ic v1.Config
	if img != nil {
		ic = img.Config
	}
	args, err := commandArgs(ic, o)
	if err != nil {
		return nil, err
	}
	hostname, err := hostnameFor(o)
	if err != nil {
		return nil, err
	}
	userSpec := o.User
	if userSpec == "" {
		userSpec = ic.User
	}
	user, err := ResolveUser(rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	if o.GroupsStrict {
		user.AdditionalGids = nil
	}
	gids, err := supplementaryGroups(rootfs, user, o.GroupAdd)
	if err != nil {
		return nil, err
	}
	cwd, err := workingDir(rootfs, ic, o)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(o)
	if err != nil {
		return nil, err
	}
	rlimits, err := rlimits(o.Ulimits)
	if err != nil {
		return nil, err
	}
	nnp := true
	if o.NoNewPrivileges != nil {
		nnp = *o.NoNewPrivileges
	}
	if o.Init {
		if o.InitPath == "" {
			return nil, fmt.Errorf("--init needs the host path of an init binary (Options.InitPath)")
		}
		args = append([]string{InitTarget, "--"}, args...)
	}

	proc := &specs.Process{
		Terminal: o.TTY,
		User: specs.User{
			UID: user.UID, GID: user.GID, AdditionalGids: gids,
			Username: user.Name,
		},
		Args:            args,
		Env:             environment(ic.Env, o, hostname, user.Home),
		Cwd:             cwd,
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps},
		Rlimits:         rlimits,
		NoNewPrivileges: nnp,
	}
	// A non-root process starts with empty effective and permitted sets,
	// as in docker: the capabilities only come back through a setuid or
	// file-capability binary, and the bounding set caps even those.
	if user.UID == 0 {
		proc.Capabilities.Effective = caps
		proc.Capabilities.Permitted = caps
	} else {
		proc.Capabilities.Effective = []string{}
		proc.Capabilities.Permitted = []string{}
	}

	mounts, err := mounts(o)
	if err != nil {
		return nil, err
	}
	res, err := resources(o)
	if err != nil {
		return nil, err
	}
	ns, err := namespaces(o)
	if err != nil {
		return nil, err
	}
	sysctls, err := checkSysctls(o, ns)
	if err != nil {
		return nil, err
	}
	devices, err := devices(o, res)
	if err != nil {
		return nil, err
	}
	if o.OomScoreAdj != nil {
		proc.OOMScoreAdj = o.OomScoreAdj
	}
	if o.UTSMode == "host" {
		hostname = "" // the host's own: not ours to set
	}
	linux := &specs.Linux{
		Resources:   res,
		CgroupsPath: o.CgroupsPath,
		Namespaces:  ns,
		Sysctl:      sysctls,
		Devices:     devices,
	}
	if o.Privileged {
		host, err := hostDevices("/dev")
		if err != nil {
			return nil, err
		}
		linux.Devices = append(host, linux.Devices...)
	} else {
		if !o.SystemPathsUnconfined {
			linux.MaskedPaths = maskedPaths()
			linux.ReadonlyPaths = readonlyPaths()
			if o.CustomSystemPaths {
				linux.MaskedPaths, linux.ReadonlyPaths = o.MaskedPaths, o.ReadonlyPaths
			}
		}
		if linux.Seccomp, err = seccompProfile(o.Seccomp, caps); err != nil {
			return nil, err
		}
	}

	linux.RootfsPropagation = rootfsPropagation(o.Mounts)
	s := &specs.Spec{
		Version:    specs.Version,
		Root:       &specs.Root{Path: rootfs, Readonly: o.ReadOnlyRootfs},
		Process:    proc,
		Hostname:   hostname,
		Domainname: o.Domainname,
		Mounts:     mounts,
		Linux:      linux,
	}
	if len(o.Annotations) > 0 {
		s.Annotations = maps.Clone(o.Annotations)
	}
	if err := userNamespace(s, o); err != nil {
		return nil, err
	}
	return s, nil
}

// commandArgs combines entrypoint and command with docker's rules: an
// --entrypoint (even an empty one) drops the image's Cmd, a command given
// on the command line replaces the image's Cmd.
func commandArgs(ic v1.Config, o Options) ([]string, error) {
	entrypoint, cmd := command(ic, o)
	args := append(append([]string{}, entrypoint...), cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified (the image has no Entrypoint or Cmd; give a command after the image name)")
	}
	return args, nil
}

// command is the entrypoint and command docker's rules give.
func command(ic v1.Config, o Options) (entrypoint, cmd []string) {
	entrypoint, cmd = ic.Entrypoint, ic.Cmd
	if o.EntrypointSet {
		entrypoint, cmd = o.Entrypoint, nil
		if len(entrypoint) == 0 || len(entrypoint) == 1 && entrypoint[0] == "" {
			entrypoint = nil // docker's CLI sends --entrypoint "" as [""]
		}
	}
	if len(o.Cmd) > 0 {
		cmd = o.Cmd
	}
	return entrypoint, cmd
}

// hostnameFor picks the container's hostname: the option, else the host's
// when sharing its network (as docker does), else the short container ID.
// Hostname is the container's host name for o, as Generate sets it.
func Hostname(o Options) (string, error) { return hostnameFor(o) }

func hostnameFor(o Options) (string, error) {
	h := o.Hostname
	if h == "" && (o.Network == "host" || o.UTSMode == "host") {
		var err error
		if h, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("hostname of the host: %w", err)
		}
	}
	if h == "" {
		h = o.ID
		if len(h) > 12 {
			h = h[:12]
		}
	}
	if h == "" {
		return "", fmt.Errorf("no hostname: set Options.ID or Options.Hostname")
	}
	if err := checkHostname(h); err != nil {
		return "", err
	}
	return h, nil
}

// checkHostname accepts what sethostname and resolvers agree on: at most
// 64 bytes of letters, digits, '-', '_' and '.', not starting with '-' or '.'.
func checkHostname(h string) error {
	bad := len(h) > 64 || h[0] == '-' || h[0] == '.'
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("invalid hostname %q: use up to 64 letters, digits, '-', '_' and '.'", h)
	}
	return nil
}

// environment builds the process environment in docker's order: the
// defaults (PATH, HOSTNAME, TERM with a tty), then the image's Env, then
// the user's, each replacing earlier values of the same variable in place;
// HOME comes from the user's passwd entry unless set.
func environment(imageEnv []string, o Options, hostname, home string) []string {
	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + hostname}
	if o.TTY {
		env = append(env, "TERM=xterm")
	}
	env = mergeEnv(env, imageEnv)
	env = mergeEnv(env, o.Env)
	if lookupEnv(env, "HOME") < 0 {
		env = append(env, "HOME="+home)
	}
	return env
}

// mergeEnv applies over to env: KEY=VALUE replaces or appends, a bare
// KEY removes.
func mergeEnv(env, over []string) []string {
	for _, kv := range over {
		key, _, hasValue := strings.Cut(kv, "=")
		i := lookupEnv(env, key)
		switch {
		case !hasValue && i >= 0:
			env = append(env[:i], env[i+1:]...)
		case !hasValue:
		case i >= 0:
			env[i] = kv
		default:
			env = append(env, kv)
		}
	}
	return env
}

func lookupEnv(env []string, key string) int {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return i
		}
	}
	return -1
}

// Effective is what a container runs with once its options are laid over
// its image's config: docker's inspect `Config` block. It is recorded
// when the container is created, so inspect shows it even after the image
// is gone.
type Effective struct {
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Entrypoint   []string            `json:"Entrypoint"`
	User         string              `json:"User"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// EffectiveConfig lays o, and the container's labels and stop signal,
// over img's config with docker's rules (img may be nil).
func EffectiveConfig(img *v1.ConfigFile, o Options, labels map[string]string, stopSignal string) Effective {
	var ic v1.Config
	if img != nil {
		ic = img.Config
	}
	e := Effective{
		Env:  mergeEnv(append([]string{}, ic.Env...), o.Env),
		User: ic.User, WorkingDir: ic.WorkingDir, ExposedPorts: ic.ExposedPorts, StopSignal: ic.StopSignal,
	}
	e.Entrypoint, e.Cmd = command(ic, o)
	if len(o.Expose) > 0 {
		e.ExposedPorts = maps.Clone(e.ExposedPorts)
		if e.ExposedPorts == nil {
			e.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range o.Expose {
			e.ExposedPorts[p] = struct{}{}
		}
	}
	if o.User != "" {
		e.User = o.User
	}
	if o.WorkingDir != "" {
		e.WorkingDir = o.WorkingDir
	}
	if stopSignal != "" {
		e.StopSignal = stopSignal
	}
	if len(ic.Labels)+len(labels) > 0 {
		e.Labels = map[string]string{}
		for k, v := range ic.Labels {
			e.Labels[k] = v
		}
		for k, v := range labels {
			e.Labels[k] = v
		}
	}
	return e
}

// ParseExpose parses --expose PORT[/PROTO] or START-END[/PROTO] into the
// ports it names, as an image's EXPOSE lists them ("80/tcp").
func ParseExpose(v string) ([]string, error) {
	ports, proto, _ := strings.Cut(v, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid --expose %q: the protocol is tcp, udp or sctp", v)
	}
	first, last, isRange := strings.Cut(ports, "-")
	lo, err1 := strconv.ParseUint(first, 10, 16)
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.ParseUint(last, 10, 16)
	}
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return nil, fmt.Errorf("invalid --expose %q: use PORT[/PROTO] or START-END[/PROTO], ports 1 to 65535", v)
	}
	var out []string
	for p := lo; p <= hi; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
