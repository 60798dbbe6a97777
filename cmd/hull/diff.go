package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

func newDiffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Long: `List what the container changed in its image's filesystem, as docker diff:
A (added), C (changed) or D (deleted), then the path. A directory shows as
changed when something in it was added or deleted.`,
		Args: exactArgs(1, "a container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			changes, err := eng.Diff(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, c := range changes {
				fmt.Fprintf(w, "%s %s\n", c.Kind, c.Path)
			}
			return nil
		}),
	}
}
