package engine

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

// Counters beyond docker's stats that the CRI and kubelet's summary API
// report: the memory break-down of memory.stat, the interfaces of a pod's
// network namespace, and a container's writable layer.

// InterfaceStats are one network interface's counters.
type InterfaceStats struct {
	Name                                       string
	RxBytes, RxErrors, TxBytes, TxErrors       uint64
	RxPackets, RxDropped, TxPackets, TxDropped uint64
}

// PodInterfaces reads the counters of the interfaces in the pod's pinned
// network namespace, loopback excluded, sorted by name. A pod on the
// host's network, or one whose namespace is not pinned (not running),
// has none.
func (e *Engine) PodInterfaces(ctx context.Context, p *Pod) ([]InterfaceStats, error) {
	if p.State != PodRunning || !slices.Contains(p.pinKinds(), "net") {
		return nil, nil
	}
	path := e.podNS(p.ID, "net")
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("pod %s: network namespace: %w", p.Name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("pod %s: netlink in %s: %w", p.Name, path, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("pod %s: list interfaces: %w", p.Name, err)
	}
	var out []InterfaceStats
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Statistics == nil {
			continue
		}
		s := a.Statistics
		out = append(out, InterfaceStats{Name: a.Name, RxBytes: s.RxBytes, RxErrors: s.RxErrors, TxBytes: s.TxBytes, TxErrors: s.TxErrors,
			RxPackets: s.RxPackets, RxDropped: s.RxDropped, TxPackets: s.TxPackets, TxDropped: s.TxDropped})
	}
	slices.SortFunc(out, func(a, b InterfaceStats) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// WritableLayer is the disk a container's writable layer uses (allocated
// blocks and inodes, each inode once), and the directory it is in.
type WritableLayer struct {
	Dir           string
	Bytes, Inodes uint64
}

// WritableLayerUsage measures the writable layer of the container ref
// (a walk of its upper directory: as `docker ps --size`, it costs a
// stat per file the container wrote).
func (e *Engine) WritableLayerUsage(ctx context.Context, ref string) (*WritableLayer, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	u, err := e.snap.Usage(ctx, snapshotKey(c.ID))
	if err != nil {
		return nil, fmt.Errorf("writable layer of %s: %w", c.Name, err)
	}
	return &WritableLayer{Dir: e.cfg.Root, Bytes: uint64(u.Size), Inodes: uint64(u.Inodes)}, nil
}

// memoryDetail fills s's memory break-down from the container's
// memory.stat: resident anonymous memory and page faults (v2: anon,
// pgfault, pgmajfault; v1: the hierarchical total_rss, total_pgfault,
// total_pgmajfault).
func (e *Engine) memoryDetail(id string, s *Stats) {
	cg, err := e.rt.Cgroup(id)
	if err != nil {
		return
	}
	for _, m := range cg.Mounts() {
		switch {
		case slices.Contains(m.Controllers, "memory"):
			st := statKeys(filepath.Join(m.Dir, "memory.stat"))
			s.MemoryRSS, s.PageFaults, s.MajorPageFaults = st["total_rss"], st["total_pgfault"], st["total_pgmajfault"]
			return
		case m.V2 && cg.Mode == cgroups.Unified:
			st := statKeys(filepath.Join(m.Dir, "memory.stat"))
			s.MemoryRSS, s.PageFaults, s.MajorPageFaults = st["anon"], st["pgfault"], st["pgmajfault"]
			return
		}
	}
}

// statKeys reads the "key value" lines of a cgroup stat file.
func statKeys(path string) map[string]uint64 {
	out := map[string]uint64{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			out[k], _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return out
}
