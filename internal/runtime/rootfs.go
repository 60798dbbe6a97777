package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountFlags are the mount options that are flags; set clears, !set sets.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"iversion": {false, unix.MS_I_VERSION}, "noiversion": {true, unix.MS_I_VERSION},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// MountOptionNames lists the options hull understands, for `features`.
func MountOptionNames() []string {
	var out []string
	for k := range mountFlags {
		out = append(out, k)
	}
	for k := range propagationFlags {
		out = append(out, k)
	}
	return append(out, "tmpcopyup", "rro")
}

// MountOptions turns mount(8) options into mount(2) flags and the
// filesystem's data string (propagation options are left out).
func MountOptions(opts []string) (flags uintptr, data string) {
	flags, _, data = parseMountOptions(slices.DeleteFunc(slices.Clone(opts), func(o string) bool { return o == "" }))
	return flags, data
}

// parseMountOptions splits options into mount(2) flags, propagation flags
// and the filesystem-specific data string.
func parseMountOptions(opts []string) (flags uintptr, prop []uintptr, data string) {
	var d []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			prop = append(prop, p)
			continue
		}
		if o == "tmpcopyup" || o == "rro" || strings.HasPrefix(o, "idmap") || strings.HasPrefix(o, "ridmap") {
			continue
		}
		d = append(d, o)
	}
	return flags, prop, strings.Join(d, ",")
}

// setupRootfs builds the container's mount table inside its new mount
// namespace and pivots into it: propagation of /, the rootfs bind, every
// spec mount (destinations resolved inside the rootfs), /dev, hooks,
// pivot_root, then sysctls, masked and read-only paths, read-only root.
func setupRootfs(cfg *initConfig, sync *os.File, buf []byte) error {
	spec := cfg.Spec
	if !cfg.NewMount {
		// A shared or joined mount namespace is set up already; only
		// the hooks are ours to run.
		return runCreateHooks(cfg, sync, buf)
	}
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := spec.Linux.RootfsPropagation; p != "" {
		f, ok := propagationFlags[p]
		if !ok {
			return fmt.Errorf("rootfsPropagation %q is not a propagation mode", p)
		}
		prop = f
	}
	// Shared propagation must be in place before the rootfs bind to
	// join the host's peer group; every other mode is applied to the new
	// root after pivot_root (an unbindable / would refuse the bind).
	first := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if prop&unix.MS_SHARED != 0 {
		first = prop
	}
	if err := unix.Mount("", "/", "", first, ""); err != nil {
		return fmt.Errorf("set propagation of / to %s: %w", spec.Linux.RootfsPropagation, err)
	}
	rootfs := cfg.Rootfs
	if cfg.rootfsTree > 0 {
		// This namespace is older than the rootfs mount (see Early): the
		// parent's clone of it is attached here.
		err := unix.MoveMount(cfg.rootfsTree, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(cfg.rootfsTree)
		if err != nil {
			return fmt.Errorf("attach rootfs %s: %w", rootfs, err)
		}
	}
	// pivot_root refuses a new root whose parent mount is shared.
	if prop&unix.MS_SHARED != 0 {
		if mp := mountpointOf(rootfs); mp != "" {
			if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make %s private: %w", mp, err)
			}
		}
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", rootfs, err)
	}
	devBind := false
	for _, m := range spec.Mounts {
		if err := mountEntry(cfg, m); err != nil {
			return err
		}
		if filepath.Clean(m.Destination) == "/dev" && (m.Type == "bind" || hasOpt(m.Options, "bind") || hasOpt(m.Options, "rbind")) {
			devBind = true
		}
	}
	if !devBind {
		if err := setupDev(cfg); err != nil {
			return err
		}
	}
	if err := runCreateHooks(cfg, sync, buf); err != nil {
		return err
	}
	if err := pivotRoot(rootfs, cfg.NoPivot); err != nil {
		return err
	}
	if spec.Linux.RootfsPropagation != "" {
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("set propagation of the new root: %w", err)
		}
	}
	if err := writeSysctls(spec); err != nil {
		return err
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	if spec.Root.Readonly {
		var st unix.Statfs_t
		if err := unix.Statfs("/", &st); err != nil {
			return fmt.Errorf("statfs /: %w", err)
		}
		flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | lockedFlags(st.Flags)
		if err := unix.Mount("", "/", "", uintptr(flags), ""); err != nil {
			return fmt.Errorf("remount root read-only: %w", err)
		}
	}
	return nil
}

