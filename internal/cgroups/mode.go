// Package cgroups detects how the host mounts control groups and manages the
// cgroups hull creates for containers. hull treats v1, hybrid (v1 controllers
// plus an empty cgroup2 at /sys/fs/cgroup/unified) and unified v2 hosts alike.
//
// A Manager (manager.go) creates a container's directories, applies the OCI
// resources (memory limit/reservation/swap, cpu shares or weight, quota,
// period, cpuset, pids, block io weight and throttles, hugepages, devices on
// v1, the raw "unified" map on v2), moves processes in, freezes and thaws
// them, reads stats (memory usage and peak, OOM kills, pids, cpu) and OOM
// events, and removes only the directories it made.
//
// Device rules: v1 and hybrid hosts enforce them through devices.allow and
// devices.deny; on v2 they are compiled into a BPF_PROG_TYPE_CGROUP_DEVICE
// program attached to the container's cgroup (devicefilter.go). Changing
// the rules of a live v2 container is not supported yet.
package cgroups

import (
	"golang.org/x/sys/unix"
)

// Mode is how the host's cgroup hierarchy is laid out.
type Mode int

const (
	// Unavailable: no cgroup filesystem is mounted at /sys/fs/cgroup.
	Unavailable Mode = iota
	// Legacy: v1 controllers only.
	Legacy
	// Hybrid: v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified.
	Hybrid
	// Unified: cgroup2 mounted at /sys/fs/cgroup.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "v1"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "v2"
	}
	return "unavailable"
}

// DefaultMountpoint is where every supported layout is rooted.
const DefaultMountpoint = "/sys/fs/cgroup"

// DetectMode inspects the filesystem types under /sys/fs/cgroup.
func DetectMode() Mode {
	return detectMode(DefaultMountpoint)
}

func detectMode(root string) Mode {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return Unavailable
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Unified
	}
	if st.Type != unix.TMPFS_MAGIC {
		return Unavailable
	}
	if err := unix.Statfs(root+"/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Hybrid
	}
	return Legacy
}
