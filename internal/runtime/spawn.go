package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/seccomp"
	"hull/internal/trace"
	"hull/internal/wire"
)

// initConfig is what the parent sends the container's first Go process
// once the namespaces exist (in the wire encoding, see sendMsg).
type initConfig struct {
	Exec    bool
	ID      string
	Spec    *specs.Spec
	Rootfs  string
	Bundle  string
	NoPivot bool
	// Which namespaces are new (their setup is ours to do).
	NewMount bool
	NewUTS   bool
	NewUser  bool
	// InUser: in a user namespace, new or joined (a pod's): device
	// nodes are bound from the host, mknod is refused.
	InUser    bool
	NewCgroup bool
	NewNet    bool // made by unshare or ahead (Prepared.NetNS): lo is ours to bring up
	// InCgroups: the process is in the container's cgroups already (the
	// constructor joined them), so a new cgroup namespace needs no wait.
	InCgroups bool
	// Cgroups are the container's cgroup directories, for cgroup mounts.
	Cgroups []cgroups.Mount
	// Rlimits, already clamped to what this host allows.
	Rlimits []specs.POSIXRlimit
	// Seccomp is the spec's filter compiled by the parent (and cached
	// across containers), so the init only loads it.
	Seccomp *seccomp.Program
	// File descriptors in the child.
	SyncFD    int
	FifoFD    int
	ConsoleFD int
	// rootfsTree is the root filesystem's mount tree the parent cloned
	// (open_tree) and sent with the configuration, for an init whose mount
	// namespace is older than that mount (see Early); 0 or -1: none.
	rootfsTree  int
	PreserveFDs int
	// AskHooks: stop before pivot_root so the parent runs prestart and
	// createRuntime hooks.
	AskHooks bool
	// State is given to createContainer and startContainer hooks.
	State specs.State
}

// syncMsg is what the Go side of the child reports.
type syncMsg struct {
	Type  string // "hooks", "ready", "error"
	Error string
}

