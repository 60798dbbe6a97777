package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/cgroups"
	"hull/internal/engine"
	"hull/internal/ui"
)

// statsRow has docker's `stats --format` field names.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

// statsSample is one reading of a container's counters and the host's CPU
// time, which CPU % is the ratio of (docker's formula).
type statsSample struct {
	ok                 bool
	cpuNanos, sysNanos uint64
	memUsage, memLimit uint64
	pids               uint64
	netRx, netTx       uint64
	blkRead, blkWrite  uint64
}

func newStatsCmd(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of containers' resource usage (CPU %, memory, pids)",
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			var cs []*engine.Container
			if len(args) > 0 {
				for _, a := range args {
					c, err := eng.Get(cmd.Context(), a)
					if err != nil {
						return err
					}
					cs = append(cs, c)
				}
			} else {
				list, err := eng.List(cmd.Context())
				if err != nil {
					return err
				}
				for _, c := range list {
					if all || c.IsRunning() {
						cs = append(cs, c)
					}
				}
			}
			out := cmd.OutOrStdout()
			clear := !noStream && isTTY(out)
			prev := sampleAll(eng, cs)
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
				cur := sampleAll(eng, cs)
				if clear {
					fmt.Fprint(out, "\033[2J\033[H")
				}
				if err := printStats(out, format, cs, prev, cur, noTrunc); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				prev = cur
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "print one reading and exit")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func sampleAll(eng *engine.Engine, cs []*engine.Container) []statsSample {
	out := make([]statsSample, len(cs))
	sys := hostCPUNanos()
	for i, c := range cs {
		st, err := eng.Runtime().Stats(c.ID)
		if err != nil {
			continue // not running: zeros, as docker shows
		}
		s := statsSample{ok: true, cpuNanos: st.CPU.UsageNanos, sysNanos: sys, memUsage: st.Memory.Usage, memLimit: st.Memory.Limit, pids: st.Pids.Current,
			blkRead: st.BlockIO.Read, blkWrite: st.BlockIO.Write}
		if cache := inactiveFile(eng, c.ID); cache < s.memUsage {
			s.memUsage -= cache
		}
		if s.memLimit == 0 || s.memLimit > hostMemory() {
			s.memLimit = hostMemory()
		}
		if cur, err := eng.Get(context.Background(), c.ID); err == nil && cur.Pid > 0 && cur.Config.Spec.Network != "host" {
			s.netRx, s.netTx = netIO(cur.Pid)
		}
		out[i] = s
	}
	return out
}

func printStats(out io.Writer, format string, cs []*engine.Container, prev, cur []statsSample, noTrunc bool) error {
	rows := make([]any, len(cs))
	for i, c := range cs {
		id := c.ID
		if !noTrunc {
			id = id[:12]
		}
		r := statsRow{Container: id, ID: id, Name: c.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
		if s, p := cur[i], prev[i]; s.ok {
			if p.ok && s.sysNanos > p.sysNanos && s.cpuNanos >= p.cpuNanos {
				pct := float64(s.cpuNanos-p.cpuNanos) / float64(s.sysNanos-p.sysNanos) * float64(onlineCPUs()) * 100
				r.CPUPerc = fmt.Sprintf("%.2f%%", pct)
			}
			r.MemUsage = binarySize(s.memUsage) + " / " + binarySize(s.memLimit)
			if s.memLimit > 0 {
				r.MemPerc = fmt.Sprintf("%.2f%%", float64(s.memUsage)/float64(s.memLimit)*100)
			}
			r.NetIO = ui.Size(int64(s.netRx)) + " / " + ui.Size(int64(s.netTx))
			r.BlockIO = ui.Size(int64(s.blkRead)) + " / " + ui.Size(int64(s.blkWrite))
			r.PIDs = strconv.FormatUint(s.pids, 10)
		}
		rows[i] = r
	}
	if format != "" {
		return ui.Format(out, format, rows)
	}
	t := ui.NewTable(out, "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")
	for _, it := range rows {
		r := it.(statsRow)
		t.Row(r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs)
	}
	return t.Flush()
}

// binarySize is docker's memory format: 1.5MiB, 3 significant digits.
func binarySize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'g', 4, 64) + units[i]
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
func inactiveFile(eng *engine.Engine, id string) uint64 {
	cg, err := eng.Runtime().Cgroup(id)
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
