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

// statsRow has docker's `stats --format` field names, in the order of
// docker's {{json .}} (its keys sorted). Container is the container as
// the user named it (its full ID when stats lists them all).
type statsRow struct {
	BlockIO, CPUPerc, Container, ID, MemPerc, MemUsage, Name, NetIO, PIDs string
}

// statsTable is docker's default stats format, and statsHeaders its
// column names for the fields.
const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
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
			names := args // as the user named them: {{.Container}}
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
						names = append(names, c.ID)
					}
				}
			}
			if format == "" || format == "table" {
				format = statsTable
			}
			out := cmd.OutOrStdout()
			return statsLoop(cmd.Context(), eng, cs, out, noStream, func(prev, cur []*engine.Stats) error {
				return printStats(out, format, cs, names, prev, cur, noTrunc)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "print one reading and exit")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

// statsLoop reads the containers' stats every second and prints each
// reading with the one before it (CPU % is their difference), clearing a
// terminal first, until ctx ends, or once with noStream.
func statsLoop(ctx context.Context, eng *engine.Engine, cs []*engine.Container, out io.Writer, noStream bool, print func(prev, cur []*engine.Stats) error) error {
	clear := !noStream && isTTY(out)
	prev := sampleAll(ctx, eng, cs)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		cur := sampleAll(ctx, eng, cs)
		if clear {
			fmt.Fprint(out, "\033[2J\033[H")
		}
		if err := print(prev, cur); err != nil {
			return err
		}
		if noStream {
			return nil
		}
		prev = cur
	}
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

func printStats(out io.Writer, format string, cs []*engine.Container, names []string, prev, cur []*engine.Stats, noTrunc bool) error {
	rows := make([]statsRow, len(cs))
	for i, c := range cs {
		rows[i] = statsOf(c, names[i], prev[i], cur[i], noTrunc)
	}
	return ui.FormatHeaders(out, format, rows, statsHeaders)
}

// statsOf is one container's row from two readings a second apart (CPU %
// is the difference); zeros when it is not running (cur nil).
func statsOf(c *engine.Container, name string, p, s *engine.Stats, noTrunc bool) statsRow {
	id := c.ID
	if !noTrunc {
		id = id[:12]
	}
	r := statsRow{Container: name, ID: id, Name: c.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
	if s == nil {
		return r
	}
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
	return r
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
