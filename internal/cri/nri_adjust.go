package cri

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/engine"
	"hull/internal/spec"
)

// Plugins' container adjustments and resource updates, mapped onto
// hull's create options (spec.Options) and engine.UpdateOptions. What
// these cannot express is refused with an error naming it: a plugin that
// asks for something must not see the container made without it.

// unsupported is the error for an adjustment hull cannot honour.
func unsupported(what string) error {
	return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s: hull cannot honour this adjustment (supported: annotations, env, mounts, args, devices, rlimits, sysctls, OOM score, CPU, memory and pids resources)", what))
}

// applyAdjustment applies a plugin's merged adjustment to o. Keys marked
// for removal ("-KEY") delete what the container had.
func applyAdjustment(adj *nri.ContainerAdjustment, o *engine.CreateOptions) error {
	if adj == nil {
		return nil
	}
	cfg := &o.Config
	so := &cfg.Spec
	cfg.Annotations = adjustMap(cfg.Annotations, adj.GetAnnotations())
	for _, m := range adj.GetMounts() {
		if err := adjustMount(so, m); err != nil {
			return err
		}
	}
	for _, kv := range adj.GetEnv() {
		name, del := kv.IsMarkedForRemoval()
		so.Env = slices.DeleteFunc(so.Env, func(e string) bool { k, _, _ := strings.Cut(e, "="); return k == name })
		if !del {
			so.Env = append(so.Env, kv.GetKey()+"="+kv.GetValue())
		}
	}
	if h := adj.GetHooks(); h != nil && len(h.GetPrestart())+len(h.GetCreateRuntime())+len(h.GetCreateContainer())+len(h.GetStartContainer())+len(h.GetPoststart())+len(h.GetPoststop()) > 0 {
		return unsupported("OCI hooks")
	}
	if len(adj.GetCDIDevices()) > 0 {
		return unsupported("CDI devices")
	}
	if args := adj.GetArgs(); len(args) > 0 {
		so.Entrypoint, so.EntrypointSet, so.Cmd = args, true, nil
	}
	for _, r := range adj.GetRlimits() {
		name := strings.ToLower(strings.TrimPrefix(r.GetType(), "RLIMIT_"))
		so.Ulimits = slices.DeleteFunc(so.Ulimits, func(u spec.Ulimit) bool { return strings.EqualFold(u.Name, name) })
		so.Ulimits = append(so.Ulimits, spec.Ulimit{Name: name, Soft: int64(r.GetSoft()), Hard: int64(r.GetHard())})
	}
	l := adj.GetLinux()
	if l == nil {
		return nil
	}
	for _, d := range l.GetDevices() {
		p, del := d.IsMarkedForRemoval()
		so.Devices = slices.DeleteFunc(so.Devices, func(x spec.Device) bool { return x.PathInContainer == p })
		if !del {
			// hull's devices are host paths, bound where the container
			// sees them: the node's device at the same path.
			so.Devices = append(so.Devices, spec.Device{PathOnHost: d.GetPath(), PathInContainer: d.GetPath(), CgroupPermissions: "rwm"})
		}
	}
	if err := setCreateResources(so, l.GetResources()); err != nil {
		return err
	}
	if p := l.GetCgroupsPath(); p != "" {
		so.CgroupsPath = p
	}
	if v := l.GetOomScoreAdj(); v != nil {
		adjv := int(v.GetValue())
		so.OomScoreAdj = &adjv
	}
	so.Sysctls = adjustMap(so.Sysctls, l.GetSysctl())
	switch {
	case l.GetIoPriority() != nil:
		return unsupported("I/O priority")
	case l.GetSeccompPolicy() != nil:
		return unsupported("a seccomp policy")
	case len(l.GetNamespaces()) > 0:
		return unsupported("namespaces")
	case len(l.GetNetDevices()) > 0:
		return unsupported("network devices")
	case l.GetScheduler() != nil:
		return unsupported("a scheduling policy")
	case l.GetRdt() != nil:
		return unsupported("RDT")
	case l.GetMemoryPolicy() != nil:
		return unsupported("a memory policy")
	}
	return nil
}

