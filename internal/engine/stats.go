package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"hull/internal/cgroups"
)

// Stats is one reading of a running container's resource counters, with
// the host's CPU time read at the same moment: a container's CPU share is
// the ratio of two readings' differences (docker's formula),
//
//	(CPUNanos - prev.CPUNanos) / (SystemCPUNanos - prev.SystemCPUNanos) * OnlineCPUs
type Stats struct {
	Time time.Time
	// CPUNanos is the CPU time the container's processes have used.
	CPUNanos uint64
	// SystemCPUNanos is the CPU time the host has spent, all CPUs.
	SystemCPUNanos uint64
	OnlineCPUs     int
	// MemoryUsage is the memory in use less the page cache the kernel can
	// drop at once (docker's MEM USAGE; the CRI's working set).
	MemoryUsage uint64
	// MemoryTotal is the memory in use, page cache included (the CRI's
	// usage_bytes); MemoryRSS the anonymous memory resident, PageFaults
	// and MajorPageFaults the cgroup's fault counters (memory.stat).
	MemoryTotal, MemoryRSS, PageFaults, MajorPageFaults uint64
	// MemoryLimit is the container's limit, or the host's memory when the
	// container has none (or a larger one).
	MemoryLimit uint64
	Pids        uint64
	// NetRx and NetTx are bytes received and sent over the interfaces of
	// the container's network namespace, loopback excluded (0 for a
	// container on the host's network).
	NetRx, NetTx uint64
	// BlockRead and BlockWrite are bytes read from and written to block
	// devices (see cgroups.BlockIOStats).
	BlockRead, BlockWrite uint64
}

// Stats reads the counters of the container ref, which must be running
// (or paused).
func (e *Engine) Stats(ctx context.Context, ref string) (*Stats, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	sys := hostCPUNanos()
	st, err := e.rt.Stats(c.ID)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	s := &Stats{Time: time.Now(), CPUNanos: st.CPU.UsageNanos, SystemCPUNanos: sys, OnlineCPUs: onlineCPUs(),
		MemoryUsage: st.Memory.Usage, MemoryLimit: st.Memory.Limit, Pids: st.Pids.Current,
		BlockRead: st.BlockIO.Read, BlockWrite: st.BlockIO.Write, MemoryTotal: st.Memory.Usage}
	e.memoryDetail(c.ID, s)
	if cache := e.inactiveFile(c.ID); cache < s.MemoryUsage {
		s.MemoryUsage -= cache
	}
	if mem := hostMemory(); s.MemoryLimit == 0 || s.MemoryLimit > mem {
		s.MemoryLimit = mem
	}
	if c.Pid > 0 && c.Config.Spec.Network != "host" {
		s.NetRx, s.NetTx = netIO(c.Pid)
	}
	return s, nil
}

// hostCPUNanos is the host's total CPU time (all fields of /proc/stat's
// cpu line) in nanoseconds.
func hostCPUNanos() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[0] == "cpu" {
			var ticks uint64
			for _, v := range fields[1:8] { // user nice system idle iowait irq softirq
				n, _ := strconv.ParseUint(v, 10, 64)
				ticks += n
			}
			return ticks * (1e9 / clockTicks)
		}
	}
	return 0
}

// onlineCPUs counts the host's CPUs (the cpuN lines of /proc/stat).
func onlineCPUs() int {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return max(n, 1)
}

// hostMemory is MemTotal: the limit docker shows for an unlimited container.
func hostMemory() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// netIO sums received and sent bytes over the interfaces of the
// container's network namespace, loopback excluded (as docker).
func netIO(pid int) (rx, tx uint64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

// inactiveFile is the page cache the kernel can drop at once, which
// docker leaves out of MEM USAGE (v1: total_inactive_file, v2:
// inactive_file in memory.stat).
func (e *Engine) inactiveFile(id string) uint64 {
	cg, err := e.rt.Cgroup(id)
	if err != nil {
		return 0
	}
	for _, m := range cg.Mounts() {
		switch {
		case slices.Contains(m.Controllers, "memory"):
			return statKey(filepath.Join(m.Dir, "memory.stat"), "total_inactive_file")
		case m.V2 && cg.Mode == cgroups.Unified:
			return statKey(filepath.Join(m.Dir, "memory.stat"), "inactive_file")
		}
	}
	return 0
}

// statKey reads one "key value" line of a cgroup stat file.
func statKey(path, key string) uint64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
