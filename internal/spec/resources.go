package spec

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// minMemory is docker's smallest --memory: below it the container cannot
// even start its process.
const minMemory = 6 << 20

// cpuPeriod is the CFS period --cpus is expressed in (100 ms, docker's).
const cpuPeriod = 100000

// swapAccounting reports whether the kernel can limit swap; docker only
// defaults --memory-swap to twice --memory when it can. A variable so
// tests can pin it.
var swapAccounting = func() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		return true
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			_, err := os.Stat(filepath.Join("/sys/fs/cgroup", p, "memory.swap.max"))
			return err == nil
		}
	}
	return false
}

// onlineCPUs is the host's online CPU list ("0-3"), a variable for tests.
var onlineCPUs = func() string {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return fmt.Sprintf("0-%d", goruntime.NumCPU()-1)
	}
	return strings.TrimSpace(string(b))
}

// onlineMems is the host's online memory nodes ("0"), a variable for tests.
var onlineMems = func() string {
	b, err := os.ReadFile("/sys/devices/system/node/online")
	if err != nil {
		return "0"
	}
	return strings.TrimSpace(string(b))
}

// hostCgroupFile tells whether the host's cgroup hierarchy has a
// controller file: in its v1 controller's directory, or at the v2 root.
func hostCgroupFile(controller, file string) bool {
	for _, p := range []string{filepath.Join("/sys/fs/cgroup", controller, file), filepath.Join("/sys/fs/cgroup", file)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Variables for tests: what the host's cgroups can do.
var (
	oomKillDisableSupported = func() bool { return hostCgroupFile("memory", "memory.oom_control") }
	rtSupported             = func() bool { return hostCgroupFile("cpu", "cpu.rt_runtime_us") }
	blkioWeightSupported    = func() bool {
		return hostCgroupFile("blkio", "blkio.weight") || hostCgroupFile("blkio", "blkio.bfq.weight") || hostCgroupFile("", "io.weight") || hostCgroupFile("", "io.bfq.weight")
	}
)

// Warnings are docker's warnings for options the host cannot honour,
// which are dropped rather than refused.
func Warnings(o Options) []string {
	var w []string
	if o.KernelMemory > 0 {
		w = append(w, "--kernel-memory is ignored: kernel memory limits are deprecated, and the kernel no longer supports them")
	}
	if o.OomKillDisable && !oomKillDisableSupported() {
		w = append(w, "Your kernel does not support OomKillDisable. OomKillDisable discarded.")
	} else if o.OomKillDisable && o.Memory == 0 {
		w = append(w, "Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous.")
	}
	if o.BlkioWeight > 0 && !blkioWeightSupported() {
		w = append(w, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
	}
	return w
}

// blockIO is --blkio-weight and the --device-{read,write}-{bps,iops}
// throttles, by the host device's major:minor.
func blockIO(o Options, r *specs.LinuxResources) error {
	b := &specs.LinuxBlockIO{}
	used := false
	if w := o.BlkioWeight; w != 0 {
		if w < 10 || w > 1000 {
			return fmt.Errorf("invalid --blkio-weight %d: the range is 10 to 1000", w)
		}
		if blkioWeightSupported() {
			b.Weight, used = &w, true
		}
	}
	throttle := func(flag string, in []ThrottleDevice) ([]specs.LinuxThrottleDevice, error) {
		var out []specs.LinuxThrottleDevice
		for _, t := range in {
			var st unix.Stat_t
			if err := unix.Stat(t.Path, &st); err != nil {
				return nil, fmt.Errorf("%s %s: %w", flag, t.Path, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK {
				return nil, fmt.Errorf("%s %s: not a block device (give a disk such as /dev/sda)", flag, t.Path)
			}
			td := specs.LinuxThrottleDevice{Rate: t.Rate}
			td.Major, td.Minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
			out = append(out, td)
			used = true
		}
		return out, nil
	}
	var err error
	if b.ThrottleReadBpsDevice, err = throttle("--device-read-bps", o.BlkioDeviceReadBps); err != nil {
		return err
	}
	if b.ThrottleWriteBpsDevice, err = throttle("--device-write-bps", o.BlkioDeviceWriteBps); err != nil {
		return err
	}
	if b.ThrottleReadIOPSDevice, err = throttle("--device-read-iops", o.BlkioDeviceReadIOps); err != nil {
		return err
	}
	if b.ThrottleWriteIOPSDevice, err = throttle("--device-write-iops", o.BlkioDeviceWriteIOps); err != nil {
		return err
	}
	if used {
		r.BlockIO = b
	}
	return nil
}

// resources are the cgroup limits, checked as docker checks them, and the
// device rules: deny everything but docker's default nodes, or allow
// everything when privileged.
func resources(o Options) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{Devices: deviceRules(o.Privileged)}
	if err := memory(o, r); err != nil {
		return nil, err
	}
	if err := cpu(o, r); err != nil {
		return nil, err
	}
	if err := blockIO(o, r); err != nil {
		return nil, err
	}
	switch {
	case o.PidsLimit > 0 || o.PidsLimit == -1:
		l := o.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &l}
	case o.PidsLimit < -1:
		return nil, fmt.Errorf("invalid --pids-limit %d: use a positive number, or -1 for unlimited", o.PidsLimit)
	}
	r.HugepageLimits = o.HugepageLimits
	r.Unified = o.Unified
	return r, nil
}

func memory(o Options, r *specs.LinuxResources) error {
	m := &specs.LinuxMemory{}
	switch {
	case o.Memory < 0:
		return fmt.Errorf("invalid --memory %d: must be positive", o.Memory)
	case o.Memory > 0 && o.Memory < minMemory:
		return fmt.Errorf("--memory %s is too small: the minimum is 6MB", formatBytes(o.Memory))
	case o.Memory > 0:
		m.Limit = &o.Memory
	}
	switch {
	case o.MemorySwap < -1:
		return fmt.Errorf("invalid --memory-swap %d: use a size, or -1 for unlimited swap", o.MemorySwap)
	case o.MemorySwap > 0 && o.Memory == 0:
		return fmt.Errorf("--memory-swap needs --memory as well (it is the limit of memory plus swap)")
	case o.MemorySwap > 0 && o.MemorySwap < o.Memory:
		return fmt.Errorf("--memory-swap %s is below --memory %s: it is memory plus swap, so it must be at least --memory", formatBytes(o.MemorySwap), formatBytes(o.Memory))
	case o.MemorySwap != 0:
		m.Swap = &o.MemorySwap
	case o.Memory > 0 && swapAccounting():
		swap := 2 * o.Memory // docker: as much swap as memory
		m.Swap = &swap
	}
	if sw := o.MemorySwappiness; sw != nil {
		if *sw < 0 || *sw > 100 {
			return fmt.Errorf("invalid --memory-swappiness %d: use 0 to 100", *sw)
		}
		v := uint64(*sw)
		m.Swappiness = &v
	}
	switch {
	case o.MemoryReservation < 0:
		return fmt.Errorf("invalid --memory-reservation %d: must be positive", o.MemoryReservation)
	case o.MemoryReservation > 0 && o.Memory > 0 && o.MemoryReservation > o.Memory:
		return fmt.Errorf("--memory-reservation %s is above --memory %s: the reservation is a soft limit below the hard one", formatBytes(o.MemoryReservation), formatBytes(o.Memory))
	case o.MemoryReservation > 0:
		m.Reservation = &o.MemoryReservation
	}
	if o.KernelMemory < 0 {
		return fmt.Errorf("invalid --kernel-memory %d: must be positive", o.KernelMemory)
	}
	if o.OomKillDisable && oomKillDisableSupported() {
		t := true
		m.DisableOOMKiller = &t
	}
	if m.Limit != nil || m.Swap != nil || m.Reservation != nil || m.DisableOOMKiller != nil || m.Swappiness != nil {
		r.Memory = m
	}
	return nil
}

func cpu(o Options, r *specs.LinuxResources) error {
	c := &specs.LinuxCPU{}
	if o.NanoCPUs != 0 {
		n := int64(goruntime.NumCPU())
		quota := o.NanoCPUs * cpuPeriod / 1e9
		if o.NanoCPUs < 0 || o.NanoCPUs > n*1e9 || quota < 1000 {
			return fmt.Errorf("invalid --cpus %s: the range is 0.01 to %d, as there are only %d CPUs available", strconv.FormatFloat(float64(o.NanoCPUs)/1e9, 'f', -1, 64), n, n)
		}
		period := uint64(cpuPeriod)
		c.Quota, c.Period = &quota, &period
	}
	switch {
	case o.NanoCPUs != 0 && (o.CPUPeriod != 0 || o.CPUQuota != 0):
		return fmt.Errorf("conflicting options: --cpus and --cpu-period/--cpu-quota (give one or the other)")
	case o.CPUPeriod != 0 && (o.CPUPeriod < 1000 || o.CPUPeriod > 1000000):
		return fmt.Errorf("invalid --cpu-period %d: the range is 1000 to 1000000 microseconds", o.CPUPeriod)
	case o.CPUQuota != 0 && o.CPUQuota != -1 && o.CPUQuota < 1000:
		return fmt.Errorf("invalid --cpu-quota %d: the minimum is 1000 microseconds (or -1 for none)", o.CPUQuota)
	}
	if o.CPUPeriod != 0 {
		p := uint64(o.CPUPeriod)
		c.Period = &p
	}
	if o.CPUQuota != 0 {
		q := o.CPUQuota
		c.Quota = &q
	}
	if o.CPURealtimePeriod != 0 || o.CPURealtimeRuntime != 0 {
		if !rtSupported() {
			return fmt.Errorf("--cpu-rt-period/--cpu-rt-runtime: this host's kernel has no cgroup CPU real-time scheduling (cpu.rt_runtime_us is missing); drop the flags")
		}
		switch {
		case o.CPURealtimePeriod < 0 || o.CPURealtimeRuntime < -1:
			return fmt.Errorf("invalid --cpu-rt-period/--cpu-rt-runtime: must be positive")
		case o.CPURealtimePeriod != 0 && o.CPURealtimeRuntime > o.CPURealtimePeriod:
			return fmt.Errorf("--cpu-rt-runtime %d is above --cpu-rt-period %d: the runtime is a part of the period", o.CPURealtimeRuntime, o.CPURealtimePeriod)
		}
		if o.CPURealtimePeriod != 0 {
			p := uint64(o.CPURealtimePeriod)
			c.RealtimePeriod = &p
		}
		if o.CPURealtimeRuntime != 0 {
			rt := o.CPURealtimeRuntime
			c.RealtimeRuntime = &rt
		}
	}
	if o.CpusetMems != "" {
		if err := checkOnline("--cpuset-mems", o.CpusetMems, onlineMems(), "memory node"); err != nil {
			return err
		}
		c.Mems = o.CpusetMems
	}
	switch {
	case o.CPUShares < 0:
		return fmt.Errorf("invalid --cpu-shares %d: must be positive (1024 is the default weight)", o.CPUShares)
	case o.CPUShares > 0:
		shares := uint64(o.CPUShares)
		c.Shares = &shares
	}
	if o.CpusetCpus != "" {
		if err := checkOnline("--cpuset-cpus", o.CpusetCpus, onlineCPUs(), "CPU"); err != nil {
			return err
		}
		c.Cpus = o.CpusetCpus
	}
	if c.Quota != nil || c.Period != nil || c.Shares != nil || c.Cpus != "" || c.Mems != "" || c.RealtimePeriod != nil || c.RealtimeRuntime != nil {
		r.CPU = c
	}
	return nil
}

// checkOnline checks a --cpuset-cpus or --cpuset-mems list against the
// host's online CPUs or memory nodes (online, in the same list format).
func checkOnline(flag, list, online, what string) error {
	want, err := parseCPUList(list)
	if err != nil {
		return fmt.Errorf("invalid %s %q: %w (use a list such as 0-2,4)", flag, list, err)
	}
	have, err := parseCPUList(online)
	if err != nil {
		return fmt.Errorf("online %ss %q: %w", what, online, err)
	}
	for _, n := range slices.Sorted(maps.Keys(want)) {
		if !have[n] {
			return fmt.Errorf("%s %s: %s %d is not available (online: %s)", flag, list, what, n, online)
		}
	}
	return nil
}

// Limits are the cgroup limits of o, checked as docker checks them,
// without the device rules: what `update` writes to a running
// container's cgroups.
func Limits(o Options) (*specs.LinuxResources, error) {
	r, err := resources(o)
	if err != nil {
		return nil, err
	}
	r.Devices = nil
	return r, nil
}

// parseCPUList reads the kernel's list format: "0-3,5,7-8".
func parseCPUList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a CPU number", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("%q is too large a range", part)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}

// deviceRules is docker's device cgroup: deny, then allow mknod of
// anything (opening needs its own rule) and the standard nodes.
func deviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	i64 := func(v int64) *int64 { return &v }
	any := i64(-1)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: any, Minor: any, Access: "m"},
		{Allow: true, Type: "b", Major: any, Minor: any, Access: "m"},
	}
	for _, d := range [][2]int64{
		{1, 3},    // null
		{1, 5},    // zero
		{1, 7},    // full
		{1, 8},    // random
		{1, 9},    // urandom
		{5, 0},    // tty
		{5, 1},    // console
		{5, 2},    // ptmx
		{136, -1}, // pts/*
	} {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(d[0]), Minor: i64(d[1]), Access: "rwm"})
	}
	return rules
}

