package main

import (
	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// podStatsRow has podman's `pod stats --format` field names: one row per
// container of a pod.
type podStatsRow struct {
	Pod, CID, Name, CPU, MemUsage, MemUsageBytes, Mem, NetIO, BlockIO, PIDS string
}

// podStatsTable is podman's default pod stats format.
const podStatsTable = "table {{.Pod}}\t{{.CID}}\t{{.Name}}\t{{.CPU}}\t{{.MemUsage}}\t{{.Mem}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDS}}"

var podStatsHeaders = map[string]string{
	"Pod": "POD", "CID": "CID", "Name": "NAME", "CPU": "CPU %", "MemUsage": "MEM USAGE/ LIMIT", "MemUsageBytes": "MEM USAGE/ LIMIT",
	"Mem": "MEM %", "NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDS": "PIDS",
}

// newPodStatsCmd is podman's pod stats: the containers of the named pods
// (all running pods by default, every pod with -a), read twice a second
// apart for CPU %, then every second until interrupted unless --no-stream.
func newPodStatsCmd(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [POD...]",
		Short: "Display a live stream of the resource usage of pods' containers",
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var pods []*engine.Pod
			if len(args) > 0 {
				for _, a := range args {
					p, err := eng.GetPod(cmd.Context(), a)
					if err != nil {
						return err
					}
					pods = append(pods, p)
				}
			} else {
				list, err := eng.ListPods(cmd.Context())
				if err != nil {
					return err
				}
				for _, p := range list {
					if all || p.State == engine.PodRunning {
						pods = append(pods, p)
					}
				}
			}
			var cs []*engine.Container
			var podIDs []string
			for _, p := range pods {
				pcs, err := eng.PodContainers(cmd.Context(), p)
				if err != nil {
					return err
				}
				for _, c := range pcs {
					cs = append(cs, c)
					podIDs = append(podIDs, p.ID)
				}
			}
			if format == "" || format == "table" {
				format = podStatsTable
			}
			out := cmd.OutOrStdout()
			return statsLoop(cmd.Context(), eng, cs, out, noStream, func(prev, cur []*engine.Stats) error {
				rows := make([]podStatsRow, len(cs))
				for i, c := range cs {
					s := statsOf(c, c.ID, prev[i], cur[i], noTrunc)
					pod := podIDs[i]
					if !noTrunc {
						pod = pod[:12]
					}
					bytes := s.MemUsage
					if cur[i] != nil {
						bytes = ui.Size(int64(cur[i].MemoryUsage)) + " / " + ui.Size(int64(cur[i].MemoryLimit))
					}
					rows[i] = podStatsRow{Pod: pod, CID: s.ID, Name: c.Name, CPU: s.CPUPerc, MemUsage: s.MemUsage,
						MemUsageBytes: bytes, Mem: s.MemPerc, NetIO: s.NetIO, BlockIO: s.BlockIO, PIDS: s.PIDs}
				}
				return ui.FormatHeaders(out, format, rows, podStatsHeaders)
			})
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show the containers of all pods (default: running pods)")
	f.BoolVar(&noStream, "no-stream", false, "print one reading and exit")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate IDs")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}
