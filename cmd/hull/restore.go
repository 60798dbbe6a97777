package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var archive, name string
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] --import FILE",
		Short: "Restore a container from a checkpoint archive",
		Long: `Restore a container from a checkpoint archive (hull container
checkpoint --export), as podman container restore --import: a new
container is created on a fresh root filesystem of the checkpoint's image
(which must be in the image store: pull it first), with the checkpointed
writable layer's changes laid over it, and CRIU restores its processes
into it, which then run on from where they were. The new container keeps
the checkpointed one's name unless --name gives another. Prints the new
container's ID.

Needs CRIU >= 4.1 ($HULL_CRIU, else criu on PATH; make criu builds one).`,
		Args: cobra.NoArgs,
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			if archive == "" {
				return errors.New("restore needs --import FILE (a checkpoint archive); restoring a container's own checkpoint is not supported yet")
			}
			ctx, cancel := signalContext()
			defer cancel()
			k, err := eng.OpenCheckpoint(archive)
			if err != nil {
				return err
			}
			defer k.Close()
			c, err := eng.Restore(ctx, k, engine.RestoreOptions{Name: name})
			if err != nil {
				return err
			}
			st, err := eng.Start(ctx, c.ID, engine.StartOptions{})
			if err == nil && st != nil {
				err = st.Ready()
			}
			if err != nil {
				return fmt.Errorf("restore %s: %w (see hull why %s)", c.Name, err, c.Name)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&archive, "import", "i", "", "restore from the checkpoint archive `FILE`")
	f.StringVarP(&name, "name", "n", "", "name the restored container")
	return cmd
}