// rlimitNames are the names --ulimit accepts (setrlimit(2) without RLIMIT_).
var rlimitNames = []string{
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// rlimits converts --ulimit values; -1 is unlimited.
func rlimits(ul []Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	for _, u := range ul {
		if err := u.check(); err != nil {
			return nil, err
		}
		name := strings.ToLower(u.Name)
		if seen[name] {
			return nil, fmt.Errorf("ulimit %s given twice", name)
		}
		seen[name] = true
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: rlimitValue(u.Soft), Hard: rlimitValue(u.Hard)})
	}
	return out, nil
}

func rlimitValue(v int64) uint64 {
	if v == -1 {
		return math.MaxUint64 // RLIM_INFINITY
	}
	return uint64(v)
}

func (u Ulimit) check() error {
	if !containsFold(rlimitNames, u.Name) {
		return fmt.Errorf("invalid ulimit type %q (use one of %s)", u.Name, strings.Join(rlimitNames, ", "))
	}
	if u.Soft < -1 || u.Hard < -1 {
		return fmt.Errorf("ulimit %s: limits must be positive, or -1 for unlimited", u.Name)
	}
	if rlimitValue(u.Soft) > rlimitValue(u.Hard) {
		return fmt.Errorf("ulimit %s: soft limit %d is above the hard limit %d (use soft:hard with soft <= hard)", u.Name, u.Soft, u.Hard)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