// adjustMap is m (a copy, when changed) with adj's keys set, and those
// adj marks for removal ("-KEY") deleted.
func adjustMap(m, adj map[string]string) map[string]string {
	if len(adj) == 0 {
		return m
	}
	m = maps.Clone(m)
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range adj {
		if name, del := api.IsMarkedForRemoval(k); del {
			delete(m, name)
		} else {
			m[k] = v
		}
	}
	return m
}

// adjustMount adds (or, marked for removal, removes) a mount: binds and
// tmpfs as hull's own, any other type as an OCI mount.
func adjustMount(so *spec.Options, m *nri.Mount) error {
	dst, del := m.IsMarkedForRemoval()
	so.Mounts = slices.DeleteFunc(so.Mounts, func(x spec.Mount) bool { return x.Destination == dst })
	delete(so.Tmpfs, dst)
	so.ExtraMounts = slices.DeleteFunc(so.ExtraMounts, func(x specs.Mount) bool { return x.Destination == dst })
	if del {
		return nil
	}
	if !strings.HasPrefix(m.GetDestination(), "/") {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount at %q: the destination must be an absolute path", m.GetDestination()))
	}
	switch m.GetType() {
	case "bind", "rbind", "":
		sm := spec.Mount{Type: "bind", Source: m.GetSource(), Destination: m.GetDestination()}
		for _, opt := range m.GetOptions() {
			switch opt {
			case "ro":
				sm.ReadOnly = true
			case "rw", "bind", "rbind":
			default:
				sm.Options = append(sm.Options, opt)
			}
		}
		so.Mounts = append(so.Mounts, sm)
	case "tmpfs":
		if so.Tmpfs == nil {
			so.Tmpfs = map[string]string{}
		} else {
			so.Tmpfs = maps.Clone(so.Tmpfs)
		}
		so.Tmpfs[m.GetDestination()] = strings.Join(m.GetOptions(), ",")
	default:
		so.ExtraMounts = append(so.ExtraMounts, specs.Mount{Destination: m.GetDestination(), Type: m.GetType(), Source: m.GetSource(), Options: m.GetOptions()})
	}
	return nil
}

// setCreateResources sets a plugin's resources on the create options.
func setCreateResources(so *spec.Options, r *nri.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := checkResources(r); err != nil {
		return err
	}
	if mem := r.GetMemory(); mem != nil {
		setI64(&so.Memory, mem.GetLimit())
		setI64(&so.MemoryReservation, mem.GetReservation())
		setI64(&so.MemorySwap, mem.GetSwap())
		if v := mem.GetSwappiness(); v != nil {
			sw := int64(v.GetValue())
			so.MemorySwappiness = &sw
		}
		if v := mem.GetDisableOomKiller(); v != nil {
			so.OomKillDisable = v.GetValue()
		}
	}
	if cpu := r.GetCpu(); cpu != nil {
		if v := cpu.GetShares(); v != nil {
			so.CPUShares = int64(v.GetValue())
		}
		setI64(&so.CPUQuota, cpu.GetQuota())
		if v := cpu.GetPeriod(); v != nil {
			so.CPUPeriod = int64(v.GetValue())
		}
		setI64(&so.CPURealtimeRuntime, cpu.GetRealtimeRuntime())
		if v := cpu.GetRealtimePeriod(); v != nil {
			so.CPURealtimePeriod = int64(v.GetValue())
		}
		if cpu.GetCpus() != "" {
			so.CpusetCpus = cpu.GetCpus()
		}
		if cpu.GetMems() != "" {
			so.CpusetMems = cpu.GetMems()
		}
	}
	if p := r.GetPids(); p != nil {
		so.PidsLimit = p.GetLimit()
	}
	return nil
}

// checkResources refuses the resources hull has no setting for.
func checkResources(r *nri.LinuxResources) error {
	switch {
	case len(r.GetHugepageLimits()) > 0:
		return unsupported("hugepage limits")
	case r.GetBlockioClass() != nil:
		return unsupported("a block I/O class")
	case r.GetRdtClass() != nil:
		return unsupported("an RDT class")
	case len(r.GetUnified()) > 0:
		return unsupported("unified cgroup v2 settings")
	case len(r.GetDevices()) > 0:
		return unsupported("device cgroup rules")
	case r.GetMemory().GetKernel() != nil || r.GetMemory().GetKernelTcp() != nil:
		return unsupported("kernel memory limits")
	}
	return nil
}