// Create sets up a container from a bundle and leaves its init waiting for
// Start. On any failure everything made so far is undone. The init is a
// direct child of the calling process (the nsenter constructor forks it
// with CLONE_PARENT), so a supervisor that calls Create can reap it with
// wait4 and read its exit status; if the caller exits first, the init is
// reparented like any orphan.
func (r *Runtime) Create(id string, o CreateOptions) (c *Container, err error) {
	// What is not taken goes; of what is, what Create does not keep.
	defer o.Prepared.Close()
	var prep Prepared
	if o.Prepared != nil {
		prep = *o.Prepared
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	spec := prep.Spec
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return nil, err
		}
	}
	h := spec.Hooks
	sealed := needsSealedInit(spec) || o.SealedInit
	if sealed {
		// Copying the binary takes a while; start it now.
		go func() { _, _ = r.sealedInit() }()
	}
	if err := validateSpec(spec); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	// An early process's mount namespace is older than the rootfs mount:
	// it gets a clone of that mount (kernels since 5.2).
	early := prep.Early
	rootfsTree := -1
	if early != nil && early.fits(id, spec, o, sealed) {
		if t, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE); err == nil {
			rootfsTree = t
		}
	}
	if rootfsTree >= 0 {
		early.taken = true
		defer unix.Close(rootfsTree)
	} else if early != nil {
		early.Close()
		early = nil
	}
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, fmt.Errorf("state root %s: %w", r.Root, err)
	}
	dir := filepath.Join(r.Root, id)
	lock := early.holdLock()
	if lock == nil {
		if lock, err = r.claim(id, dir); err != nil {
			return nil, err
		}
	}
	defer lock.Close()
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("container %s: rootfs: %w", id, err)
	}
	c = &Container{ID: id, Bundle: bundle, Rootfs: rootfs, Spec: spec, Created: time.Now().UTC(), dir: dir}
	var cg *cgroups.Manager
	pid := 0
	if early != nil {
		cg, pid = early.cg, early.sp.pid
	}
	defer func() {
		if err == nil {
			return
		}
		if pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
		}
		if cg != nil {
			cg.Kill()
			_ = cg.Destroy()
		}
		os.RemoveAll(dir)
	}()

	trace.Mark("runtime: spec loaded")
	c.CgroupPath = cgroups.ContainerPath(spec.Linux.CgroupsPath, id)
	if cg == nil {
		if cg, err = cgroups.New(c.CgroupPath); err != nil {
			return nil, err
		}
	}
	c.cg = cg
	if early != nil {
		c.CgroupCreated = cg.Created
	}
	setCgroups := func() error {
		if err := cg.Set(withDefaultDevices(spec)); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
		trace.Mark("runtime: cgroup set")
		return nil
	}
	// The cgroups are made while the init binary starts (see spawn.run).
	prepareCgroups := func() error {
		err := makeCgroups(id, dir, c.CgroupPath, cg)
		c.CgroupCreated = cg.Created
		if err == nil {
			err = setCgroups()
		}
		return err
	}

	var fifo *os.File
	if early != nil {
		fifo = early.fifo
	} else if fifo, err = openFifo(dir); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	defer fifo.Close()

	sp := &spawn{r: r, cgroup: cg, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr, preserve: o.PreserveFDs, hostExe: !sealed, selfJoin: selfJoinOK(spec), prepare: prepareCgroups}
	ic := &initConfig{ID: id, Spec: spec, Rootfs: rootfs, Bundle: bundle, NoPivot: o.NoPivot, Cgroups: cg.Mounts()}
	if ic.Seccomp, err = r.compileSeccomp(spec); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	ic.Spec = initSpec(spec, ic.Seccomp != nil)
	takeNetNS := prep.NetNS != nil && !slices.ContainsFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace
	})
	for _, ns := range spec.Linux.Namespaces {
		typ := nsName(ns.Type)
		if typ == "" {
			return nil, fmt.Errorf("container %s: unknown namespace type %q", id, ns.Type)
		}
		if typ == "uts" {
			ic.NewUTS = true // joined or new, it is not the host's
		}
		if typ == "net" && ns.Path == "" {
			ic.NewNet = true
		}
		if typ == "user" {
			ic.InUser = true
		}
		if ns.Path != "" {
			sp.join = append(sp.join, typ+"="+ns.Path)
			continue
		}
		if typ == "net" && takeNetNS {
			sp.join = append(sp.join, joinPath("net", prep.NetNS))
			continue
		}
		if typ != "cgroup" {
			sp.newFlags |= nsFlag(typ)
		}
		switch typ {
		case "mnt":
			ic.NewMount = true
		case "user":
			ic.NewUser = true
		case "cgroup":
			ic.NewCgroup = true
		}
	}
	if sp.newFlags&unix.CLONE_NEWPID == 0 {
		c.SharedPidNS = true
	}
	if ic.NewUser {
		sp.uidMaps, sp.gidMaps = spec.Linux.UIDMappings, spec.Linux.GIDMappings
	}
	if ic.NewUser || len(spec.Linux.UIDMappings) > 0 {
		// The init reopens exec.fifo as the container's root, which is
		// an unprivileged uid on the host (in a user namespace of its
		// own, or one it joins: a pod's, whose mappings the spec repeats).
		if err = os.Chown(c.fifoPath(), int(hostID(spec.Linux.UIDMappings, 0)), int(hostID(spec.Linux.GIDMappings, 0))); err != nil {
			return nil, fmt.Errorf("container %s: exec fifo: %w", id, err)
		}
	}
	if sp.newFlags&unix.CLONE_NEWTIME != 0 {
		for clock, off := range spec.Linux.TimeOffsets {
			sp.timeOffsets += fmt.Sprintf("%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
	}
	ic.Rlimits = r.clampRlimits(spec.Process.Rlimits)
	if missing := unavailableCaps(spec.Process.Capabilities); len(missing) > 0 {
		r.warn("capabilities %v are not available to this runtime on this host; the container runs without them", missing)
	}
	sp.files = append(sp.files, fifo)
	ic.FifoFD = 3 + o.PreserveFDs + 1
	ic.ConsoleFD = -1
	if spec.Process.Terminal {
		console := o.Console
		if console == nil {
			if o.ConsoleSocket == "" {
				return nil, fmt.Errorf("container %s: process.terminal is true but no --console-socket was given", id)
			}
			if console, err = dialConsole(o.ConsoleSocket); err != nil {
				return nil, fmt.Errorf("container %s: %w", id, err)
			}
			defer console.Close()
		}
		sp.files = append(sp.files, console)
		ic.ConsoleFD = ic.FifoFD + 1
	}
	ic.AskHooks = h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0)
	ic.State = specs.State{Version: specs.Version, ID: id, Status: specs.StateCreating, Bundle: bundle, Annotations: spec.Annotations}
	sp.init = ic
	sp.onHooks = func(p int) error {
		st := ic.State
		st.Pid = p
		for _, hk := range h.Prestart {
			if err := runHook(hk, st); err != nil {
				return fmt.Errorf("prestart hook: %w", err)
			}
		}
		for _, hk := range h.CreateRuntime {
			if err := runHook(hk, st); err != nil {
				return fmt.Errorf("createRuntime hook: %w", err)
			}
		}
		return nil
	}
	sp.onPid = func(p int) error {
		pid = p
		if a := spec.Process.OOMScoreAdj; a != nil {
			if err := os.WriteFile("/proc/"+strconv.Itoa(p)+"/oom_score_adj", []byte(strconv.Itoa(*a)), 0); err != nil {
				return fmt.Errorf("oom_score_adj: %w", err)
			}
		}
		return nil
	}
	trace.Mark("runtime: spawning init")
	if early != nil {
		// Started already (see Early); its cgroups exist, limits come now,
		// and the clone of the rootfs mount goes with the configuration.
		sp.pid, sp.sync, sp.joined = early.sp.pid, early.sp.sync, early.sp.joined
		early.sp.sync = nil
		ic.rootfsTree = rootfsTree
		if early.limitsOf != spec {
			err = setCgroups()
		}
		if err == nil {
			err = sp.finish()
		}
	} else {
		err = sp.run()
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	trace.Mark("runtime: init ready")
	c.Pid = pid
	if c.PidStartTime, _, err = procStartTime(pid); err != nil {
		return nil, fmt.Errorf("container %s: init exited during create: %w", id, err)
	}
	if err = c.save(); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err = writePidFile(o.PidFile, pid); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
	}
	return c, nil
}

