package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/monitor"
	"hull/internal/spec"
)

// UpdateOptions are docker's `update` flags: each non-nil, non-zero field
// replaces the container's value (nil or zero: unchanged, as docker's).
type UpdateOptions struct {
	NanoCPUs, CPUShares, CPUPeriod, CPUQuota *int64
	CpusetCpus, CpusetMems                   *string
	Memory, MemoryReservation, MemorySwap    *int64
	PidsLimit                                *int64
	BlkioWeight                              *uint16
	Restart                                  *RestartPolicy

	// The CRI's besides docker's: hugepage limits (each replaces its page
	// size's; the host must have the hugetlb controller), cgroup v2 files
	// (each replaces its key's; a v2 host only), and the OOM score of the
	// container's processes (-1000..1000; the running ones get it too).
	HugepageLimits []specs.LinuxHugepageLimit
	Unified        map[string]string
	OomScoreAdj    *int
}

// UpdateResult is what Update did beyond its changes.
type UpdateResult struct {
	// Warnings are docker's: a limit the host cannot enforce, discarded.
	Warnings []string
}

// Update changes a container's limits and restart policy, as docker's
// update does. The new values are recorded in the container's record
// (inspect's HostConfig) and its config.json, so every later start uses
// them; a running or paused container gets them in its cgroups at once;
// its monitor reads the restart policy again at the container's next
// exit (recorder.RestartPolicy). Limits are checked as at create; one the
// kernel refuses (a memory limit below the memory in use) fails the
// update and changes nothing recorded.
func (e *Engine) Update(ctx context.Context, ref string, o UpdateOptions) (*UpdateResult, error) {
	e.AwaitCreation(ref) // a deferred one, by its ID (create_deferred.go)
	// A start under way has no cgroups yet: wait for its process.
	c, err := e.getStarted(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch c.State {
	case StateRemoving, StateDead:
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("cannot update container %s: it is %s", c.Name, c.State))
	}
	res := &UpdateResult{}
	so, err := mergeLimits(c, o, res)
	if err != nil {
		msg := fmt.Sprintf("cannot update container %s: %v", c.Name, err)
		if errdefs.IsFailedPrecondition(err) { // the host's, not the request's
			return nil, errdefs.ErrFailedPrecondition.WithMessage(msg)
		}
		return nil, errdefs.ErrInvalidArgument.WithMessage(msg)
	}
	limits, err := spec.Limits(so)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot update container %s: %v", c.Name, err))
	}
	cfg := c.Config
	cfg.Spec = so
	if o.Restart != nil {
		if cfg.AutoRemove && o.Restart.Name != "" && o.Restart.Name != "no" {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot update container %s: restart policy cannot be updated because AutoRemove is enabled for the container", c.Name))
		}
		cfg.Restart = *o.Restart
	}
	if c.IsRunning() {
		err := e.applyLimits(c, limits)
		if err == nil && o.OomScoreAdj != nil {
			err = e.applyOomScoreAdj(c, *o.OomScoreAdj)
		}
		if err != nil {
			// One that exited meanwhile gets them at its next start.
			if now, gerr := e.Get(ctx, c.ID); gerr != nil || now.IsRunning() {
				return nil, err
			}
		}
	}
	if err := e.patchConfigJSON(c.ID, limits, so.OomScoreAdj); err != nil {
		return nil, fmt.Errorf("cannot update container %s: %w", c.Name, err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := e.update(ctx, c.ID, map[string]any{"config": string(data)}); err != nil {
		return nil, fmt.Errorf("cannot update container %s: %w", c.Name, err)
	}
	e.emit(ctx, c, "update", nil)
	return res, nil
}

// mergeLimits lays o over the container's options as docker's update
// does: a zero (or empty) value changes nothing, except --pids-limit 0,
// which is unlimited like -1; --cpus and --cpu-quota exclude each other.
func mergeLimits(c *Container, o UpdateOptions, res *UpdateResult) (spec.Options, error) {
	so := c.Config.Spec
	set := func(dst *int64, v *int64) {
		if v != nil && *v != 0 {
			*dst = *v
		}
	}
	if o.NanoCPUs != nil && *o.NanoCPUs != 0 && so.CPUQuota > 0 {
		return so, errors.New("conflicting options: --cpus cannot be updated as --cpu-quota has already been set")
	}
	if o.CPUQuota != nil && *o.CPUQuota != 0 && so.NanoCPUs > 0 {
		return so, errors.New("conflicting options: --cpu-quota cannot be updated as --cpus has already been set")
	}
	set(&so.NanoCPUs, o.NanoCPUs)
	set(&so.CPUQuota, o.CPUQuota)
	set(&so.CPUPeriod, o.CPUPeriod)
	set(&so.CPUShares, o.CPUShares)
	if o.CpusetCpus != nil && *o.CpusetCpus != "" {
		so.CpusetCpus = *o.CpusetCpus
	}
	if o.CpusetMems != nil && *o.CpusetMems != "" {
		so.CpusetMems = *o.CpusetMems
	}
	if o.Memory != nil && *o.Memory != 0 {
		// docker: a limit above the memory+swap limit set before needs
		// that limit changed with it.
		if so.MemorySwap > 0 && *o.Memory > so.MemorySwap && (o.MemorySwap == nil || *o.MemorySwap == 0) {
			return so, errors.New("memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		so.Memory = *o.Memory
	}
	set(&so.MemoryReservation, o.MemoryReservation)
	set(&so.MemorySwap, o.MemorySwap)
	if o.PidsLimit != nil {
		so.PidsLimit = *o.PidsLimit
		if so.PidsLimit == 0 {
			so.PidsLimit = -1
		}
	}
	hugepages, err := HostLimits(o.HugepageLimits, o.Unified)
	if err != nil {
		return so, err
	}
	if len(hugepages) > 0 {
		so.HugepageLimits = mergeHugepages(so.HugepageLimits, hugepages)
	}
	if len(o.Unified) > 0 {
		merged := make(map[string]string, len(so.Unified)+len(o.Unified))
		maps.Copy(merged, so.Unified)
		maps.Copy(merged, o.Unified)
		so.Unified = merged
	}
	if o.OomScoreAdj != nil {
		if *o.OomScoreAdj < -1000 || *o.OomScoreAdj > 1000 {
			return so, fmt.Errorf("invalid oom_score_adj %d: the range is -1000 to 1000", *o.OomScoreAdj)
		}
		adj := *o.OomScoreAdj
		so.OomScoreAdj = &adj
	}
	if o.BlkioWeight != nil && *o.BlkioWeight != 0 {
		if *o.BlkioWeight < 10 || *o.BlkioWeight > 1000 {
			return so, fmt.Errorf("invalid --blkio-weight %d: the range is 10 to 1000", *o.BlkioWeight)
		}
		if cgroups.BlkioWeightSupported() {
			so.BlkioWeight = *o.BlkioWeight
		} else {
			res.Warnings = append(res.Warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		}
	}
	return so, nil
}

// HostLimits is what of hugepages and unified (cgroup v2 files) this
// host can enforce, checked for a CRI create (cri.setResources) and for
// every update. kubelet sends a hugepage limit for every page size the
// node has, 0 for those the pod did not ask for: a host without the
// hugetlb controller drops those zeros, as runc's cgroupfs manager skips
// a controller that is not mounted, but refuses a limit above 0, which it
// could not enforce. Unified settings need a cgroup v2 host. Both
// refusals are FailedPrecondition (the host's, not the request's) naming
// the host's cgroup mode.
func HostLimits(hugepages []specs.LinuxHugepageLimit, unified map[string]string) ([]specs.LinuxHugepageLimit, error) {
	var kept []specs.LinuxHugepageLimit
	hugetlb := len(hugepages) > 0 && cgroups.HugetlbSupported()
	for _, h := range hugepages {
		if !hugetlb {
			if h.Limit != 0 {
				return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("hugepage limit %d for page size %s: this host (cgroup %s) has no hugetlb controller to enforce it",
					h.Limit, h.Pagesize, cgroups.DetectMode()))
			}
			continue
		}
		kept = append(kept, h)
	}
	if len(unified) == 0 {
		return kept, nil // every CRI create comes here: no statfs then
	}
	if mode := cgroups.DetectMode(); mode != cgroups.Unified {
		keys := slices.Sorted(maps.Keys(unified))
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("unified cgroup settings (%s) need a cgroup v2 host; this host's cgroups are %s",
			strings.Join(keys, ", "), mode))
	}
	return kept, nil
}

// mergeHugepages is have with each page size's limit in set replacing
// its own.
func mergeHugepages(have, set []specs.LinuxHugepageLimit) []specs.LinuxHugepageLimit {
	out := slices.Clone(have)
	for _, h := range set {
		if i := slices.IndexFunc(out, func(x specs.LinuxHugepageLimit) bool { return x.Pagesize == h.Pagesize }); i >= 0 {
			out[i] = h
		} else {
			out = append(out, h)
		}
	}
	return out
}

// applyOomScoreAdj gives every process of a running container the OOM
// score adjustment, as its config.json gives the processes of its next
// start.
func (e *Engine) applyOomScoreAdj(c *Container, adj int) error {
	cg, err := e.rt.Cgroup(c.ID)
	if err != nil {
		return fmt.Errorf("cannot update container %s: %w", c.Name, err)
	}
	pids, err := cg.Procs()
	if err != nil {
		return fmt.Errorf("cannot update container %s: %w", c.Name, err)
	}
	for _, pid := range pids {
		err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(adj)), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("cannot update container %s: oom_score_adj of process %d: %w", c.Name, pid, err)
		}
	}
	return nil
}

