package main

import (
	"github.com/spf13/cobra"
)

// addContainerExtras adds `hull volume`, `hull network` and `hull events` (also `hull
// system events`), and makes `rm -v` remove the containers' anonymous
// volumes, at the top level and under `hull container`.
func addContainerExtras(root *cobra.Command, g *globals) {
	root.AddCommand(g.some(named{"volume", newVolumeCmd}, named{"network", newNetworkCmd}, named{"events", newEventsCmd}, named{"pod", newPodCmd})...)
	root.AddCommand(g.some(named{"exec-exited", newExecExitedCmd}, named{"health", newHealthCmd})...)
	for _, c := range root.Commands() {
		if c.Name() == "system" {
			c.AddCommand(newEventsCmd(g))
		}
		if c.Name() == "container" {
			removeVolumesWith(c, g)
		}
	}
	removeVolumesWith(root, g)
}

// removeVolumesWith wraps parent's `rm` so that with -v the anonymous
// volumes of the removed containers go too.
func removeVolumesWith(parent *cobra.Command, g *globals) {
	for _, rm := range parent.Commands() {
		if rm.Name() != "rm" || rm.Flags().Lookup("volumes") == nil {
			continue
		}
		inner := rm.RunE
		rm.RunE = func(cmd *cobra.Command, args []string) error {
			withVolumes, _ := cmd.Flags().GetBool("volumes")
			if !withVolumes {
				return inner(cmd, args)
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			var ids []string
			for _, a := range args {
				if c, err := eng.Get(cmd.Context(), a); err == nil {
					ids = append(ids, c.ID)
				}
			}
			err = inner(cmd, args)
			if _, verr := eng.RemoveAnonymousVolumes(cmd.Context(), ids); err == nil {
				err = verr
			}
			return err
		}
	}
}