// runCreateHooks asks the parent to run prestart and createRuntime hooks
// (in the runtime's namespaces) and then runs createContainer hooks here,
// in the container's namespaces before pivot_root.
func runCreateHooks(cfg *initConfig, sync *os.File, buf []byte) error {
	if cfg.AskHooks {
		if err := askParent(sync, buf, "hooks", "hooks"); err != nil {
			return err
		}
	}
	if h := cfg.Spec.Hooks; h != nil {
		st := cfg.State
		// cfg.State.Pid is the pid the host sees (the spec's); ours may be 1.
		if st.Pid == 0 {
			st.Pid = os.Getpid()
		}
		for _, hk := range h.CreateContainer {
			if err := runHook(hk, st); err != nil {
				return fmt.Errorf("createContainer hook: %w", err)
			}
		}
	}
	return nil
}

func hasOpt(opts []string, o string) bool {
	for _, v := range opts {
		if v == o {
			return true
		}
	}
	return false
}

// mountpointOf finds the mount point containing path.
func mountpointOf(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	best := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}

// lockedFlags are the per-mount flags a remount must keep: inside a user
// namespace the kernel refuses to clear them.
func lockedFlags(stFlags int64) int {
	var f int
	for _, m := range []struct{ st, ms int }{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if stFlags&int64(m.st) != 0 {
			f |= m.ms
		}
	}
	return f
}

// procAllowed are the places under /proc something other than a procfs
// may be mounted (lxcfs-style overrides). Anything else could hide what
// the runtime relies on (the CVE-2019-16884 class).
var procAllowed = map[string]bool{
	"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true,
	"/proc/stat": true, "/proc/swaps": true, "/proc/uptime": true,
	"/proc/loadavg": true, "/proc/slabinfo": true, "/proc/net/dev": true,
	"/proc/sys/kernel/ns_last_pid": true,
}

func checkProcMount(dest, typ string) error {
	if dest == "/proc" {
		if typ != "proc" {
			return fmt.Errorf("mount of type %q on /proc: only procfs may be mounted there", typ)
		}
		return nil
	}
	if strings.HasPrefix(dest, "/proc/") && !procAllowed[dest] {
		return fmt.Errorf("mount on %s: mounts inside /proc are not allowed", dest)
	}
	return nil
}

// securePath resolves dest inside rootfs (symlinks cannot leave it),
// creates it as a directory or file, and opens it O_PATH. The caller
// mounts onto /proc/self/fd/N, so a symlink swapped in after the check
// cannot redirect the mount (the CVE-2019-16884/CVE-2021-30465 class).
// What the mount then needs (flags, propagation, checks) goes through a
// descriptor of the new mount too (see bindMount and openMounted). It
// returns the path the descriptor had when opened, for openMounted.
func securePath(rootfs, dest string, dir bool) (string, *os.File, error) {
	target, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return "", nil, fmt.Errorf("resolve mount destination %s: %w", dest, err)
	}
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return "", nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
	} else if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return "", nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		f.Close()
	}
	f, err := os.OpenFile(target, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open mount point %s: %w", dest, err)
	}
	real, err := os.Readlink(fdPath(f))
	if err != nil || (real != rootfs && !strings.HasPrefix(real, rootfs+"/")) {
		f.Close()
		return "", nil, fmt.Errorf("mount destination %s resolved to %s, outside the rootfs", dest, real)
	}
	return real, f, nil
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// mountAPI is how much of the new mount API this kernel has: 2, open_tree
// and mount_setattr (5.12 on); 1, open_tree only (5.2 to 5.11); 0,
// neither. It drops at the first refusal (ENOSYS, or EPERM from a seccomp
// filter); tests lower it to run the older paths.
var mountAPI = 2

// testHookBindAttached, set only by tests, runs as soon as a bind mount is
// attached at dest, before the rest of its setup (the flags, unless they
// were set before, and the propagation).
var testHookBindAttached func(dest string)