// withDefaultDevices returns the spec's resources with the device rules
// every container needs around them, as runc does: deny-all first, then
// the spec's rules, then the standard /dev nodes,
// ptys, mknod of anything (opening still needs an allow rule), and the
// nodes of linux.devices.
func withDefaultDevices(spec *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if spec.Linux.Resources != nil {
		r = *spec.Linux.Resources
	}
	i64 := func(v int64) *int64 { return &v }
	wild := i64(-1)
	// No rules at all would leave every host device open; start from
	// deny-all, as runc does.
	r.Devices = append([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, r.Devices...)
	r.Devices = append(r.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: wild, Minor: wild, Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: wild, Minor: wild, Access: "m"},
	)
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}} {
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(d[0]), Minor: i64(d[1]), Access: "rwm"})
	}
	// A node the spec's own rules name keeps their access (docker's
	// --device /dev/x:r is readable only); others are opened fully.
	named := func(t string, major, minor int64) bool {
		for _, rule := range spec.Linux.Resources.Devices {
			if rule.Allow && rule.Type == t && rule.Major != nil && *rule.Major == major && rule.Minor != nil && *rule.Minor == minor {
				return true
			}
		}
		return false
	}
	for _, d := range spec.Linux.Devices {
		t := d.Type
		if t == "u" {
			t = "c"
		}
		if t == "p" || spec.Linux.Resources != nil && named(t, d.Major, d.Minor) {
			continue
		}
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	return &r
}

