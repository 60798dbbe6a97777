package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

// An Early is a container's first process started before the container's
// spec exists: in the container's cgroups and in new namespaces, its
// runtime started, waiting for the configuration Create sends it. A
// monitor that knows its container's id ahead (hull run) starts one while
// it waits for the container to be created, so that Create skips the
// slowest part of a start (a process, its namespaces and a Go runtime,
// about 3 ms here) and goes straight to the root filesystem.
//
// It suits only the common shape of container: new pid, mount, ipc, uts
// and network namespaces (and optionally cgroup), or, started for a spec
// known ahead (StartEarlyFor: a pod's container), a new mount namespace
// and the spec's others, joined by path or new; no user namespace, no
// terminal, no memory limit unless set ahead (SetLimits; one below what
// the waiting process uses cannot be), the init binary run as it is or,
// for a spec that needs it, a sealed copy. Create checks the spec and
// otherwise ends the early process and starts the container as usual.
// Its mount namespace is the host's copied when it starts, before the
// root filesystem is mounted: Create sends it a clone of that mount
// (open_tree, kernels since 5.2). Until Create takes it, an Early holds
// the container's state directory, as a create in progress; Close undoes
// it.
type Early struct {
	id     string
	r      *Runtime
	dir    string
	cgPath string
	lock   *os.File
	fifo   *os.File
	cg     *cgroups.Manager
	sp     *spawn
	// newFlags and joins are the namespaces it is in (see earlyShape).
	newFlags uintptr
	joins    []string
	sealed   bool // runs a sealed copy of the init binary (see needsSealedInit)
	// limitsOf is the spec whose resources SetLimits gave the cgroups.
	limitsOf *specs.Spec
	taken    bool // by Create, which then owns the process, cgroups and directory
	closed   bool
}

// EarlyOptions are what an Early is started with.
type EarlyOptions struct {
	// CgroupsPath is the linux.cgroupsPath the container's spec will have.
	CgroupsPath string
	// Stdio of the container's process.
	Stdin, Stdout, Stderr *os.File
	// NewNetNS makes the process's new network namespace here (NewNetNS),
	// while the process starts, instead of in the process once its cgroups
	// are made: most of what a start costs in the kernel.
	NewNetNS bool
	// Namespaces, if not nil, are the container's spec's: the process
	// joins those with a path (a pod's) and makes the others new (see
	// earlyShape); nil: new pid, mount, ipc, uts and network namespaces.
	Namespaces []specs.LinuxNamespace
	// Sealed runs the init from a sealed copy of its binary, as Create
	// does for a container that could reach the host's (needsSealedInit:
	// a pod's shared pid namespace).
	Sealed bool
}

// earlyNamespaces are the namespaces an Early is made in.
const earlyNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// StartEarly starts the first process of container id ahead of its spec.
func (r *Runtime) StartEarly(id string, o EarlyOptions) (e *Early, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, fmt.Errorf("state root %s: %w", r.Root, err)
	}
	e = &Early{id: id, r: r, dir: filepath.Join(r.Root, id), cgPath: cgroups.ContainerPath(o.CgroupsPath, id), newFlags: earlyNamespaces, sealed: o.Sealed}
	if o.Namespaces != nil {
		var ok bool
		if e.newFlags, e.joins, ok = earlyShape(o.Namespaces); !ok {
			return nil, fmt.Errorf("container %s: its namespaces do not suit a process started early", id)
		}
	}
	if e.lock, err = r.claim(id, e.dir); err != nil {
		return nil, err
	}
	// Undone on any failure from here on, the cgroups made and the state
	// directory claimed included: the returns below give a nil Early, so
	// the one made is closed, not the result.
	made := e
	defer func() {
		if err != nil {
			made.Close()
			err = fmt.Errorf("container %s: %w", id, err)
		}
	}()
	if e.cg, err = cgroups.New(e.cgPath); err != nil {
		return nil, err
	}
	if e.fifo, err = openFifo(e.dir); err != nil {
		return nil, err
	}
	// The cgroups are made while the init binary starts, as in Create.
	sp := &spawn{r: r, cgroup: e.cg, stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr, hostExe: !o.Sealed, selfJoin: true,
		newFlags: e.newFlags, join: slices.Clone(e.joins), files: []*os.File{e.fifo}, init: &initConfig{},
		prepare: func() error { return makeCgroups(id, e.dir, e.cgPath, e.cg) }}
	if o.NewNetNS && e.newFlags&unix.CLONE_NEWNET != 0 {
		// The constructor opens the namespace by path once told to go on
		// ('c', after prepare): the path names a descriptor of this
		// process that holds /dev/null until the namespace is made, while
		// the process starts, and then the namespace.
		holder, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		defer holder.Close()
		made := make(chan error, 1)
		go func() {
			ns, err := NewNetNS()
			if err == nil {
				err = unix.Dup3(int(ns.Fd()), int(holder.Fd()), unix.O_CLOEXEC)
				ns.Close()
			}
			made <- err
		}()
		sp.newFlags &^= unix.CLONE_NEWNET
		sp.join = append(sp.join, joinPath("net", holder))
		makeCgroups := sp.prepare
		sp.prepare = func() error {
			err := makeCgroups()
			if nerr := <-made; err == nil {
				err = nerr
			}
			return err
		}
	}
	e.sp = sp
	if err = sp.start(); err != nil {
		return nil, err
	}
	return e, nil
}

