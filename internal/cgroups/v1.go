package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrBelowUsage is a memory limit the kernel refused because the cgroup
// uses more than it and could not reclaim enough (v1: EBUSY).
var ErrBelowUsage = errors.New("cgroups: memory limit below current usage")

// BlkioWeightSupported reports whether the host can weigh block I/O: v1's
// blkio.weight went with the CFQ scheduler (BFQ has blkio.bfq.weight); v2
// has io.weight or io.bfq.weight once the io controller is enabled.
func BlkioWeightSupported() bool {
	switch DetectMode() {
	case Unified:
		for _, f := range []string{"io.weight", "io.bfq.weight"} {
			if matches, _ := filepath.Glob(filepath.Join(DefaultMountpoint, "*", f)); len(matches) > 0 {
				return true
			}
		}
		return false
	case Legacy, Hybrid:
		for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
			if _, err := os.Stat(filepath.Join(DefaultMountpoint, "blkio", f)); err == nil {
				return true
			}
		}
	}
	return false
}

// HugetlbSupported reports whether the host can limit hugepages: the
// hugetlb controller mounted (v1) or available (v2).
func HugetlbSupported() bool {
	switch DetectMode() {
	case Unified:
		b, _ := os.ReadFile(filepath.Join(DefaultMountpoint, "cgroup.controllers"))
		return slices.Contains(strings.Fields(string(b)), "hugetlb")
	case Legacy, Hybrid:
		_, err := os.Stat(filepath.Join(DefaultMountpoint, "hugetlb"))
		return err == nil
	}
	return false
}