// initSpec is the spec as the init needs it, without what the parent has
// already done: the resources (cgroups are set before it starts) and, once
// compiled, the seccomp rules (a default profile is hundreds of syscall
// names the init would receive for nothing), nor the other platforms'
// parts. The caller's spec is not changed.
func initSpec(spec *specs.Spec, seccompCompiled bool) *specs.Spec {
	s := *spec
	// Nothing the init reads is there, and a Windows credential spec
	// (any JSON value) could not be sent (see package wire).
	s.Windows, s.Solaris, s.VM, s.ZOS = nil, nil, nil, nil
	if spec.Linux == nil {
		return &s
	}
	l := *spec.Linux
	l.Resources = nil
	if seccompCompiled && l.Seccomp != nil {
		// Still set: the init orders its loading by it.
		l.Seccomp = &specs.LinuxSeccomp{DefaultAction: l.Seccomp.DefaultAction}
	}
	s.Linux = &l
	return &s
}

// selfJoinOK tells whether the constructor may join the container's
// cgroups before it forks: for a moment its own process counts against
// the pids limit too, so a very small limit is left to the slow move.
func selfJoinOK(spec *specs.Spec) bool {
	if spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.Pids != nil {
		if l := spec.Linux.Resources.Pids.Limit; l != nil && *l > 0 && *l < 16 {
			return false
		}
	}
	return true
}

// needsSealedInit reports whether anything inside the container could
// reach the init while it still runs hull's code, and so open
// /proc/<init>/exe (the CVE-2019-5736 attack): then the init must run from
// a sealed memfd copy of the binary, never from the host's file. A new pid
// namespace holds nobody but the init until it execs the user program,
// unless container code runs first as a createContainer or startContainer
// hook. A shared or joined pid namespace holds other processes. (Processes
// that see the host's pids can already reach the hull CLI process itself,
// which runs from the host binary with any runtime; the copy cannot help
// there.) Exec'd processes always use the copy.
func needsSealedInit(spec *specs.Spec) bool {
	newPid := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			newPid = true
		}
	}
	if !newPid {
		return true
	}
	h := spec.Hooks
	return h != nil && (len(h.CreateContainer) > 0 || len(h.StartContainer) > 0)
}

// clampRlimits lowers any hard limit above this host's own hard limit to
// it, with a warning: without CAP_SYS_RESOURCE raising it fails, and a
// container that asks for more than the host has is better run than refused.
func (r *Runtime) clampRlimits(in []specs.POSIXRlimit) []specs.POSIXRlimit {
	out := make([]specs.POSIXRlimit, 0, len(in))
	for _, rl := range in {
		res, ok := rlimitByName[rl.Type]
		if !ok {
			out = append(out, rl) // the init reports unknown names
			continue
		}
		var host unix.Rlimit
		if err := unix.Getrlimit(res, &host); err == nil && rl.Hard > host.Max && !hasCapSysResource() {
			r.warn("%s: hard limit %d is above this host's %d (no CAP_SYS_RESOURCE); using %d", rl.Type, rl.Hard, host.Max, host.Max)
			rl.Hard = host.Max
			if rl.Soft > rl.Hard {
				rl.Soft = rl.Hard
			}
		}
		out = append(out, rl)
	}
	return out
}

func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0
}

func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return f, nil
}

// nsName normalizes an OCI namespace type to the /proc/PID/ns name.
func nsName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.PIDNamespace:
		return "pid"
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	case specs.IPCNamespace:
		return "ipc"
	case specs.UTSNamespace:
		return "uts"
	case specs.UserNamespace:
		return "user"
	case specs.CgroupNamespace:
		return "cgroup"
	case specs.TimeNamespace:
		return "time"
	}
	return ""
}

func nsFlag(name string) uintptr {
	switch name {
	case "pid":
		return unix.CLONE_NEWPID
	case "net":
		return unix.CLONE_NEWNET
	case "mnt":
		return unix.CLONE_NEWNS
	case "ipc":
		return unix.CLONE_NEWIPC
	case "uts":
		return unix.CLONE_NEWUTS
	case "user":
		return unix.CLONE_NEWUSER
	case "cgroup":
		return unix.CLONE_NEWCGROUP
	case "time":
		return unix.CLONE_NEWTIME
	}
	return 0
}

