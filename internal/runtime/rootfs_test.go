package runtime

import (
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// inMountNS runs f on a thread of its own in a new mount namespace, slave
// to the host's; the thread, and with it the namespace and every mount f
// made, ends with f, even when f fails.
func inMountNS(t *testing.T, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread exits
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// mountInfo returns the mountinfo line of the mount at path in this
// thread's mount namespace, or "".
func mountInfo(path string) string {
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	line := ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == path {
			line = l // the last one is on top
		}
	}
	return line
}

// TestBindOptionsApplyToTheMountItself: the read-only flag and the
// propagation of a bind mount go to the mount that was made, not to
// whatever its path leads to a moment later. Here a directory above the
// mount point is swapped for a symlink to another mount just after the
// bind (as a container sharing that volume could): the bind must still end
// read-only and private, and the other mount untouched. The kernels
// without mount_setattr or open_tree have their own ways, run here too; a
// bind of a file goes each way as well.
func TestBindOptionsApplyToTheMountItself(t *testing.T) {
	for _, api := range []int{2, 1, 0} {
		t.Run("mountAPI="+strconv.Itoa(api), func(t *testing.T) {
			defer func(old int) { mountAPI = old }(mountAPI)
			mountAPI = api
			testBindOptions(t)
		})
	}
}

func testBindOptions(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	src, decoySrc := filepath.Join(dir, "src"), filepath.Join(dir, "decoy-src")
	decoy := filepath.Join(rootfs, "decoy", "data")
	for _, d := range []string{src, decoySrc, decoy, filepath.Join(rootfs, "vol")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srcFile := filepath.Join(dir, "file")
	if err := os.WriteFile(srcFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(rootfs, "vol.moved")
	cfg := &initConfig{Rootfs: rootfs, Bundle: dir}
	inMountNS(t, func() error {
		if err := unix.Mount(decoySrc, decoy, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		if err := unix.Mount("", decoy, "", unix.MS_SHARED, ""); err != nil {
			return err
		}
		testHookBindAttached = func(string) {
			if err := os.Rename(filepath.Join(rootfs, "vol"), moved); err != nil {
				t.Errorf("swap: %v", err)
			}
			if err := os.Symlink("decoy", filepath.Join(rootfs, "vol")); err != nil {
				t.Errorf("swap: %v", err)
			}
		}
		m := specs.Mount{Destination: "/vol/data", Type: "bind", Source: src, Options: []string{"bind", "ro", "nosuid", "private"}}
		err := mountEntry(cfg, m)
		testHookBindAttached = nil
		if err != nil {
			t.Errorf("mountEntry: %v", err)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(moved, "data"), &st); err != nil {
			return err
		}
		if st.Flags&unix.ST_RDONLY == 0 || st.Flags&unix.ST_NOSUID == 0 {
			t.Errorf("the bind mount's flags are %#x, want read-only and nosuid", st.Flags)
		}
		if err := os.WriteFile(filepath.Join(moved, "data", "f"), nil, 0o644); err == nil {
			t.Errorf("the read-only bind mount took a write")
		}
		if info := mountInfo(filepath.Join(moved, "data")); strings.Contains(info, "shared:") || strings.Contains(info, "master:") {
			t.Errorf("the bind mount is not private: %s", info)
		}
		if err := unix.Statfs(decoy, &st); err != nil {
			return err
		}
		if st.Flags&(unix.ST_RDONLY|unix.ST_NOSUID) != 0 {
			t.Errorf("the mount the symlink led to was remounted (flags %#x)", st.Flags)
		}
		if info := mountInfo(decoy); !strings.Contains(info, "shared:") {
			t.Errorf("the mount the symlink led to lost its propagation: %s", info)
		}

		if err := mountEntry(cfg, specs.Mount{Destination: "/etc/file", Type: "bind", Source: srcFile, Options: []string{"bind", "ro"}}); err != nil {
			t.Errorf("mountEntry of a file: %v", err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, "etc/file"), []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write to the read-only file bind: %v, want EROFS", err)
		}
		return nil
	})
}