// bindMount binds src onto the mount point mp (an O_PATH descriptor inside
// the rootfs, opened at mpPath by securePath) and gives the new mount the per-mount flags
// and the propagation the options ask for. Both go to the mount through a
// descriptor of it, never through its path again: a container sharing a
// volume above the mount point could swap a directory on that path for a
// symlink once the bind is there, and a remount by path would then land
// elsewhere and leave the bind writable. The mount is a clone made with
// open_tree, so its descriptor is the mount itself, and with mount_setattr
// its flags are set before it is attached: it is never there writable. On
// older kernels it is remounted through its descriptor once attached, and
// before 5.2 the bind is made the old way and the mount reopened (see
// openMounted).
func bindMount(src string, mp *os.File, mpPath, dest string, flags uintptr, prop []uintptr, rro bool) error {
	rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	m, err := cloneTree(src, flags&unix.MS_REC != 0)
	if err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dest, err)
	}
	if rro {
		if err := recursiveReadOnly(m, src, dest); err != nil {
			if m != nil {
				m.Close()
			}
			return err
		}
	}
	if m != nil {
		defer m.Close()
		if rest != 0 && mountAPI >= 2 {
			attr := bindAttr(rest)
			err := unix.MountSetattr(int(m.Fd()), "", unix.AT_EMPTY_PATH, &attr)
			switch {
			case err == nil:
				rest = 0
			case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
				mountAPI = 1 // the remount below tells a real EPERM
			default:
				return fmt.Errorf("bind %s on %s: set flags %#x: %w", src, dest, rest, err)
			}
		}
		err = unix.MoveMount(int(m.Fd()), "", int(mp.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	} else {
		err = unix.Mount(src, fdPath(mp), "", unix.MS_BIND|flags&unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dest, err)
	}
	if testHookBindAttached != nil {
		testHookBindAttached(dest)
	}
	if m == nil {
		if m, err = openMounted(mp, mpPath, dest); err != nil {
			return err
		}
		defer m.Close()
		var a, b unix.Stat_t
		if err := errors.Join(unix.Fstat(int(m.Fd()), &a), unix.Stat(src, &b)); err != nil || a.Dev != b.Dev || a.Ino != b.Ino {
			return fmt.Errorf("the mount on %s is not the bind of %s (%v)", dest, src, err)
		}
	}
	if rest != 0 {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(int(m.Fd()), &sfs); err != nil {
			return fmt.Errorf("statfs %s: %w", dest, err)
		}
		rf := rest | unix.MS_BIND | unix.MS_REMOUNT | uintptr(lockedFlags(sfs.Flags))
		if err := unix.Mount("", fdPath(m), "", rf, ""); err != nil {
			return fmt.Errorf("remount %s with flags %#x: %w", dest, rest, err)
		}
	}
	return setPropagation(m, dest, prop)
}

// cloneTree returns a detached copy of the mount at src (with the mounts
// below it if recursive) from open_tree, or nil on a kernel without it.
func cloneTree(src string, recursive bool) (*os.File, error) {
	if mountAPI < 1 {
		return nil, nil
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No open_tree, or a sandbox's seccomp filter refuses it (a
		// real EPERM comes back from the bind).
		mountAPI = 0
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), src), nil
}

// bindAttr is mount_setattr's form of the per-mount flags of a bind
// remount. A bind remount sets exactly the flags it is given, and the one
// in bindMount passes the mount's current ones along (lockedFlags), so in
// effect it sets what is asked and clears read-only unless that is asked
// too; this does the same.
func bindAttr(flags uintptr) unix.MountAttr {
	var a unix.MountAttr
	for _, f := range []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if flags&f.ms != 0 {
			a.Attr_set |= f.attr
		}
	}
	if flags&unix.MS_RDONLY == 0 {
		a.Attr_clr |= unix.MOUNT_ATTR_RDONLY
	}
	// One access-time mode replaces the other (relatime is 0).
	if flags&(unix.MS_NOATIME|unix.MS_STRICTATIME|unix.MS_RELATIME) != 0 {
		a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		switch {
		case flags&unix.MS_NOATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_NOATIME
		case flags&unix.MS_STRICTATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_STRICTATIME
		}
	}
	return a
}