// spawn starts one process into a container: the init at create, or an
// exec'd process.
type spawn struct {
	join             []string // "type=path", for the nsenter constructor
	newFlags         uintptr
	timeOffsets      string
	uidMaps, gidMaps []specs.LinuxIDMapping
	cgroup           *cgroups.Manager
	preserve         int
	files            []*os.File // fds after the sync socket, in order
	stdin            *os.File
	stdout           *os.File
	stderr           *os.File
	init             *initConfig
	onPid            func(pid int) error
	onHooks          func(pid int) error
	// keepSync leaves the parent's end of the sync socket open for the
	// caller (exec waits on it to learn that execve succeeded).
	keepSync bool
	hostExe  bool // exec the host binary, not a sealed copy (see needsSealedInit)
	// selfJoin lets the process join sp.cgroup itself, before it forks
	// the container's first process, instead of being moved there.
	selfJoin bool
	// via starts the init binary (exec only), and reaps it.
	via Supervisor
	// prepare, if set, makes sp.cgroup while the init binary starts; the
	// constructor waits for it ('c') before it joins.
	prepare func() error
	r       *Runtime
	sync    *os.File
	pid     int
	joined  bool // the constructor joined sp.cgroup (see start)
}

// joinEnv tells the namespace constructor (package nsenter) which cgroup
// directories to join itself: every v1 one, by writing 0 to its tasks file
// while single-threaded, and the cgroup2 one (intoV2) by forking into it
// with clone3. Neither takes the kernel's global threadgroup lock for
// writing, as moving a process by pid (Manager.Apply) does: the first
// such move after a quiet spell waits for an RCU grace period, 4-15 ms on
// a small VM, and held up most container starts.
func joinEnv(cg *cgroups.Manager) (env []string, intoV2 bool) {
	var v1 []string
	for _, mt := range cg.Mounts() {
		if mt.V2 {
			env = append(env, "_HULL_CGROUP_V2="+mt.Dir)
			intoV2 = true
		} else {
			v1 = append(v1, mt.Dir)
		}
	}
	if len(v1) > 0 {
		env = append(env, "_HULL_CGROUP_V1="+strings.Join(v1, "\n"))
	}
	return env, intoV2
}

// A process is a child subreaper only while one of its spawns needs it:
// long-lived callers (a CRI server, tests) must not adopt every orphan of
// their descendants for good.
var (
	subreaperMu    sync.Mutex
	subreaperUsers int
)

func holdSubreaper() error {
	subreaperMu.Lock()
	defer subreaperMu.Unlock()
	if subreaperUsers == 0 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("become child subreaper: %w", err)
		}
	}
	subreaperUsers++
	return nil
}

func releaseSubreaper() {
	subreaperMu.Lock()
	defer subreaperMu.Unlock()
	if subreaperUsers--; subreaperUsers == 0 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
}

// initExe is the binary a container's init (or exec'd process) starts
// from: r.InitPath, else this very binary.
func (r *Runtime) initExe() string {
	if r.InitPath != "" {
		return r.InitPath
	}
	return "/proc/self/exe"
}

// sealedInit returns a memfd holding a copy of the init binary, sealed
// against any change, made once per process. The container's init is
// exec'd from it, so even a process that gets hold of /proc/<init>/exe can
// only reach the copy, never the host's binary (the CVE-2019-5736 class
// of escapes).
func (r *Runtime) sealedInit() (int, error) {
	r.sealOnce.Do(func() { r.sealFD, r.sealErr = sealedCopy(r.initExe()) })
	return r.sealFD, r.sealErr
}

