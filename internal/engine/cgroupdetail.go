package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"hull/internal/cgroups"
)

// CgroupDetail is what cadvisor reports about a running container beyond
// Stats: the CPU split and CFS throttling, the memory break-down, tasks,
// and the descriptors its processes hold. It is read on demand (the
// CRI's metrics), never on a container's start path.
type CgroupDetail struct {
	// CPUUserNanos and CPUSystemNanos split CPUNanos.
	CPUUserNanos, CPUSystemNanos uint64
	// CFS bandwidth: enforcement periods, those throttled, and the time
	// throttled.
	CFSPeriods, CFSThrottledPeriods, CFSThrottledNanos uint64
	// Memory: page cache, kernel memory, mapped files, swap in use, the
	// peak usage, times the limit was hit (failcnt), OOM kills.
	MemoryCache, MemoryKernel, MemoryMappedFile, MemorySwap, MemoryPeak, MemoryFailcnt, OOMKills uint64
	// Processes and Threads in the cgroup; ThreadsMax its pids limit (0:
	// none).
	Processes, Threads, ThreadsMax uint64
	// FileDescriptors and Sockets open in its processes.
	FileDescriptors, Sockets uint64
}

// CgroupDetail reads the detail of the running container ref (cgroup v2
// and v1 alike).
func (e *Engine) CgroupDetail(ctx context.Context, ref string) (*CgroupDetail, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	cg, err := e.rt.Cgroup(c.ID)
	if err != nil {
		return nil, fmt.Errorf("cgroup of %s: %w", c.Name, err)
	}
	d := &CgroupDetail{}
	dir := func(controller string) string {
		for _, m := range cg.Mounts() {
			if m.V2 && cg.Mode == cgroups.Unified || slices.Contains(m.Controllers, controller) {
				return m.Dir
			}
		}
		return ""
	}
	readUint := func(path string) uint64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	procs := filepath.Join(dir("pids"), "cgroup.procs")
	if cg.Mode == cgroups.Unified {
		u := dir("")
		cpu := statKeys(filepath.Join(u, "cpu.stat"))
		d.CPUUserNanos, d.CPUSystemNanos = cpu["user_usec"]*1000, cpu["system_usec"]*1000
		d.CFSPeriods, d.CFSThrottledPeriods, d.CFSThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
		mem := statKeys(filepath.Join(u, "memory.stat"))
		d.MemoryCache, d.MemoryKernel, d.MemoryMappedFile = mem["file"], mem["kernel"], mem["file_mapped"]
		d.MemorySwap = readUint(filepath.Join(u, "memory.swap.current"))
		d.MemoryPeak = readUint(filepath.Join(u, "memory.peak"))
		ev := statKeys(filepath.Join(u, "memory.events"))
		d.MemoryFailcnt, d.OOMKills = ev["max"], ev["oom_kill"]
		d.Threads = readUint(filepath.Join(u, "pids.current"))
		d.ThreadsMax = readUint(filepath.Join(u, "pids.max")) // "max" reads as 0
		procs = filepath.Join(u, "cgroup.procs")
	} else {
		if a := dir("cpuacct"); a != "" {
			st := statKeys(filepath.Join(a, "cpuacct.stat")) // in USER_HZ ticks
			d.CPUUserNanos, d.CPUSystemNanos = st["user"]*(1e9/clockTicks), st["system"]*(1e9/clockTicks)
		}
		if c := dir("cpu"); c != "" {
			st := statKeys(filepath.Join(c, "cpu.stat"))
			d.CFSPeriods, d.CFSThrottledPeriods, d.CFSThrottledNanos = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		}
		if m := dir("memory"); m != "" {
			st := statKeys(filepath.Join(m, "memory.stat"))
			d.MemoryCache, d.MemoryMappedFile, d.MemorySwap = st["total_cache"], st["total_mapped_file"], st["total_swap"]
			d.MemoryKernel = readUint(filepath.Join(m, "memory.kmem.usage_in_bytes"))
			d.MemoryPeak = readUint(filepath.Join(m, "memory.max_usage_in_bytes"))
			d.MemoryFailcnt = readUint(filepath.Join(m, "memory.failcnt"))
			d.OOMKills = statKeys(filepath.Join(m, "memory.oom_control"))["oom_kill"]
		}
		if p := dir("pids"); p != "" {
			d.Threads = readUint(filepath.Join(p, "pids.current"))
			d.ThreadsMax = readUint(filepath.Join(p, "pids.max"))
		}
	}
	if data, err := os.ReadFile(procs); err == nil {
		for _, pid := range strings.Fields(string(data)) {
			d.Processes++
			fds, _ := os.ReadDir("/proc/" + pid + "/fd")
			for _, fd := range fds {
				d.FileDescriptors++
				if l, err := os.Readlink("/proc/" + pid + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
					d.Sockets++
				}
			}
		}
	}
	return d, nil
}