// applyLimits writes limits into a running container's cgroups. The
// kernel refusing a memory limit below what the container uses is a
// failed precondition: free memory in the container, or choose more.
func (e *Engine) applyLimits(c *Container, limits *specs.LinuxResources) error {
	cg, err := e.rt.Cgroup(c.ID)
	if err != nil {
		return fmt.Errorf("cannot update container %s: %w", c.Name, err)
	}
	if err := cg.Set(limits); err != nil {
		if errors.Is(err, cgroups.ErrBelowUsage) {
			return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("cannot update container %s: %v (the container uses more memory than the new limit: choose a larger --memory)", c.Name, err))
		}
		return fmt.Errorf("cannot update container %s: %w", c.Name, err)
	}
	return nil
}

// patchConfigJSON puts the new limits in the container's config.json,
// which the next start (and each restart) creates the container from. A
// missing file is made again from the record (ensureConfig), which has
// them.
func (e *Engine) patchConfigJSON(id string, limits *specs.LinuxResources, oomScoreAdj *int) error {
	path := filepath.Join(e.persistDir(id), "config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("config.json: %w", err)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	r := s.Linux.Resources
	r.Memory, r.CPU, r.Pids = limits.Memory, limits.CPU, limits.Pids
	r.HugepageLimits, r.Unified = limits.HugepageLimits, limits.Unified
	if s.Process != nil && oomScoreAdj != nil {
		s.Process.OOMScoreAdj = oomScoreAdj
	}
	if limits.BlockIO != nil {
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.Weight = limits.BlockIO.Weight
	}
	return e.writeConfig(id, &s)
}

// RestartPolicy is the container's restart policy as recorded now:
// `update --restart` may have changed it since the monitor started.
func (r *recorder) RestartPolicy() (monitor.RestartPolicy, bool) {
	var name string
	var max int
	err := r.e.db.QueryRowContext(bg, `SELECT json_extract(config, '$.RestartPolicy.Name'), json_extract(config, '$.RestartPolicy.MaxRetries')
		FROM containers WHERE id = ?`, r.c.ID).Scan(&name, &max)
	if err != nil {
		return monitor.RestartPolicy{}, false
	}
	return monitor.RestartPolicy{Name: name, MaxRetries: max}, true
}