// Pid is the early process's pid (in the host's pid namespace): its
// namespaces, the network one included, exist from StartEarly's return.
func (e *Early) Pid() int { return e.sp.pid }

// SetLimits gives e's cgroups the resource limits of spec, the container's
// spec received ahead of its Create (a monitor's spare gets it while the
// container's creation ends): Create with that same spec then has them set
// already. Nothing is done for a spec e does not suit.
func (e *Early) SetLimits(spec *specs.Spec) error {
	// An invalid spec is Create's to report.
	if e == nil || e.closed || e.taken || validateSpec(spec) != nil || !e.fitsShape(e.id, spec, CreateOptions{}, needsSealedInit(spec)) {
		return nil
	}
	if err := e.cg.Set(withDefaultDevices(spec)); err != nil {
		return fmt.Errorf("container %s: %w", e.id, err)
	}
	e.limitsOf = spec
	return nil
}

// fits tells whether container id, with spec and o, can take e (see Early).
// A memory limit must have been set ahead, for this very spec (SetLimits):
// one below what the waiting process uses fails there, and the container
// then gets a process of its own.
func (e *Early) fits(id string, spec *specs.Spec, o CreateOptions, sealed bool) bool {
	if res := spec.Linux.Resources; res != nil && res.Memory != nil && e.limitsOf != spec {
		return false
	}
	return e.fitsShape(id, spec, o, sealed) && e.seesBindSources(spec)
}

// seesBindSources reports whether e's mount namespace, a copy of the
// host's made when e started, has the mounts at and under each bind mount
// source of spec that the host has now: a file system mounted on the host
// after e started (a pod's secret or subPath mount, made after
// RunPodSandbox bound the pod's spare; a source critest makes a shared
// mount of itself to watch propagation) is not in the copy, where the init
// would bind what lies beneath it, and would not propagate. Then the
// container gets a process of its own, started now. The mounts are
// compared by mount point, device and root in the two mount tables
// (mount IDs differ between copies; a directory bound on itself has the
// same device and inode as before).
func (e *Early) seesBindSources(spec *specs.Spec) bool {
	var sources []string
	for _, m := range spec.Mounts {
		if m.Type == "bind" || hasOpt(m.Options, "bind") || hasOpt(m.Options, "rbind") {
			sources = append(sources, filepath.Clean(m.Source))
		}
	}
	if len(sources) == 0 {
		return true
	}
	host, err1 := mountsOf("/proc/self/mountinfo", sources)
	seen, err2 := mountsOf("/proc/"+strconv.Itoa(e.sp.pid)+"/mountinfo", sources)
	return err1 == nil && err2 == nil && slices.Equal(host, seen)
}

