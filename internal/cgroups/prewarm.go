package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// KeepWarm makes cgroup v1 migrations fast for as long as it runs (at
// most max), and returns the function that ends it. stop(false) returns at
// once; stop(true) also waits for the thread to leave its cgroup, which a
// process about to exit does so as not to leave the cgroup behind (its
// first write may still be waiting for the kernel, as long as exiting
// would).
//
// On v1 every migration (a write to cgroup.procs or tasks, which is how a
// container's init is placed in its cgroups) takes the kernel's global
// cgroup_threadgroup_rwsem for writing. The first writer after a quiet
// period waits for an RCU grace period, 4-15 ms on a small VM, and so did
// most container starts; a writer that comes within a grace period of the
// previous one does not wait. KeepWarm therefore pays for the first wait
// at once, on a thread of its own, and then writes again every
// millisecond, so the migrations that follow (in this process or in
// another, such as the monitor a CLI starts) find the lock warm.
//
// The thread moves into a freezer cgroup of hull's own, /hull-warm (made
// if missing; the last process to leave removes it), rewrites only its own
// tid there, and moves back where it came from when stopped. It is a no-op where freezer v1 is not mounted (cgroup v2
// places a process without that lock's slow path).
func KeepWarm(max time.Duration) (stop func(wait bool)) {
	done, left := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(left)
		// Never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		mnt := filepath.Join(DefaultMountpoint, "freezer")
		var st unix.Statfs_t
		if unix.Statfs(mnt, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			return
		}
		tid := strconv.Itoa(unix.Gettid())
		home := threadCgroup(tid, "freezer", mnt)
		if home == "" {
			return
		}
		dir := filepath.Join(mnt, "hull-warm")
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return
		}
		defer func() {
			_ = writeFile(home, "tasks", tid)
			_ = unix.Rmdir(dir) // busy while another process keeps warm
		}()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		deadline := time.After(max)
		for {
			if writeFile(dir, "tasks", tid) != nil {
				return
			}
			select {
			case <-done:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
		}
	}()
	end := sync.OnceFunc(func() { close(done) })
	return func(wait bool) {
		end()
		if wait {
			<-left
		}
	}
}

// threadCgroup is the directory of thread tid's cgroup in the v1 hierarchy
// of controller ctrl mounted at mnt, or "" if it cannot be told.
func threadCgroup(tid, ctrl, mnt string) string {
	data, err := os.ReadFile("/proc/self/task/" + tid + "/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		// 7:freezer:/some/path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == ctrl && mnt != "" {
				return filepath.Join(mnt, parts[2])
			}
		}
	}
	return ""
}
