package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setV2 writes resources into the unified directory, converting the v1
// units of the OCI spec (shares, blkio weight) to their v2 equivalents.
func (m *Manager) setV2(r *specs.LinuxResources) error {
	d := m.dir("")
	if mem := r.Memory; mem != nil {
		if mem.Limit != nil && *mem.Limit != 0 {
			if err := writeFile(d, "memory.max", limitV2(*mem.Limit)); err != nil {
				return err
			}
		}
		if mem.Reservation != nil && *mem.Reservation != 0 {
			if err := writeFile(d, "memory.low", limitV2(*mem.Reservation)); err != nil {
				return err
			}
		}
		if mem.Swap != nil && *mem.Swap != 0 {
			// OCI swap is memory+swap (the v1 meaning); v2 limits
			// swap alone.
			v := "max"
			if *mem.Swap > 0 {
				if mem.Limit == nil || *mem.Limit <= 0 {
					return errors.New("cgroups: memory.swap on cgroup v2 needs memory.limit")
				}
				if *mem.Swap < *mem.Limit {
					return fmt.Errorf("cgroups: memory.swap %d is below memory.limit %d", *mem.Swap, *mem.Limit)
				}
				v = strconv.FormatInt(*mem.Swap-*mem.Limit, 10)
			}
			if err := writeFile(d, "memory.swap.max", v); err != nil {
				return err
			}
		}
		if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
			return errors.New("cgroups: disableOOMKiller is not supported on cgroup v2")
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			if err := writeFile(d, "cpu.weight", strconv.FormatUint(SharesToWeight(*cpu.Shares), 10)); err != nil {
				return err
			}
		}
		if cpu.Idle != nil && *cpu.Idle != 0 {
			if err := writeFile(d, "cpu.idle", strconv.FormatInt(*cpu.Idle, 10)); err != nil {
				return err
			}
		}
		if (cpu.Quota != nil && *cpu.Quota != 0) || (cpu.Period != nil && *cpu.Period != 0) {
			quota := "max"
			if cpu.Quota != nil && *cpu.Quota > 0 {
				quota = strconv.FormatInt(*cpu.Quota, 10)
			}
			period := uint64(100000)
			if cpu.Period != nil && *cpu.Period != 0 {
				period = *cpu.Period
			}
			if err := writeFile(d, "cpu.max", fmt.Sprintf("%s %d", quota, period)); err != nil {
				return err
			}
		}
		if err := setCpuset(d, cpu); err != nil {
			return err
		}
	}
	if p := r.Pids; p != nil {
		v := "max"
		if p.Limit != nil && *p.Limit > 0 {
			v = strconv.FormatInt(*p.Limit, 10)
		}
		if err := writeFile(d, "pids.max", v); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			w := BlkioWeightToIOWeight(uint64(*b.Weight))
			if _, err := os.Stat(filepath.Join(d, "io.bfq.weight")); err == nil {
				_ = writeFile(d, "io.bfq.weight", strconv.FormatUint(uint64(*b.Weight), 10))
			} else if err := writeFile(d, "io.weight", "default "+strconv.FormatUint(w, 10)); err != nil {
				return err
			}
		}
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice}, {"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice}} {
			for _, dev := range t.devs {
				if err := writeFile(d, "io.max", fmt.Sprintf("%d:%d %s=%d", dev.Major, dev.Minor, t.key, dev.Rate)); err != nil {
					return err
				}
			}
		}
	}
	for _, h := range r.HugepageLimits {
		if err := writeFile(d, "hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10)); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		if err := AttachDeviceFilter(d, r.Devices); err != nil {
			return err
		}
	}
	for k, v := range r.Unified {
		if strings.Contains(k, "/") {
			return fmt.Errorf("cgroups: unified key %q must be a file name", k)
		}
		if err := writeFile(d, k, v); err != nil {
			return err
		}
	}
	return nil
}

func limitV2(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// SharesToWeight maps cpu.shares [2, 262144] onto cpu.weight [1, 10000].
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// BlkioWeightToIOWeight maps blkio.weight [10, 1000] onto io.weight [1, 10000].
func BlkioWeightToIOWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	if w < 10 {
		w = 10
	}
	return 1 + (w-10)*9999/990
}