// mountsOf lists, from the mount table at path, the mounts that cover
// each of sources (the one holding it) or lie under it: "mount point
// major:minor root" each, sorted.
func mountsOf(path string, sources []string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type mnt struct{ point, key string }
	var all []mnt
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		all = append(all, mnt{f[4], f[4] + " " + f[2] + " " + f[3]})
	}
	var out []string
	for _, src := range sources {
		cover := -1
		for i, m := range all {
			under := strings.HasPrefix(m.point, strings.TrimSuffix(src, "/")+"/")
			holds := src == m.point || m.point == "/" || strings.HasPrefix(src, strings.TrimSuffix(m.point, "/")+"/")
			if under {
				out = append(out, m.key)
			} else if holds && (cover < 0 || len(m.point) >= len(all[cover].point)) {
				cover = i // the last mounted on the longest mount point is on top
			}
		}
		if cover >= 0 {
			out = append(out, all[cover].key)
		}
	}
	slices.Sort(out)
	return out, nil
}

// fitsShape is fits but for the limits.
func (e *Early) fitsShape(id string, spec *specs.Spec, o CreateOptions, sealed bool) bool {
	if e.id != id || sealed != e.sealed || spec.Process.Terminal || o.PreserveFDs != 0 || o.Console != nil || o.ConsoleSocket != "" {
		return false
	}
	if cgroups.ContainerPath(spec.Linux.CgroupsPath, id) != e.cgPath {
		return false
	}
	flags, joins, ok := earlyShape(spec.Linux.Namespaces)
	return ok && flags == e.newFlags && slices.Equal(joins, e.joins)
}

// earlyShape is how an Early is made for a spec with namespaces nss: the
// flags of the new ones and the joined ones ("type=path", in the spec's
// order, as Create joins them). ok is false for a spec an Early does not
// suit: a user or time namespace, a joined cgroup or mount namespace, no
// new mount namespace (the root filesystem arrives as a clone of its
// mount, see Early). A new cgroup namespace is the init's to unshare
// later.
func earlyShape(nss []specs.LinuxNamespace) (flags uintptr, joins []string, ok bool) {
	for _, ns := range nss {
		switch typ := nsName(ns.Type); {
		case typ == "cgroup" && ns.Path == "":
		case typ == "mnt" && ns.Path == "":
			flags |= unix.CLONE_NEWNS
		case typ == "uts" || typ == "ipc" || typ == "pid" || typ == "net":
			if ns.Path != "" {
				joins = append(joins, typ+"="+ns.Path)
			} else {
				flags |= nsFlag(typ)
			}
		default:
			return 0, nil, false
		}
	}
	return flags, joins, flags&unix.CLONE_NEWNS != 0
}