// openMounted opens the root of the mount just made on the mount point
// mp, which itself still refers to the directory under it: by its name
// (from mpPath, its path when securePath opened it) in its parent, opened
// from mp (so nothing on the path above can be swapped), without following
// a symlink, and only if it is a mount other than mp's.
func openMounted(mp *os.File, mpPath, dest string) (*os.File, error) {
	parent, err := unix.Openat(int(mp.Fd()), "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		// A file has no "..": its directory by path (a bind checks
		// that it opened its source's mount, see bindMount).
		parent, err = unix.Open(filepath.Dir(mpPath), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("mount point %s: open parent: %w", dest, err)
	}
	fd, err := unix.Openat(parent, filepath.Base(mpPath), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	unix.Close(parent)
	if err != nil {
		return nil, fmt.Errorf("open the mount on %s: %w", dest, err)
	}
	m := os.NewFile(uintptr(fd), dest)
	under, err1 := mountID(mp)
	top, err2 := mountID(m)
	if err := errors.Join(err1, err2); err != nil || under == top {
		m.Close()
		return nil, fmt.Errorf("the mount on %s is not there (%v)", dest, err)
	}
	return m, nil
}

// mountID returns the id of the mount f is on: from statx (5.8 on), else
// from /proc/self/fdinfo.
func mountID(f *os.File) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
		return stx.Mnt_id, nil
	}
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no mnt_id in /proc/self/fdinfo/%d", f.Fd())
}

func mountEntry(cfg *initConfig, m specs.Mount) error {
	dest := filepath.Clean("/" + m.Destination)
	flags, prop, data := parseMountOptions(m.Options)
	typ := m.Type
	if flags&unix.MS_BIND != 0 {
		typ = "bind"
	}
	if err := checkProcMount(dest, typ); err != nil {
		return err
	}
	if typ == "cgroup" || typ == "cgroup2" {
		return mountCgroup(cfg, dest, flags)
	}
	if typ == "bind" {
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(cfg.Bundle, src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", src, err)
		}
		mpPath, f, err := securePath(cfg.Rootfs, dest, st.IsDir())
		if err != nil {
			return err
		}
		defer f.Close()
		return bindMount(src, f, mpPath, dest, flags, prop, slices.Contains(m.Options, "rro"))
	}
	mpPath, f, err := securePath(cfg.Rootfs, dest, true)
	if err != nil {
		return err
	}
	defer f.Close()
	// In a network namespace it joins (a pod's), a read-only sysfs is
	// mounted read-write, then made read-only as a mount: MS_RDONLY on a
	// new mount also makes the superblock read-only, and a network
	// namespace has one sysfs superblock, which every later container in
	// it would get read-only, a privileged one too (kubelet's pause is
	// privileged when a container is, so its privileged containers get a
	// writable /sys). A namespace of the container's own needs no second
	// mount call.
	sysRO := typ == "sysfs" && flags&unix.MS_RDONLY != 0 && !cfg.NewNet
	if sysRO {
		flags &^= unix.MS_RDONLY
	}
	err = unix.Mount(m.Source, fdPath(f), typ, flags, data)
	if err != nil && typ == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		// A user namespace without its own network namespace may not
		// mount sysfs; give it the host's, read-only.
		return bindMount("/sys", f, mpPath, dest, unix.MS_BIND|unix.MS_REC|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, prop, false)
	}
	if err != nil && typ == "mqueue" && errors.Is(err, unix.EPERM) {
		return bindMount("/dev/mqueue", f, mpPath, dest, unix.MS_BIND, prop, false)
	}
	if err != nil {
		return fmt.Errorf("mount %s (%s) on %s with %v: %w", m.Source, typ, dest, m.Options, err)
	}
	if typ != "proc" && len(prop) == 0 && !sysRO {
		return nil
	}
	mnt, err := openMounted(f, mpPath, dest)
	if err != nil {
		return err
	}
	defer mnt.Close()
	if sysRO {
		if err := unix.Mount("", fdPath(mnt), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC), ""); err != nil {
			return fmt.Errorf("make the sysfs on %s read-only: %w", dest, err)
		}
	}
	if typ == "proc" {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(int(mnt.Fd()), &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
			return fmt.Errorf("mount of proc on %s did not land there", dest)
		}
	}
	return setPropagation(mnt, dest, prop)
}

// setPropagation sets the propagation of the mount m (a descriptor of the
// mount's root) once for each of prop, in order.
func setPropagation(m *os.File, dest string, prop []uintptr) error {
	for _, p := range prop {
		if err := unix.Mount("", fdPath(m), "", p, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", dest, err)
		}
	}
	return nil
}

