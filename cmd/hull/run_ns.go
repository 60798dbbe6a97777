package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"hull/internal/engine"
)

// nsFlags are run/create's namespace, device, resource and security
// flags beyond the basic set (docker's): they map one to one onto the
// engine's container options.
type nsFlags struct {
	pid, ipc, uts, cgroupns, shmSize               string
	sysctls, devices, deviceRules                  []string
	uidmaps, gidmaps                               []string
	userns                                         string
	readBps, writeBps, readIOps, writeIOps         []string
	oomScoreAdj                                    int
	oomKillDisable                                 bool
	cgroupParent, cpusetMems, kernelMemory         string
	cpuPeriod, cpuQuota, cpuRtPeriod, cpuRtRuntime int64
	blkioWeight                                    uint16
	fs                                             *pflag.FlagSet
}

func (f *nsFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.pid, "pid", "", "PID namespace: host or container:NAME")
	fs.StringVar(&f.ipc, "ipc", "", "IPC namespace: private, shareable, none, host or container:NAME")
	fs.StringVar(&f.uts, "uts", "", "UTS namespace: host")
	fs.StringVar(&f.cgroupns, "cgroupns", "", "cgroup namespace: private or host")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm (default 64m)")
	fs.StringArrayVar(&f.uidmaps, "uidmap", nil, "run in a user namespace mapping container uids to host uids: CONTAINER:HOST:SIZE")
	fs.StringArrayVar(&f.gidmaps, "gidmap", nil, "run in a user namespace mapping container gids to host gids: CONTAINER:HOST:SIZE")
	fs.StringVar(&f.userns, "userns", "", "user namespace: private (with --uidmap) or host")
	fs.StringArrayVar(&f.sysctls, "sysctl", nil, "namespaced kernel parameter: KEY=VALUE")
	fs.StringArrayVar(&f.devices, "device", nil, "add a host device: /dev/HOST[:/dev/CONTAINER][:rwm]")
	fs.StringArrayVar(&f.deviceRules, "device-cgroup-rule", nil, "allow devices in the device cgroup: 'c 1:3 mr'")
	fs.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "tune the OOM killer's preference (-1000 to 1000)")
	fs.BoolVar(&f.oomKillDisable, "oom-kill-disable", false, "disable the OOM killer (cgroup v1)")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", "", "parent cgroup of the container's")
	fs.Int64Var(&f.cpuPeriod, "cpu-period", 0, "CFS period in microseconds")
	fs.Int64Var(&f.cpuQuota, "cpu-quota", 0, "CFS quota in microseconds per period")
	fs.Int64Var(&f.cpuRtPeriod, "cpu-rt-period", 0, "real-time period in microseconds")
	fs.Int64Var(&f.cpuRtRuntime, "cpu-rt-runtime", 0, "real-time runtime in microseconds per period")
	fs.StringVar(&f.cpusetMems, "cpuset-mems", "", "memory nodes to allocate from (0-3, 0,1)")
	fs.StringVar(&f.kernelMemory, "kernel-memory", "", "kernel memory limit (deprecated: ignored)")
	fs.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "relative block IO weight (10 to 1000, 0 to disable)")
	fs.StringArrayVar(&f.readBps, "device-read-bps", nil, "limit read rate from a device: /dev/sda:1mb")
	fs.StringArrayVar(&f.writeBps, "device-write-bps", nil, "limit write rate to a device: /dev/sda:1mb")
	fs.StringArrayVar(&f.readIOps, "device-read-iops", nil, "limit read operations per second from a device: /dev/sda:1000")
	fs.StringArrayVar(&f.writeIOps, "device-write-iops", nil, "limit write operations per second to a device: /dev/sda:1000")
}

// apply sets c's options from the flags; errors name the flag.
func (f *nsFlags) apply(c *engine.Config) error {
	o := &c.Spec
	o.PidMode, o.IpcMode, o.UTSMode, o.CgroupnsMode = f.pid, f.ipc, f.uts, f.cgroupns
	var err error
	if o.ShmSize, err = parseSize("--shm-size", f.shmSize); err != nil {
		return err
	}
	for _, s := range f.sysctls {
		k, v, err := engine.ParseSysctl(s)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--sysctl\" flag: %w", s, err)
		}
		if o.Sysctls == nil {
			o.Sysctls = map[string]string{}
		}
		o.Sysctls[k] = v
	}
	if err := engine.CheckNamespaceModes(*o); err != nil {
		return err
	}
	if o.UIDMap, o.GIDMap, err = engine.ParseIDMaps(f.uidmaps, f.gidmaps); err != nil {
		return err
	}
	if err := engine.CheckUsernsMode(f.userns, len(o.UIDMap) > 0); err != nil {
		return err
	}
	for _, s := range f.devices {
		d, err := engine.ParseDevice(s)
		if err != nil {
			return err
		}
		o.Devices = append(o.Devices, d)
	}
	for _, r := range f.deviceRules {
		if err := engine.CheckDeviceCgroupRule(r); err != nil {
			return err
		}
	}
	o.DeviceCgroupRules = f.deviceRules
	if f.fs.Changed("oom-score-adj") {
		if f.oomScoreAdj < -1000 || f.oomScoreAdj > 1000 {
			return fmt.Errorf("invalid --oom-score-adj %d: the range is -1000 to 1000", f.oomScoreAdj)
		}
		v := f.oomScoreAdj
		o.OomScoreAdj = &v
	}
	o.OomKillDisable = f.oomKillDisable
	if f.cgroupParent != "" {
		if err := engine.CheckCgroupParent(f.cgroupParent); err != nil {
			return err
		}
		o.CgroupParent = f.cgroupParent
	}
	o.CPUPeriod, o.CPUQuota = f.cpuPeriod, f.cpuQuota
	o.CPURealtimePeriod, o.CPURealtimeRuntime = f.cpuRtPeriod, f.cpuRtRuntime
	o.CpusetMems, o.BlkioWeight = f.cpusetMems, f.blkioWeight
	if o.KernelMemory, err = parseSize("--kernel-memory", f.kernelMemory); err != nil {
		return err
	}
	for _, t := range []struct {
		flag string
		in   []string
		out  *[]engine.ThrottleDevice
		iops bool
	}{
		{"--device-read-bps", f.readBps, &o.BlkioDeviceReadBps, false},
		{"--device-write-bps", f.writeBps, &o.BlkioDeviceWriteBps, false},
		{"--device-read-iops", f.readIOps, &o.BlkioDeviceReadIOps, true},
		{"--device-write-iops", f.writeIOps, &o.BlkioDeviceWriteIOps, true},
	} {
		for _, s := range t.in {
			d, err := engine.ParseThrottleDevice(s, t.iops)
			if err != nil {
				return fmt.Errorf("invalid argument %q for %q flag: %w", s, t.flag, err)
			}
			*t.out = append(*t.out, d)
		}
	}
	return nil
}
