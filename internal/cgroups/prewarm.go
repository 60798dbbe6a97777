package cgroups

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Prewarm starts paying, in the background, for the first migration into
// the container's cgroups. On v1 every migration takes the kernel's global
// cgroup_threadgroup_rwsem for writing, and the first writer after a quiet
// period waits for an RCU grace period (10-20 ms on small VMs); writers
// during the following grace period do not. Prewarm moves one short-lived
// thread of this process into the container's freezer cgroup (a controller
// with no limits to trip over) right after Create, so that wait overlaps
// with starting the init instead of following it. The thread then exits,
// leaving nothing in the cgroup. It is a no-op on v2 hosts.
func (m *Manager) Prewarm() {
	if m.Mode == Unified {
		return
	}
	dir, ctrl := "", ""
	for _, c := range []string{"freezer", "name=systemd", "cpuacct"} {
		if d := m.dir(c); d != "" {
			dir, ctrl = d, c
			break
		}
	}
	if dir == "" {
		return
	}
	go func() {
		// Never unlocked: the thread ends with the goroutine. It also
		// moves back where it came from at once, so the container's
		// cgroup never keeps a thread of ours (a thread left there makes
		// the cgroup impossible to remove while this process lives).
		runtime.LockOSThread()
		tid := strconv.Itoa(unix.Gettid())
		home := threadCgroup(tid, ctrl, m.v1[ctrl])
		if home == "" {
			return
		}
		if writeFile(dir, "tasks", tid) == nil {
			_ = writeFile(home, "tasks", tid)
		}
	}()
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