func sealedCopy(path string) (int, error) {
	src, err := os.Open(path)
	if err != nil {
		return -1, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return -1, err
	}
	fd, err := unix.MemfdCreate("hull-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	defer unix.Close(fd)
	for left := st.Size(); left > 0; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(left))
		if err != nil {
			return -1, fmt.Errorf("copy %s into memfd: %w", path, err)
		}
		if n == 0 {
			break
		}
		left -= int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return -1, fmt.Errorf("seal memfd: %w", err)
	}
	// Keep it above every fd the child is given, so os/exec's dup2s never
	// overwrite it before execve resolves the path.
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 1000)
	if err != nil {
		return -1, fmt.Errorf("dup memfd: %w", err)
	}
	return high, nil
}

// run starts the child and drives it until it reports ready (or, for exec,
// until the handshake is done).
func (sp *spawn) run() error {
	if err := sp.start(); err != nil {
		return err
	}
	return sp.finish()
}

// start starts the child and waits for the pid of the process that goes on
// into the container (the constructor's fork, see package nsenter), which
// then waits for its configuration; finish sends it. The parent's end of
// the sync socket is in sp.sync meanwhile.
func (sp *spawn) start() (err error) {
	exePath := sp.r.initExe()
	if !sp.hostExe {
		exe, err := sp.r.sealedInit()
		if err != nil {
			return err
		}
		exePath = "/proc/self/fd/" + strconv.Itoa(exe)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()
	defer func() {
		if err != nil {
			parent.Close()
		}
	}()

	syncFD := 3 + sp.preserve
	extra := make([]*os.File, 0, sp.preserve+1+len(sp.files))
	for i := 0; i < sp.preserve; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved"))
	}
	extra = append(extra, child)
	extra = append(extra, sp.files...)
	sp.init.SyncFD = syncFD
	sp.init.PreserveFDs = sp.preserve

	cmd := &exec.Cmd{
		Path: exePath,
		Args: []string{"hull", "init"},
		// One P: the init's Go code runs on its one locked thread, and
		// more Ps only had the runtime start and wake threads for nothing
		// (about a millisecond of each start on two processors). The
		// program gets the spec's environment, not this one.
		Env:        []string{"_HULL_SYNCFD=" + strconv.Itoa(syncFD), "GOMAXPROCS=1"},
		Stdin:      orStd(sp.stdin, os.Stdin),
		Stdout:     orStd(sp.stdout, os.Stdout),
		Stderr:     orStd(sp.stderr, os.Stderr),
		ExtraFiles: extra,
	}
	if len(sp.join) > 0 {
		cmd.Env = append(cmd.Env, "_HULL_NS_JOIN="+strings.Join(sp.join, "\n"))
	}
	if sp.newFlags != 0 {
		cmd.Env = append(cmd.Env, "_HULL_NS_NEW="+strconv.FormatUint(uint64(sp.newFlags), 16))
	}
	if sp.timeOffsets != "" {
		cmd.Env = append(cmd.Env, "_HULL_TIMENS_OFFSETS="+sp.timeOffsets)
	}
	if v := os.Getenv("HULL_TRACE"); v != "" {
		cmd.Env = append(cmd.Env, "HULL_TRACE="+v)
	}
	sp.joined = sp.cgroup != nil && sp.selfJoin
	if sp.joined {
		env, intoV2 := joinEnv(sp.cgroup)
		if intoV2 {
			// Born into its cgroup2 directory, the process is the
			// constructor's child, handed to us when it exits.
			if err := holdSubreaper(); err != nil {
				return err
			}
			defer releaseSubreaper()
		}
		cmd.Env = append(cmd.Env, env...)
		if sp.prepare != nil {
			cmd.Env = append(cmd.Env, "_HULL_CGROUP_WAIT=1")
		}
	}
	start := cmd.Start
	if sp.via != nil {
		start = func() error { return sp.via.StartInit(cmd) }
	}
	if err := start(); err != nil {
		return fmt.Errorf("start init: %w", err)
	}
	// The child has its end; holding ours would hide the child's death
	// (no end-of-file) and leave this process waiting forever.
	child.Close()
	trace.Mark("runtime: init exec'd")
	// The intermediate process exits as soon as it has forked; reap it
	// (a supervisor reaps it itself).
	reaped := sp.via != nil
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	if sp.prepare != nil {
		err := sp.prepare()
		trace.Mark("runtime: cgroups made")
		if err == nil && sp.joined {
			if _, werr := parent.Write([]byte{'c'}); werr != nil {
				err = fmt.Errorf("sync with init: %w", werr)
			}
		}
		if err != nil {
			return err // the intermediate is killed and reaped below
		}
	}
	buf := make([]byte, 64)
	for sp.pid == 0 {
		n, err := parent.Read(buf)
		if err != nil || n == 0 {
			if !reaped {
				_ = cmd.Wait()
				reaped = true
			}
			return fmt.Errorf("init exited during namespace setup (%v)", cmd.ProcessState)
		}
		switch buf[0] {
		case 'U':
			if err := writeIDMaps(cmd.Process.Pid, sp.uidMaps, sp.gidMaps); err != nil {
				return err
			}
			if _, err := parent.Write([]byte{'u'}); err != nil {
				return fmt.Errorf("sync with init: %w", err)
			}
		case 'P':
			if n != 5 {
				return errors.New("sync with init: short pid message")
			}
			sp.pid = int(int32(binary.NativeEndian.Uint32(buf[1:5])))
			trace.Mark("runtime: init pid")
		case 'E':
			return errors.New(string(buf[1:n]))
		default:
			return fmt.Errorf("sync with init: unexpected message %q", buf[:n])
		}
	}
	if !reaped {
		_ = cmd.Wait()
		reaped = true
	}
	sp.sync = parent
	return nil
}

