package main

import (
	"github.com/spf13/cobra"
)

// containerCommands are the commands docker has under `docker container`
// (and hull's why). Each is reachable both ways, as in docker: `hull ps`
// and `hull container ps`, `hull exec` and `hull container exec`. This
// list is the one place that says so; a cobra command has one parent, so
// each place gets its own instance from the same constructor.
var containerCommands = []named{
	{"attach", newAttachCmd}, {"commit", newCommitCmd}, {"cp", newCpCmd},
	{"create", newCreateCmd}, {"diff", newDiffCmd}, {"exec", newExecCmd},
	{"export", newExportCmd}, {"inspect", newContainerInspectCmd},
	{"kill", newKillCmd}, {"logs", newLogsCmd},
	{"pause", func(g *globals) *cobra.Command { return newPauseCmd(g, true) }},
	{"port", newPortCmd}, {"ps", newPsCmd}, {"rename", newRenameCmd}, {"restart", newRestartCmd},
	{"rm", newRmCmd}, {"run", newRunCmd}, {"start", newStartCmd},
	{"stats", newStatsCmd}, {"stop", newStopCmd}, {"top", newTopCmd},
	{"unpause", func(g *globals) *cobra.Command { return newPauseCmd(g, false) }},
	{"update", newUpdateCmd},
	{"wait", newWaitCmd}, {"why", newWhyCmd},
}

// addContainerGroup adds containerCommands at the top level and, with
// `ls` (docker's name for ps there) and `prune`, under `hull container`.
// A tree built for one top-level command builds only that one.
func addContainerGroup(root *cobra.Command, g *globals) {
	root.AddCommand(g.some(containerCommands...)...)
	if !g.want("container") {
		return
	}
	group := &cobra.Command{Use: "container", Short: "Manage containers"}
	for _, c := range containerCommands {
		if c.name != "ps" { // ls, below, answers to ps too
			group.AddCommand(c.build(g))
		}
	}
	ls := newPsCmd(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	// checkpoint and restore are podman's, under `container` only.
	group.AddCommand(ls, newContainerPruneCmd(g), newCheckpointCmd(g), newRestoreCmd(g))
	root.AddCommand(group)
}