func setI64(dst *int64, v *api.OptionalInt64) {
	if v != nil {
		*dst = v.GetValue()
	}
}

// specResources are a container's resources as NRI's.
func specResources(so *spec.Options) *nri.LinuxResources {
	r := &nri.LinuxResources{Memory: &nri.LinuxMemory{}, Cpu: &nri.LinuxCPU{Cpus: so.CpusetCpus, Mems: so.CpusetMems}}
	if so.Memory != 0 {
		r.Memory.Limit = nri.Int64(so.Memory)
	}
	if so.MemoryReservation != 0 {
		r.Memory.Reservation = nri.Int64(so.MemoryReservation)
	}
	if so.MemorySwap != 0 {
		r.Memory.Swap = nri.Int64(so.MemorySwap)
	}
	if so.CPUShares != 0 {
		r.Cpu.Shares = nri.UInt64(uint64(so.CPUShares))
	}
	if so.CPUQuota != 0 {
		r.Cpu.Quota = nri.Int64(so.CPUQuota)
	}
	if so.CPUPeriod != 0 {
		r.Cpu.Period = nri.UInt64(uint64(so.CPUPeriod))
	}
	if so.PidsLimit != 0 {
		r.Pids = &api.LinuxPids{Limit: so.PidsLimit}
	}
	return r
}

// updateResources are the resources an UpdateContainerResources asks for,
// as NRI's.
func updateResources(u *engine.UpdateOptions) *nri.LinuxResources {
	r := &nri.LinuxResources{Memory: &nri.LinuxMemory{}, Cpu: &nri.LinuxCPU{}}
	if u.Memory != nil {
		r.Memory.Limit = nri.Int64(*u.Memory)
	}
	if u.MemoryReservation != nil {
		r.Memory.Reservation = nri.Int64(*u.MemoryReservation)
	}
	if u.MemorySwap != nil {
		r.Memory.Swap = nri.Int64(*u.MemorySwap)
	}
	if u.CPUShares != nil {
		r.Cpu.Shares = nri.UInt64(uint64(*u.CPUShares))
	}
	if u.CPUQuota != nil {
		r.Cpu.Quota = nri.Int64(*u.CPUQuota)
	}
	if u.CPUPeriod != nil {
		r.Cpu.Period = nri.UInt64(uint64(*u.CPUPeriod))
	}
	if u.CpusetCpus != nil {
		r.Cpu.Cpus = *u.CpusetCpus
	}
	if u.CpusetMems != nil {
		r.Cpu.Mems = *u.CpusetMems
	}
	if u.PidsLimit != nil {
		r.Pids = &api.LinuxPids{Limit: *u.PidsLimit}
	}
	return r
}

// setUpdate sets resources a plugin asks for on an engine update.
func setUpdate(u *engine.UpdateOptions, r *nri.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := checkResources(r); err != nil {
		return err
	}
	i64 := func(dst **int64, v *api.OptionalInt64) {
		if v != nil {
			x := v.GetValue()
			*dst = &x
		}
	}
	u64 := func(dst **int64, v *api.OptionalUInt64) {
		if v != nil {
			x := int64(v.GetValue())
			*dst = &x
		}
	}
	str := func(dst **string, v string) {
		if v != "" {
			*dst = &v
		}
	}
	if mem := r.GetMemory(); mem != nil {
		if mem.GetSwappiness() != nil || mem.GetDisableOomKiller() != nil {
			return unsupported("changing swappiness or the OOM killer of a made container")
		}
		i64(&u.Memory, mem.GetLimit())
		i64(&u.MemoryReservation, mem.GetReservation())
		i64(&u.MemorySwap, mem.GetSwap())
	}
	if cpu := r.GetCpu(); cpu != nil {
		if cpu.GetRealtimeRuntime() != nil || cpu.GetRealtimePeriod() != nil {
			return unsupported("changing the realtime CPU budget of a made container")
		}
		u64(&u.CPUShares, cpu.GetShares())
		i64(&u.CPUQuota, cpu.GetQuota())
		u64(&u.CPUPeriod, cpu.GetPeriod())
		str(&u.CpusetCpus, cpu.GetCpus())
		str(&u.CpusetMems, cpu.GetMems())
	}
	if p := r.GetPids(); p != nil {
		x := p.GetLimit()
		u.PidsLimit = &x
	}
	return nil
}
