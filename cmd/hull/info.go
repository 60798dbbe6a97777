package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/cgroups"
)

func newInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show storage paths, counts, cgroup mode and kernel features",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Version:        %s\n", version)
			fmt.Fprintf(w, "Root:           %s\n", g.cfg.Root)
			fmt.Fprintf(w, "Run root:       %s\n", g.cfg.RunRoot)
			fmt.Fprintf(w, "Cgroup mode:    %s\n", cgroups.DetectMode())
			return nil
		},
	}
}
