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
		Use:   "restore [OPTIONS] --import FILE | CONTAINER",
		Short: "Restore a container from a checkpoint archive",
		Long: `Restore a container from a checkpoint archive (hull container
checkpoint --export), as podman container restore --import: a new
container is created on a fresh root filesystem of the checkpoint's image
(which must be in the image store: pull it first), with the checkpointed
writable layer's changes laid over it, and CRIU restores its processes
into it, which then run on from where they were. The new container keeps
the checkpointed one's name unless --name gives another. Prints the new
container's ID. With a CONTAINER instead, a stopped container is restored
in place from its own checkpoint (hull container checkpoint without
--export), as podman container restore does.

Needs CRIU >= 4.1 ($HULL_CRIU, else criu on PATH; make criu builds one).`,
		Args: cobra.MaximumNArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			var c *engine.Container
			if archive == "" {
				if len(args) != 1 || name != "" {
					return errors.New("restore takes --import FILE, or one container to restore from its own checkpoint (without --name)")
				}
				var err error
				if c, err = eng.RestoreOwn(ctx, args[0]); err != nil {
					return err
				}
			} else {
				if len(args) != 0 {
					return errors.New("restore --import takes no container: the archive makes a new one")
				}
				k, err := eng.OpenCheckpoint(archive)
				if err != nil {
					return err
				}
				defer k.Close()
				if c, err = eng.Restore(ctx, k, engine.RestoreOptions{Name: name}); err != nil {
					return err
				}
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
