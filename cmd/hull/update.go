package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// newUpdateCmd is docker's `update`: new limits and restart policy for
// containers, running or not.
func newUpdateCmd(g *globals) *cobra.Command {
	var cpus, cpusetCpus, cpusetMems, memory, memoryReservation, memorySwap, restart string
	var cpuShares, cpuPeriod, cpuQuota, pidsLimit int64
	var blkioWeight uint16
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers (limits, restart policy)",
		Long: `Change the resource limits and restart policy of containers. A running
container gets the new limits at once; every container keeps them for its
next start. The restart policy applies from the container's next exit.`,
		Args: minArgs(1, "at least one container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var o engine.UpdateOptions
			given := 0
			for _, name := range []string{"cpus", "cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems",
				"memory", "memory-reservation", "memory-swap", "pids-limit", "blkio-weight", "restart", "kernel-memory"} {
				if f.Changed(name) {
					given++
				}
			}
			if given == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			// A bad value is a usage error (125), as docker's typed flags.
			size := func(name, s string, parse func(string) (int64, error)) (*int64, error) {
				if !f.Changed(name) {
					return nil, nil
				}
				v, err := parse(s)
				if err != nil {
					return nil, withCode(125, fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", s, name, err))
				}
				return &v, nil
			}
			var err error
			if o.NanoCPUs, err = size("cpus", cpus, engine.ParseCPUs); err != nil {
				return err
			}
			if o.Memory, err = size("memory", memory, engine.ParseMemory); err != nil {
				return err
			}
			if o.MemoryReservation, err = size("memory-reservation", memoryReservation, engine.ParseMemory); err != nil {
				return err
			}
			if o.MemorySwap, err = size("memory-swap", memorySwap, engine.ParseMemorySwap); err != nil {
				return err
			}
			num := func(name string, v *int64) *int64 {
				if f.Changed(name) {
					return v
				}
				return nil
			}
			o.CPUShares, o.CPUPeriod, o.CPUQuota = num("cpu-shares", &cpuShares), num("cpu-period", &cpuPeriod), num("cpu-quota", &cpuQuota)
			o.PidsLimit = num("pids-limit", &pidsLimit)
			if f.Changed("cpuset-cpus") {
				o.CpusetCpus = &cpusetCpus
			}
			if f.Changed("cpuset-mems") {
				o.CpusetMems = &cpusetMems
			}
			if f.Changed("blkio-weight") {
				o.BlkioWeight = &blkioWeight
			}
			if f.Changed("restart") {
				p, err := engine.ParseRestartPolicy(restart)
				if err != nil {
					return withCode(125, err)
				}
				o.Restart = &p
			}
			if f.Changed("kernel-memory") {
				ui.Warn(cmd.ErrOrStderr(), "--kernel-memory is ignored: the kernel no longer supports a kernel memory limit")
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			return forEach(cmd, args, func(ref string) error {
				res, err := eng.Update(cmd.Context(), ref, o)
				if res != nil {
					for _, w := range res.Warnings {
						fmt.Fprintln(cmd.ErrOrStderr(), w)
					}
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cpus, "cpus", "", "number of CPUs (e.g. 1.5)")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuPeriod, "cpu-period", 0, "limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "limit CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.StringVarP(&memory, "memory", "m", "", "memory limit")
	f.StringVar(&memoryReservation, "memory-reservation", "", "memory soft limit")
	f.StringVar(&memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000, or 0 to disable")
	f.StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	f.String("kernel-memory", "", "kernel memory limit (accepted and ignored: the kernel dropped it)")
	return cmd
}
