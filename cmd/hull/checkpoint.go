package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

func newCheckpointCmd(g *globals) *cobra.Command {
	var o engine.CheckpointOptions
	cmd := &cobra.Command{
		Use:   "checkpoint [OPTIONS] CONTAINER",
		Short: "Checkpoint a running container with CRIU",
		Long: `Checkpoint a running container, as podman container checkpoint: CRIU
dumps its processes, and the dump, its spec, its record and its writable
layer's changes go into one archive (--export FILE, else the container's
own, for a later restore). Without --leave-running the container stops
with the checkpoint and is shown as exited.

--create-image NAME also stores the archive as a checkpoint image (one
layer holding the archive's members, the container's name in the
annotation io.kubernetes.cri-o.annotations.checkpoint.name, as CRI-O and
podman make them): hull push sends it to a registry, hull container
restore NAME restores from it, and a Pod whose container image it is
restores through the CRI (docs/cri.md, Restores).

Needs CRIU >= 4.1 ($HULL_CRIU, else criu on PATH; make criu builds one).
Containers with a terminal or a shared PID namespace cannot be
checkpointed yet. Prints the container's ID.`,
		Args: exactArgs(1, "a container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			c, err := eng.Get(ctx, args[0])
			if err != nil {
				return err
			}
			if _, err := eng.Checkpoint(ctx, c.ID, o); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&o.LeaveRunning, "leave-running", "R", false, "leave the container running after the checkpoint")
	f.StringVarP(&o.Export, "export", "e", "", "write the checkpoint archive to `FILE` (an uncompressed tar)")
	f.BoolVar(&o.TCPEstablished, "tcp-established", false, "checkpoint established TCP connections")
	f.StringVar(&o.CreateImage, "create-image", "", "also store the checkpoint as the checkpoint image `NAME`")
	return cmd
}

func newImageCheckpointCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint ARCHIVE NAME[:TAG]",
		Short: "Make a checkpoint image from a checkpoint archive",
		Long: `Store the checkpoint archive ARCHIVE as the checkpoint image NAME, as
hull container checkpoint --create-image does from a running container:
one layer holding the archive's members, the checkpointed container's
name (a CRI container's metadata name, the Pod's container name) in the
annotation io.kubernetes.cri-o.annotations.checkpoint.name (and
podman's). ARCHIVE is one of hull's (hull container checkpoint --export,
or the CRI's CheckpointContainer: kubelet's checkpoint API writes them
to /var/lib/kubelet/checkpoints), CRI-O's or podman's; what CRI-O's
users do with buildah. hull push sends the image to a registry; a Pod
whose container image it is restores the container (docs/cri.md,
Restoring a Pod from a checkpoint image), and hull container restore
NAME restores it here.

A file that is not a checkpoint archive (no config.dump, spec.dump or
CRIU images) is refused and nothing is stored. Prints the image ID.`,
		Args: exactArgs(2, "a checkpoint archive and an image name"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			id, err := eng.CreateCheckpointImage(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		}),
	}
}
