package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ReleaseRoot registers a last cleanup for a test's hull root (call it
// right after t.TempDir made root, so that it runs after every cleanup
// the test registers later, and before the directory's removal). What
// those could not remove, when the failure they follow broke the engine
// itself (a damaged database), it ends by hand: the processes running in
// a root directory under root or naming root on their command line
// (containers, monitors) are killed, then the mounts under root are
// unmounted, deepest first. A test then leaves no process or mount even
// so.
func ReleaseRoot(t testing.TB, root string) {
	t.Cleanup(func() { releaseRoot(root) })
}

func releaseRoot(root string) {
	prefix := filepath.Clean(root) + "/"
	self := os.Getpid()
	procs, _ := os.ReadDir("/proc")
	var killed []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + p.Name()
		r, _ := os.Readlink(dir + "/root")
		cmd, _ := os.ReadFile(dir + "/cmdline")
		if strings.HasPrefix(r+"/", prefix) || slices.Contains(strings.Split(string(cmd), "\x00"), filepath.Clean(root)) {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(killed) > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		live := killed[:0]
		for _, pid := range killed {
			if ProcessRunning(pid) {
				live = append(live, pid)
			}
		}
		killed = live
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], prefix) {
			mounts = append(mounts, f[4])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		unix.Unmount(m, unix.MNT_DETACH)
	}
}
