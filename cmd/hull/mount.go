package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

// `hull image mount IMAGE` shows an image's merged root filesystem
// read-only (like podman image mount); `unmount` undoes it. See
// engine.MountImage.

func newImageMountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mount IMAGE",
		Short: "Mount an image's root filesystem read-only and print where",
		Args:  exactArgs(1, "an image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			target, err := eng.MountImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), target)
			return nil
		}),
	}
}

func newImageUnmountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unmount IMAGE",
		Aliases: []string{"umount"},
		Short:   "Unmount an image mounted with `hull image mount`",
		Args:    exactArgs(1, "an image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			id, err := eng.UnmountImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		}),
	}
}
