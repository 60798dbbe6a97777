package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// MountAll performs mounts on target, in order.
//
// An overlay whose options exceed the kernel's one-page limit (a long layer
// chain under a long root) is mounted with its lower dirs relative to their
// common parent directory, from a thread that has its own working
// directory there, the way containerd does from a child process.
func MountAll(mounts []Mount, target string) error {
	for _, m := range mounts {
		if err := mountOne(m, target); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
	}
	return nil
}

// Inert returns mounts that ignore setuid bits and device nodes (nosuid,
// nodev): for content shown for inspection rather than run in a container,
// such as an image mounted with `hull image mount`.
func Inert(mounts []Mount) []Mount {
	out := make([]Mount, len(mounts))
	for i, m := range mounts {
		m.Options = append(slices.Clip(m.Options), "nosuid", "nodev")
		out[i] = m
	}
	return out
}

// Volatile returns mounts whose overlays skip syncing their upper layer
// (overlayfs' "volatile" option, Linux 5.10): for writable layers that are
// discarded, never kept across a crash. A kernel without it fails the mount
// with EINVAL.
func Volatile(mounts []Mount) []Mount {
	out := make([]Mount, len(mounts))
	for i, m := range mounts {
		if m.Type == "overlay" && slices.ContainsFunc(m.Options, func(o string) bool { return strings.HasPrefix(o, "upperdir=") }) {
			m.Options = append(slices.Clip(m.Options), "volatile")
		}
		out[i] = m
	}
	return out
}

// ClearVolatile removes the marker a volatile mount leaves in its overlay's
// work directory (work/incompat/volatile): while it is there the kernel
// refuses to mount that upper layer again, volatile or not, since after a
// crash its content could be torn. Called before mounting a volatile
// layer again (a created --rm container after a reboot): its container
// never ran, or is thrown away.
func ClearVolatile(mounts []Mount) error {
	for _, m := range mounts {
		if m.Type != "overlay" {
			continue
		}
		for _, o := range m.Options {
			if dir, ok := strings.CutPrefix(o, "workdir="); ok {
				if err := os.RemoveAll(filepath.Join(dir, "work", "incompat", "volatile")); err != nil {
					return fmt.Errorf("clear volatile marker: %w", err)
				}
			}
		}
	}
	return nil
}

// mountFlags are the options that are mount flags, not filesystem data.
var mountFlags = map[string]uintptr{"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV}

func mountOne(m Mount, target string) error {
	var flags uintptr
	var opts []string
	for _, o := range m.Options {
		if f, ok := mountFlags[o]; ok {
			flags |= f
			continue
		}
		opts = append(opts, o)
	}
	switch m.Type {
	case "bind":
		bind := uintptr(unix.MS_BIND)
		if slices.Contains(m.Options, "rbind") {
			bind |= unix.MS_REC
		}
		if err := unix.Mount(m.Source, target, "", bind, ""); err != nil {
			return err
		}
		if flags != 0 {
			if err := unix.Mount("", target, "", bind|unix.MS_REMOUNT|flags, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s: %w", strings.Join(m.Options, ","), err)
			}
		}
		return nil
	case "overlay":
		data := strings.Join(opts, ",")
		if len(data) < os.Getpagesize() {
			return unix.Mount(m.Source, target, "overlay", flags, data)
		}
		dir, compact := compactLowerdirs(opts)
		if dir == "" || len(compact) >= os.Getpagesize() {
			return fmt.Errorf("overlay options are %d bytes, over the kernel's %d-byte limit", len(data), os.Getpagesize())
		}
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		return mountFrom(dir, m.Source, abs, "overlay", flags, compact)
	}
	return fmt.Errorf("unknown mount type %q", m.Type)
}

// compactLowerdirs rewrites lowerdir= relative to the longest directory all
// lower dirs share, returning that directory and the new option string.
func compactLowerdirs(opts []string) (string, string) {
	var lowers []string
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lowers = strings.Split(v, ":")
		}
	}
	if len(lowers) == 0 {
		return "", ""
	}
	common := filepath.Dir(lowers[0])
	for _, l := range lowers[1:] {
		for common != "/" && !strings.HasPrefix(l, common+"/") {
			common = filepath.Dir(common)
		}
	}
	if common == "/" {
		return "", ""
	}
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		if strings.HasPrefix(o, "lowerdir=") {
			rel := make([]string, len(lowers))
			for i, l := range lowers {
				rel[i] = strings.TrimPrefix(l, common+"/")
			}
			o = "lowerdir=" + strings.Join(rel, ":")
		}
		out = append(out, o)
	}
	return common, strings.Join(out, ",")
}

// mountFrom calls mount(2) with dir as the working directory, on a thread
// of its own: the thread unshares its filesystem attributes first, so the
// chdir is invisible to the rest of the process, and the thread is thrown
// away afterwards (the goroutine exits locked).
func mountFrom(dir, source, target, fstype string, flags uintptr, data string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs attributes: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(source, target, fstype, flags, data)
	}()
	return <-errc
}

// Unmount unmounts target (all mounts stacked on it).
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		if err == unix.EINVAL {
			return nil // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// fixImplicitDirs gives directories an overlay layer created only as parents
// of its entries the owner, mode and times they have in the lower layers
// (lowers top first), so the merged view does not change them.
func fixImplicitDirs(upper string, lowers, rels []string) error {
	if len(rels) == 0 {
		return nil
	}
	ufd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ufd)
	lfds := make([]int, 0, len(lowers))
	defer func() {
		for _, fd := range lfds {
			unix.Close(fd)
		}
	}()
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		lfds = append(lfds, fd)
	}
	for _, rel := range rels {
		var st unix.Stat_t
		found := false
		for _, lfd := range lfds {
			fd, err := openInRoot(lfd, rel, resolveHow)
			if err != nil {
				continue
			}
			err = unix.Fstat(fd, &st)
			unix.Close(fd)
			if err == nil {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		dirRel, base := splitRel(rel)
		pfd, err := openInRoot(ufd, dirRel, resolveHow)
		if err != nil {
			continue // a later entry of the layer replaced a parent
		}
		var cur unix.Stat_t
		if err := unix.Fstatat(pfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW); err != nil || cur.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(pfd)
			continue // replaced by a later entry
		}
		err = unix.Fchownat(pfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			err = unix.Fchmodat(pfd, base, st.Mode&0o7777, 0)
		}
		if err == nil {
			err = unix.UtimesNanoAt(pfd, base, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("directory %q: %w", rel, err)
		}
	}
	return nil
}

// overlayUsing returns where an overlay with upper as its upper dir is
// mounted in this mount namespace, or "". Bind mounts are not detected.
func overlayUsing(upper string) string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	want := "upperdir=" + mountinfoEscape.Replace(upper)
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields, super := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(super) < 3 || super[0] != "overlay" {
			continue
		}
		if slices.Contains(strings.Split(super[2], ","), want) {
			return fields[4]
		}
	}
	return ""
}

// mountinfoEscape escapes a path as /proc/self/mountinfo shows it.
var mountinfoEscape = strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`)