// setV1 writes resources into the per-controller directories of a v1 or
// hybrid host.
func (m *Manager) setV1(r *specs.LinuxResources) error {
	if len(r.Unified) > 0 {
		return errors.New("cgroups: linux.resources.unified needs a cgroup v2 host")
	}
	if mem := r.Memory; mem != nil {
		d, err := m.need("memory")
		if err != nil {
			return err
		}
		if err := setMemoryV1(d, mem); err != nil {
			return err
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.RealtimeRuntime != nil || cpu.RealtimePeriod != nil || cpu.Idle != nil {
			d, err := m.need("cpu")
			if err != nil {
				return err
			}
			if cpu.Shares != nil && *cpu.Shares != 0 {
				if err := writeFile(d, "cpu.shares", strconv.FormatUint(*cpu.Shares, 10)); err != nil {
					return err
				}
			}
			if cpu.Period != nil && *cpu.Period != 0 {
				if err := writeFile(d, "cpu.cfs_period_us", strconv.FormatUint(*cpu.Period, 10)); err != nil {
					return err
				}
			}
			if cpu.Quota != nil && *cpu.Quota != 0 {
				if err := writeFile(d, "cpu.cfs_quota_us", strconv.FormatInt(*cpu.Quota, 10)); err != nil {
					return err
				}
			}
			if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
				if err := writeFile(d, "cpu.rt_period_us", strconv.FormatUint(*cpu.RealtimePeriod, 10)); err != nil {
					return err
				}
			}
			if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
				if err := writeFile(d, "cpu.rt_runtime_us", strconv.FormatInt(*cpu.RealtimeRuntime, 10)); err != nil {
					return err
				}
			}
		}
		if cpu.Cpus != "" || cpu.Mems != "" {
			d, err := m.need("cpuset")
			if err != nil {
				return err
			}
			if err := setCpuset(d, cpu); err != nil {
				return err
			}
		}
	}
	if p := r.Pids; p != nil {
		d, err := m.need("pids")
		if err != nil {
			return err
		}
		v := "max"
		if p.Limit != nil && *p.Limit > 0 {
			v = strconv.FormatInt(*p.Limit, 10)
		}
		if err := writeFile(d, "pids.max", v); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		d, err := m.need("blkio")
		if err != nil {
			return err
		}
		if err := setBlkioV1(d, b); err != nil {
			return err
		}
	}
	for _, h := range r.HugepageLimits {
		d, err := m.need("hugetlb")
		if err != nil {
			return err
		}
		if err := writeFile(d, "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10)); err != nil {
			return err
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			d, err := m.need("net_cls")
			if err != nil {
				return err
			}
			if err := writeFile(d, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
				return err
			}
		}
		for _, p := range n.Priorities {
			d, err := m.need("net_prio")
			if err != nil {
				return err
			}
			if err := writeFile(d, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	if len(r.Devices) > 0 {
		d, err := m.need("devices")
		if err != nil {
			return err
		}
		if err := writeDeviceRules(d, r.Devices); err != nil {
			return err
		}
	}
	return nil
}

// writeDeviceRules writes rules, in order, to devices.allow and
// devices.deny in dir: one write per rule (the kernel takes one rule per
// write), through one descriptor per file (an open and a close per rule
// cost more than the rule).
func writeDeviceRules(dir string, rules []specs.LinuxDeviceCgroup) error {
	fds := map[string]int{}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, dev := range rules {
		file := "devices.deny"
		if dev.Allow {
			file = "devices.allow"
		}
		p := filepath.Join(dir, file)
		fd, ok := fds[file]
		if !ok {
			var err error
			if fd, err = unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
				return fmt.Errorf("cgroups: open %s: %w", p, err)
			}
			fds[file] = fd
		}
		rule := DeviceRule(dev)
		if _, err := unix.Write(fd, []byte(rule)); err != nil {
			return fmt.Errorf("cgroups: write %q to %s: %w", rule, p, err)
		}
	}
	return nil
}

// compactDeviceRules drops from rules, applied in order, those that change
// nothing: an allow rule already given since the last deny, and a deny of
// everything right after another (with nothing allowed in between). Specs
// made by hull repeat the default devices the runtime adds anyway.
func compactDeviceRules(rules []specs.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	var out []specs.LinuxDeviceCgroup
	allowed := map[string]bool{}
	deniedAll := false
	for _, r := range rules {
		rule := DeviceRule(r)
		if r.Allow {
			if allowed[rule] {
				continue
			}
			allowed[rule] = true
			deniedAll = false
		} else {
			all := rule == "a *:* rwm"
			if all && deniedAll {
				continue
			}
			clear(allowed)
			deniedAll = all
		}
		out = append(out, r)
	}
	return out
}

// DeviceRule renders a device cgroup rule the way devices.allow wants it:
// "c 1:3 rwm", with "*" for wildcards and "a" for all types.
func DeviceRule(d specs.LinuxDeviceCgroup) string {
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	major, minor := "*", "*"
	if d.Major != nil && *d.Major >= 0 {
		major = strconv.FormatInt(*d.Major, 10)
	}
	if d.Minor != nil && *d.Minor >= 0 {
		minor = strconv.FormatInt(*d.Minor, 10)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	if typ == "a" && major == "*" && minor == "*" {
		return "a *:* " + access
	}
	return fmt.Sprintf("%s %s:%s %s", typ, major, minor, access)
}

func setMemoryV1(d string, mem *specs.LinuxMemory) error {
	// Limit and memory+swap limit must be written in the order that keeps
	// limit <= memsw at every step.
	setLimit := func() error {
		if mem.Limit == nil || *mem.Limit == 0 {
			return nil
		}
		err := writeFile(d, "memory.limit_in_bytes", strconv.FormatInt(*mem.Limit, 10))
		if errors.Is(err, unix.EBUSY) {
			// The kernel could not reclaim enough to go below the
			// usage (runc's message).
			usage, _ := readUint(d, "memory.usage_in_bytes")
			peak, _ := readUint(d, "memory.max_usage_in_bytes")
			return fmt.Errorf("%w: unable to set memory limit to %d (current usage: %d, peak usage: %d)", ErrBelowUsage, *mem.Limit, usage, peak)
		}
		return err
	}
	setSwap := func() error {
		if mem.Swap == nil || *mem.Swap == 0 {
			return nil
		}
		if _, err := os.Stat(filepath.Join(d, "memory.memsw.limit_in_bytes")); err != nil {
			return errors.New("cgroups: memory.swap is set but this kernel has no swap accounting (memory.memsw.limit_in_bytes)")
		}
		return writeFile(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(*mem.Swap, 10))
	}
	if err := setLimit(); err != nil {
		if err2 := setSwap(); err2 != nil {
			return err
		}
		if err := setLimit(); err != nil {
			return err
		}
	} else if err := setSwap(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(d, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	if mem.Kernel != nil && *mem.Kernel != 0 {
		if _, err := os.Stat(filepath.Join(d, "memory.kmem.limit_in_bytes")); err == nil {
			_ = writeFile(d, "memory.kmem.limit_in_bytes", strconv.FormatInt(*mem.Kernel, 10))
		}
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		if err := writeFile(d, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil && *mem.Swappiness <= 100 {
		if err := writeFile(d, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := writeFile(d, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	return nil
}

func setBlkioV1(d string, b *specs.LinuxBlockIO) error {
	weightFile := "blkio.weight"
	if _, err := os.Stat(filepath.Join(d, weightFile)); err != nil {
		weightFile = "blkio.bfq.weight"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(d, weightFile, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	// leaf weights went with the CFQ scheduler; newer kernels have no file.
	if _, err := os.Stat(filepath.Join(d, "blkio.leaf_weight")); err == nil && b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(d, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, w := range b.WeightDevice {
		if w.Weight != nil {
			if err := writeFile(d, weightFile+"_device", fmt.Sprintf("%d:%d %d", w.Major, w.Minor, *w.Weight)); err != nil && weightFile == "blkio.weight" {
				return err
			}
		}
	}
	throttle := []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttle {
		for _, dev := range t.devs {
			if err := writeFile(d, t.file, fmt.Sprintf("%d:%d %d", dev.Major, dev.Minor, dev.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// readKV reads a "key value" per line file (memory.stat, memory.events).
func readKV(path string) (map[string]uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out, nil
}

// setCpuset writes cpuset.cpus and cpuset.mems (same files on v1 and v2).
func setCpuset(d string, cpu *specs.LinuxCPU) error {
	if cpu.Cpus != "" {
		if err := writeFile(d, "cpuset.cpus", cpu.Cpus); err != nil {
			return err
		}
	}
	if cpu.Mems != "" {
		if err := writeFile(d, "cpuset.mems", cpu.Mems); err != nil {
			return err
		}
	}
	return nil
}