// finish configures the process start left waiting and drives it until it
// reports ready (or, for exec, until the handshake is done).
func (sp *spawn) finish() error {
	parent := sp.sync
	if !sp.keepSync {
		defer parent.Close()
		sp.sync = nil
	}
	if sp.onPid != nil {
		if err := sp.onPid(sp.pid); err != nil {
			return err
		}
	}
	// Normally the constructor joined the cgroups itself (see
	// nsenter.c). Otherwise the process is moved now: that can wait for
	// an RCU grace period (milliseconds), so an init does it while it
	// boots and builds its rootfs. It must be done before hooks run and
	// before create returns (so before the user process can start). An
	// exec'd process goes straight to execve, so it waits.
	applied := make(chan error, 1)
	if sp.cgroup == nil || sp.joined {
		applied <- nil
	} else if sp.init.Exec {
		applied <- sp.cgroup.Apply(sp.pid)
	} else {
		go func() { applied <- sp.cgroup.Apply(sp.pid) }()
	}
	waitApplied := func() error {
		err := <-applied
		applied <- err
		return err
	}
	defer waitApplied()
	if sp.init.Exec {
		if err := waitApplied(); err != nil {
			return err
		}
	}
	// Hooks the init runs get the pid as the host sees it.
	sp.init.State.Pid = sp.pid
	sp.init.InCgroups = sp.joined
	if err := sendMsgFD(parent, sp.init, sp.init.rootfsTree); err != nil {
		return err
	}
	if sp.init.Exec {
		return nil
	}
	buf := make([]byte, 1<<16)
	for {
		var m syncMsg
		if err := readMsg(parent, buf, &m); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("init exited during setup (see its stderr)")
			}
			return err
		}
		switch m.Type {
		case "hooks":
			if err := waitApplied(); err != nil {
				_ = sendMsg(parent, syncMsg{Type: "error", Error: err.Error()})
				return err
			}
			if err := sp.onHooks(sp.pid); err != nil {
				_ = sendMsg(parent, syncMsg{Type: "error", Error: err.Error()})
				return err
			}
			if err := sendMsg(parent, syncMsg{Type: "hooks-done"}); err != nil {
				return err
			}
		case "cgroup":
			if err := waitApplied(); err != nil {
				_ = sendMsg(parent, syncMsg{Type: "error", Error: err.Error()})
				return err
			}
			if err := sendMsg(parent, syncMsg{Type: "cgroup-done"}); err != nil {
				return err
			}
		case "ready":
			return waitApplied()
		case "error":
			return errors.New(m.Error)
		default:
			return fmt.Errorf("sync with init: unexpected message %q", m.Type)
		}
	}
}

