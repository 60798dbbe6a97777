package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var archive, name string
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] --import FILE | CONTAINER | IMAGE",
		Short: "Restore a container from a checkpoint archive or image",
		Long: `Restore a container from a checkpoint archive (hull container
checkpoint --export), as podman container restore --import: a new
container is created on a fresh root filesystem of the checkpoint's image
(which must be in the image store: pull it first), with the checkpointed
writable layer's changes laid over it, and CRIU restores its processes
into it, which then run on from where they were. The new container keeps
the checkpointed one's name unless --name gives another. Prints the new
container's ID. With a CONTAINER instead, a stopped container is restored
in place from its own checkpoint (hull container checkpoint without
--export), as podman container restore does. With an IMAGE (no container
has that name or ID), the checkpoint image it names (hull container
checkpoint --create-image, or CRI-O's and podman's) is restored as an
archive would be, pulled first when it is not in the image store.

Needs CRIU >= 4.1 ($HULL_CRIU, else criu on PATH; make criu builds one).`,
		Args: cobra.MaximumNArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			var c *engine.Container
			if archive == "" {
				if len(args) != 1 {
					return errors.New("restore takes --import FILE, a checkpoint image, or one container to restore from its own checkpoint")
				}
				var err error
				if _, err = eng.Get(ctx, args[0]); engine.IsNotFound(err) {
					if c, err = restoreImage(ctx, cmd, eng, args[0], name); err != nil {
						return err
					}
				} else if name != "" {
					return errors.New("restore takes --name only with --import FILE or a checkpoint IMAGE")
				} else if c, err = eng.RestoreOwn(ctx, args[0]); err != nil {
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

// restoreImage creates the container restored from the checkpoint image
// ref, pulling the image (with progress) if it is not stored.
func restoreImage(ctx context.Context, cmd *cobra.Command, eng *engine.Engine, ref, name string) (*engine.Container, error) {
	var bars *ui.Progress
	errOut := cmd.ErrOrStderr()
	k, err := eng.OpenCheckpointImage(ctx, ref, engine.CheckpointImageOptions{
		Pull: true,
		OnPull: func(ref string) {
			fmt.Fprintf(errOut, "Unable to find image '%s' locally\n", ref)
			bars = ui.NewProgress(errOut, isTTY(errOut))
		},
		Progress: progressFunc(func() *ui.Progress { return bars }),
	})
	if bars != nil {
		bars.Done()
	}
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return eng.Restore(ctx, k, engine.RestoreOptions{Name: name})
}