// mountCgroup gives the container a view of its own cgroups: on v2 the
// container's directory itself; on v1/hybrid a tmpfs with one bind mount
// per hierarchy (plus cpu -> cpu,cpuacct style symlinks), as /sys/fs/cgroup
// looks on the host. The tmpfs is reached through a descriptor of it, like
// a bind mount's flags (see bindMount); nothing but this process can
// change what is inside it.
func mountCgroup(cfg *initConfig, dest string, flags uintptr) error {
	ro := flags & unix.MS_RDONLY
	base := flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) | ro
	mpPath, f, err := securePath(cfg.Rootfs, dest, true)
	if err != nil {
		return err
	}
	defer f.Close()
	if len(cfg.Cgroups) == 1 && cfg.Cgroups[0].V2 {
		return bindMount(cfg.Cgroups[0].Dir, f, mpPath, dest, unix.MS_BIND|base, nil, false)
	}
	if err := unix.Mount("tmpfs", fdPath(f), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dest, err)
	}
	tmpfs, err := openMounted(f, mpPath, dest)
	if err != nil {
		return err
	}
	defer tmpfs.Close()
	target := fdPath(tmpfs)
	var subs []string
	for _, cg := range cfg.Cgroups {
		name := strings.Join(cg.Controllers, ",")
		if cg.V2 {
			name = "unified"
		} else if strings.HasPrefix(name, "name=") {
			name = strings.TrimPrefix(name, "name=")
		}
		sub := filepath.Join(target, name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			return fmt.Errorf("create %s/%s: %w", dest, name, err)
		}
		if err := unix.Mount(cg.Dir, sub, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind cgroup %s on %s/%s: %w", cg.Dir, dest, name, err)
		}
		subs = append(subs, sub)
		if len(cg.Controllers) > 1 {
			for _, c := range cg.Controllers {
				if err := os.Symlink(name, filepath.Join(target, c)); err != nil && !errors.Is(err, os.ErrExist) {
					return fmt.Errorf("cgroup symlink %s/%s: %w", dest, c, err)
				}
			}
		}
	}
	// One call sets the flags of the tmpfs and every hierarchy below it;
	// kernels before 5.12 lack it, and each mount is remounted instead.
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if ro != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if mountAPI >= 2 {
		err := unix.MountSetattr(int(tmpfs.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.ENOSYS) {
			mountAPI = 1
		}
	}
	for _, sub := range subs {
		if err := unix.Mount("", sub, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|ro, ""); err != nil {
			return fmt.Errorf("remount cgroup %s/%s: %w", dest, filepath.Base(sub), err)
		}
	}
	if ro != 0 {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", dest, err)
		}
	}
	return nil
}

type devNode struct {
	path       string
	typ        uint32
	major      uint32
	minor      uint32
	mode       uint32
	uid, gid   uint32
	fromConfig bool
}

var defaultDevices = []devNode{
	{path: "/dev/null", typ: unix.S_IFCHR, major: 1, minor: 3, mode: 0o666},
	{path: "/dev/zero", typ: unix.S_IFCHR, major: 1, minor: 5, mode: 0o666},
	{path: "/dev/full", typ: unix.S_IFCHR, major: 1, minor: 7, mode: 0o666},
	{path: "/dev/random", typ: unix.S_IFCHR, major: 1, minor: 8, mode: 0o666},
	{path: "/dev/urandom", typ: unix.S_IFCHR, major: 1, minor: 9, mode: 0o666},
	{path: "/dev/tty", typ: unix.S_IFCHR, major: 5, minor: 0, mode: 0o666},
}