// StartEarlyFor starts the first process of container id, whose spec is
// known, ahead of its Create: in the spec's namespaces (a pod's joined by
// path) and cgroups, with the spec's limits. A CRI container is created
// long before it is started; its monitor, a spare sent the spec at
// create, starts the process meanwhile (see the engine's awaitContainer).
// An error if the spec does not suit an Early (see Early and fits).
func (r *Runtime) StartEarlyFor(id string, spec *specs.Spec, o EarlyOptions) (*Early, error) {
	if err := validateSpec(spec); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	o.CgroupsPath, o.Namespaces, o.Sealed = spec.Linux.CgroupsPath, spec.Linux.Namespaces, needsSealedInit(spec)
	shape := &Early{id: id, cgPath: cgroups.ContainerPath(o.CgroupsPath, id), sealed: o.Sealed}
	shape.newFlags, shape.joins, _ = earlyShape(o.Namespaces)
	// Hooks run by the container's process are Create's alone.
	if o.Namespaces == nil || !SuitsEarly(spec) || !shape.fitsShape(id, spec, CreateOptions{}, o.Sealed) {
		return nil, fmt.Errorf("container %s: its spec does not suit a process started early", id)
	}
	e, err := r.StartEarly(id, o)
	if err != nil {
		return nil, err
	}
	if err := e.SetLimits(spec); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Suits reports whether e is the process container id would be started
// with by StartEarly(id, o): the same cgroups, namespaces and init binary.
func (e *Early) Suits(id string, o EarlyOptions) bool {
	flags, joins, ok := earlyShape(o.Namespaces)
	return ok && e.id == id && e.sealed == o.Sealed && flags == e.newFlags && slices.Equal(joins, e.joins) &&
		cgroups.ContainerPath(o.CgroupsPath, id) == e.cgPath
}

// SuitsEarly reports whether spec allows an early process at all: not
// when the container's process runs createContainer or startContainer
// hooks (StartEarlyFor refuses such a spec; an Early started before its
// spec was known is closed for one).
func SuitsEarly(spec *specs.Spec) bool {
	h := spec.Hooks
	return h == nil || (len(h.CreateContainer) == 0 && len(h.StartContainer) == 0)
}

// SealsInit reports whether a container in namespaces nss runs its init
// from a sealed copy of the binary (needsSealedInit, for a spec without
// hooks): what EarlyOptions.Sealed must say before the spec exists.
func SealsInit(nss []specs.LinuxNamespace) bool {
	return needsSealedInit(&specs.Spec{Linux: &specs.Linux{Namespaces: nss}})
}

// PrepareSealedInit makes this process's sealed copy of the init binary
// now (sealedInit): a spare monitor waiting for a container does, so that
// a container that needs the copy does not wait for it (a few
// milliseconds).
func (r *Runtime) PrepareSealedInit() { r.sealedInit() }

// SealedInit is a new descriptor of this process's sealed copy of the
// init binary (made if need be), for another process to adopt
// (AdoptSealedInit): hull-cri hands its one copy to every spare monitor
// it starts, which then neither copies the binary (4.5 MB, a few
// milliseconds of its start) nor holds a copy of its own while idle. The
// copy is sealed against every change, so processes may share it.
func (r *Runtime) SealedInit() (*os.File, error) {
	fd, err := r.sealedInit()
	if err != nil {
		return nil, err
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("dup sealed init: %w", err)
	}
	return os.NewFile(uintptr(dup), "hull-init"), nil
}

// AdoptSealedInit makes fd, a sealed copy of the init binary another
// process made (SealedInit), this process's copy, once its seals are
// checked; it takes fd. An error leaves the copy to be made here.
func (r *Runtime) AdoptSealedInit(fd int) error {
	defer unix.Close(fd)
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if err != nil || seals&want != want {
		return fmt.Errorf("sealed init: descriptor %d is not a sealed copy (%v)", fd, err)
	}
	// Above every descriptor a child is given (see sealedCopy).
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 1000)
	if err != nil {
		return fmt.Errorf("dup sealed init: %w", err)
	}
	adopted := false
	r.sealOnce.Do(func() { r.sealFD, adopted = high, true })
	if !adopted {
		unix.Close(high) // this process had one already
	}
	return nil
}

// Close ends an early process that no Create took: the process, its
// cgroups and the state directory go. Create closes it in any case; once
// taken, only what Create does not keep is closed.
func (e *Early) Close() {
	if e.closed {
		return
	}
	e.closed = true
	if e.taken {
		e.release()
		return
	}
	if e.sp != nil && e.sp.pid > 0 {
		_ = unix.Kill(e.sp.pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(e.sp.pid, &ws, 0, nil)
	}
	e.release()
	if e.cg != nil {
		e.cg.Kill()
		_ = e.cg.Destroy()
	}
	os.RemoveAll(e.dir)
	if e.lock != nil {
		e.lock.Close()
	}
}

// holdLock gives Create the state directory's lock (nil without e).
func (e *Early) holdLock() *os.File {
	if e == nil {
		return nil
	}
	l := e.lock
	e.lock = nil
	return l
}

// release closes what Create does not keep.
func (e *Early) release() {
	if e.sp != nil && e.sp.sync != nil {
		e.sp.sync.Close()
	}
	if e.fifo != nil {
		e.fifo.Close()
	}
}

// makeCgroups makes the container's cgroups and records them where a
// reclaim finds them (see claim.go).
func makeCgroups(id, dir, path string, cg *cgroups.Manager) error {
	if err := cg.Create(); err != nil {
		return err
	}
	// Only what a reclaim needs, not the whole record.
	return (&Container{ID: id, CgroupPath: path, CgroupCreated: cg.Created, dir: dir}).saveAs(creatingFile)
}

// openFifo makes the exec fifo in the state directory dir and opens it
// for the init (O_PATH: opening it for reading would block).
func openFifo(dir string) (*os.File, error) {
	c := &Container{dir: dir}
	if err := unix.Mkfifo(c.fifoPath(), 0o600); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	f, err := os.OpenFile(c.fifoPath(), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	return f, nil
}
