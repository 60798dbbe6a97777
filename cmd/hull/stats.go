package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// statsRow has docker's `stats --format` field names.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
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
			prev := sampleAll(cmd.Context(), eng, cs)
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
				cur := sampleAll(cmd.Context(), eng, cs)
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

// sampleAll reads each container's stats; nil for one that is not
// running (it shows zeros, as docker's).
func sampleAll(ctx context.Context, eng *engine.Engine, cs []*engine.Container) []*engine.Stats {
	out := make([]*engine.Stats, len(cs))
	for i, c := range cs {
		out[i], _ = eng.Stats(ctx, c.ID)
	}
	return out
}

func printStats(out io.Writer, format string, cs []*engine.Container, prev, cur []*engine.Stats, noTrunc bool) error {
	rows := make([]any, len(cs))
	for i, c := range cs {
		id := c.ID
		if !noTrunc {
			id = id[:12]
		}
		r := statsRow{Container: id, ID: id, Name: c.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
		if s, p := cur[i], prev[i]; s != nil {
			if p != nil && s.SystemCPUNanos > p.SystemCPUNanos && s.CPUNanos >= p.CPUNanos {
				pct := float64(s.CPUNanos-p.CPUNanos) / float64(s.SystemCPUNanos-p.SystemCPUNanos) * float64(s.OnlineCPUs) * 100
				r.CPUPerc = fmt.Sprintf("%.2f%%", pct)
			}
			r.MemUsage = binarySize(s.MemoryUsage) + " / " + binarySize(s.MemoryLimit)
			if s.MemoryLimit > 0 {
				r.MemPerc = fmt.Sprintf("%.2f%%", float64(s.MemoryUsage)/float64(s.MemoryLimit)*100)
			}
			r.NetIO = ui.Size(int64(s.NetRx)) + " / " + ui.Size(int64(s.NetTx))
			r.BlockIO = ui.Size(int64(s.BlockRead)) + " / " + ui.Size(int64(s.BlockWrite))
			r.PIDs = strconv.FormatUint(s.Pids, 10)
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
