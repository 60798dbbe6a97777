package main

import (
	"io"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

func newExportCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Long: `Write the container's root filesystem (its image's layers with its
changes, merged) as a tar archive to stdout or -o FILE, as docker export.
Volumes and bind mounts are not part of it. hull import makes an image of
the archive again.`,
		Args: exactArgs(1, "a container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return writeArchive(cmd, output, func(w io.Writer) error { return eng.Export(ctx, args[0], w) })
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file instead of stdout")
	return cmd
}
