package main

import "github.com/spf13/cobra"

// addContainerExtras adds exec, top, stats, attach, cp, events, volume and
// container prune, at the top level and (all but volume and events) under
// `hull container`, next to what addContainerCommands put there.
func addContainerExtras(root *cobra.Command, g *globals) {
	build := func() []*cobra.Command {
		return []*cobra.Command{newExecCmd(g), newCpCmd(g)}
	}
	root.AddCommand(build()...)
	for _, c := range root.Commands() {
		if c.Name() == "container" {
			c.AddCommand(build()...)
		}
	}
}
