package cgroups

import (
	"runtime"
	"strconv"

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
	dir := ""
	for _, c := range []string{"freezer", "name=systemd", "cpuacct"} {
		if d := m.dir(c); d != "" {
			dir = d
			break
		}
	}
	if dir == "" {
		return
	}
	go func() {
		// Never unlocked: the thread ends with the goroutine, so it does
		// not outlive this write in the container's cgroup.
		runtime.LockOSThread()
		_ = writeFile(dir, "tasks", strconv.Itoa(unix.Gettid()))
	}()
}