// setupDev creates the default devices, the spec's devices and the
// standard /dev symlinks. In a user namespace mknod is refused, so devices
// are bind mounts of the host's nodes instead.
func setupDev(cfg *initConfig) error {
	devs := append([]devNode(nil), defaultDevices...)
	for _, d := range cfg.Spec.Linux.Devices {
		n := devNode{path: d.Path, major: uint32(d.Major), minor: uint32(d.Minor), mode: 0o666, fromConfig: true}
		switch d.Type {
		case "c", "u":
			n.typ = unix.S_IFCHR
		case "b":
			n.typ = unix.S_IFBLK
		case "p":
			n.typ = unix.S_IFIFO
		default:
			return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		if d.FileMode != nil {
			n.mode = uint32(*d.FileMode) & 0o7777
		}
		if d.UID != nil {
			n.uid = *d.UID
		}
		if d.GID != nil {
			n.gid = *d.GID
		}
		devs = append(devs, n)
	}
	oldMask := unix.Umask(0)
	defer unix.Umask(oldMask)
	for _, d := range devs {
		if err := makeDevice(cfg, d); err != nil {
			return err
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		p, err := securejoin.SecureJoin(cfg.Rootfs, l[1])
		if err != nil {
			return err
		}
		if err := os.Symlink(l[0], p); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	ptmx, err := securejoin.SecureJoin(cfg.Rootfs, "/dev/ptmx")
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(ptmx), "pts/ptmx")); err == nil {
		_ = os.Remove(ptmx)
		if err := os.Symlink("pts/ptmx", ptmx); err != nil {
			return fmt.Errorf("symlink /dev/ptmx: %w", err)
		}
	}
	return nil
}

func makeDevice(cfg *initConfig, d devNode) error {
	target, err := securejoin.SecureJoin(cfg.Rootfs, d.path)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.path, err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("device %s: %w", d.path, err)
	}
	if cfg.InUser {
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return fmt.Errorf("device %s: %w", d.path, err)
			}
			f.Close()
		}
		if err := unix.Mount(d.path, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind device %s: %w", d.path, err)
		}
		return nil
	}
	if d.fromConfig {
		_ = os.Remove(target)
	}
	dev := int(unix.Mkdev(d.major, d.minor))
	if err := unix.Mknod(target, d.typ|d.mode, dev); err != nil {
		if errors.Is(err, unix.EEXIST) && !d.fromConfig {
			return nil
		}
		return fmt.Errorf("mknod %s: %w", d.path, err)
	}
	if err := unix.Lchown(target, int(d.uid), int(d.gid)); err != nil {
		return fmt.Errorf("chown %s: %w", d.path, err)
	}
	return nil
}

// pivotRoot makes rootfs the root. pivot_root(".", ".") stacks the old
// root under the new one, which is then detached (so no host path stays
// reachable). On an initramfs, where pivot_root is refused, or with
// --no-pivot, the rootfs is moved over / and chrooted into instead.
func pivotRoot(rootfs string, noPivot bool) error {
	if !noPivot {
		oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /: %w", err)
		}
		defer unix.Close(oldroot)
		if err := unix.Chdir(rootfs); err != nil {
			return fmt.Errorf("chdir %s: %w", rootfs, err)
		}
		err = unix.PivotRoot(".", ".")
		if err == nil {
			if err := unix.Fchdir(oldroot); err != nil {
				return fmt.Errorf("fchdir old root: %w", err)
			}
			// Keep the unmount from propagating to the host.
			if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("make old root slave: %w", err)
			}
			if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
				return fmt.Errorf("detach old root: %w", err)
			}
			if err := unix.Chdir("/"); err != nil {
				return fmt.Errorf("chdir /: %w", err)
			}
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("pivot_root %s: %w", rootfs, err)
		}
	}
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	return unix.Chdir("/")
}

// writeSysctls sets the spec's sysctls through the container's /proc/sys,
// refusing ones that are not isolated by a namespace the container owns.
func writeSysctls(spec *specs.Spec) error {
	has := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		has[ns.Type] = true
	}
	for k, v := range spec.Linux.Sysctl {
		ok := false
		switch {
		case strings.HasPrefix(k, "net."):
			ok = has[specs.NetworkNamespace]
		case strings.HasPrefix(k, "fs.mqueue."), k == "kernel.msgmax", k == "kernel.msgmnb", k == "kernel.msgmni",
			k == "kernel.sem", k == "kernel.shmall", k == "kernel.shmmax", k == "kernel.shmmni", k == "kernel.shm_rmid_forced":
			ok = has[specs.IPCNamespace]
		case k == "kernel.hostname", k == "kernel.domainname":
			ok = has[specs.UTSNamespace]
		}
		if !ok {
			return fmt.Errorf("sysctl %q is not isolated by a namespace of this container", k)
		}
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// maskPath hides p: an empty read-only tmpfs over a directory, /dev/null
// over a file.
func maskPath(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("masked path %s: %w", p, err)
	}
	if st.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// readonlyPath binds p onto itself and remounts it read-only.
func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("read-only path %s: %w", p, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("read-only path %s: %w", p, err)
	}
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_REC | lockedFlags(st.Flags)
	if err := unix.Mount("", p, "", uintptr(flags), ""); err != nil {
		return fmt.Errorf("read-only path %s: %w", p, err)
	}
	return nil
}
