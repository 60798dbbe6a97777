package main

import (
	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

func newTopCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container (ps -ef columns, or the host's ps with OPTIONS)",
		Args:  minArgs(1, "a container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			top, err := eng.Top(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			t := ui.NewTable(cmd.OutOrStdout(), top.Titles...)
			for _, p := range top.Processes {
				t.Row(p...)
			}
			return t.Flush()
		}),
	}
	cmd.Flags().SetInterspersed(false) // what follows the container is for ps
	return cmd
}