func orStd(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

// The messages between a process and the init it starts are Go values in
// the wire encoding, not JSON: the init would spend about a millisecond
// building JSON decoders for a spec before anything else (see package
// wire).

func sendMsg(f *os.File, v any) error {
	return sendMsgFD(f, v, -1)
}

// sendMsgFD sends v as one message, with fd (SCM_RIGHTS) when it is above
// 0 (descriptor 0 is stdin, never sent).
func sendMsgFD(f *os.File, v any, fd int) error {
	b, err := wire.Append(nil, v)
	if err != nil {
		return fmt.Errorf("sync socket: %w", err)
	}
	if fd <= 0 {
		_, err = f.Write(b)
	} else {
		var rc syscall.RawConn
		if rc, err = f.SyscallConn(); err == nil {
			cerr := rc.Write(func(s uintptr) bool {
				err = unix.Sendmsg(int(s), b, unix.UnixRights(fd), nil, 0)
				return err != unix.EAGAIN
			})
			if err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("sync socket: %w", err)
	}
	return nil
}

// readMsg reads one message of the sync socket into v.
func readMsg(f *os.File, buf []byte, v any) error {
	_, err := readMsgFD(f, buf, v)
	return err
}

// readMsgFD reads one message into v, and returns the descriptor sent
// with it (SCM_RIGHTS, see sendMsgFD), or -1.
func readMsgFD(f *os.File, buf []byte, v any) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn, flags int
	cerr := rc.Read(func(s uintptr) bool {
		n, oobn, flags, _, err = unix.Recvmsg(int(s), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return err != unix.EAGAIN
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return -1, fmt.Errorf("sync socket: %w", err)
	}
	fd := -1
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if fds, perr := unix.ParseUnixRights(&m); perr == nil && len(fds) > 0 {
				fd = fds[0]
			}
		}
	}
	if n == 0 {
		return fd, io.EOF
	}
	if flags&unix.MSG_TRUNC != 0 {
		return fd, fmt.Errorf("sync socket: message longer than %d bytes", len(buf))
	}
	if err := wire.Decode(buf[:n], v); err != nil {
		return fd, fmt.Errorf("sync socket: %w", err)
	}
	return fd, nil
}

// writeIDMaps writes the user namespace's uid and gid maps of pid.
func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	write := func(file string, ms []specs.LinuxIDMapping) error {
		if len(ms) == 0 {
			return nil
		}
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		p := "/proc/" + strconv.Itoa(pid) + "/" + file
		if err := os.WriteFile(p, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		return nil
	}
	if err := write("uid_map", uids); err != nil {
		return err
	}
	return write("gid_map", gids)
}

// hostID maps a container uid or gid to the host's (itself if unmapped).
func hostID(ms []specs.LinuxIDMapping, id uint32) uint32 {
	for _, m := range ms {
		if id >= m.ContainerID && id < m.ContainerID+m.Size {
			return m.HostID + id - m.ContainerID
		}
	}
	return id
}

// validateSpec refuses values the kernel has no interface for before
// anything is created, so create fails instead of the process at start.
func validateSpec(spec *specs.Spec) error {
	if c := spec.Process.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			if _, err := capMask(set, 63); err != nil {
				return err
			}
		}
	}
	for _, rl := range spec.Process.Rlimits {
		if _, ok := rlimitByName[rl.Type]; !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return fmt.Errorf("rlimit %s: soft limit %d is above the hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
	}
	for _, ns := range spec.Linux.Namespaces {
		if nsName(ns.Type) == "" {
			return fmt.Errorf("unknown namespace type %q", ns.Type)
		}
	}
	return nil
}

// compileSeccomp compiles the spec's seccomp filter, or returns nil when
// it has none. Programs are cached under the state root by profile.
func (r *Runtime) compileSeccomp(spec *specs.Spec) (*seccomp.Program, error) {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil, nil
	}
	return seccomp.Compiled(spec.Linux.Seccomp, filepath.Join(r.Root, ".seccomp"))
}
