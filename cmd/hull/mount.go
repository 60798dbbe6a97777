package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/perm"
	"hull/internal/snapshot"
)

// `hull image mount IMAGE` shows an image's merged root filesystem read-only
// (like podman image mount): a view snapshot of the image's top layer chain
// mounted under <run-root>/mounts/<image id>. `unmount` undoes it.

func mountPoint(g *globals, id string) string {
	return filepath.Join(g.cfg.RunRoot, "mounts", id)
}

func viewKey(id string) string { return engine.ImageMountKey(id) }

func newImageMountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mount IMAGE",
		Short: "Mount an image's root filesystem read-only and print where",
		Args:  exactArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := g.openImages()
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			r, err := svc.Resolve(ctx, args[0])
			if err != nil {
				return err
			}
			cf, err := svc.Config(r)
			if err != nil {
				return err
			}
			var diffIDs []string
			for _, d := range cf.RootFS.DiffIDs {
				diffIDs = append(diffIDs, d.String())
			}
			if len(diffIDs) == 0 {
				return fmt.Errorf("image %s has no layers to mount", args[0])
			}
			chains := snapshot.ChainIDs(diffIDs)
			snap, err := openSnapshotter(g)
			if err != nil {
				return err
			}
			id := r.ConfigID.Hex[:12]
			target := mountPoint(g, id)
			if isMountPoint(target) {
				fmt.Fprintln(cmd.OutOrStdout(), target)
				return nil
			}
			mounts, err := snap.Mounts(ctx, viewKey(id))
			if errors.Is(err, snapshot.ErrNotFound) {
				mounts, err = snap.View(ctx, viewKey(id), chains[len(chains)-1])
			}
			if err != nil {
				return fmt.Errorf("mount image %s: %w", args[0], err)
			}
			// Image content is untrusted: other users must not reach it
			// (a 0700 parent), and its setuid binaries and device nodes
			// must not work even for root (nosuid,nodev).
			if err := perm.PrivateDir(filepath.Dir(target)); err != nil {
				return fmt.Errorf("mount image %s: %w", args[0], err)
			}
			if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
				return fmt.Errorf("mount image %s: %w", args[0], err)
			}
			if err := snapshot.MountAll(snapshot.Inert(mounts), target); err != nil {
				return fmt.Errorf("mount image %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), target)
			return nil
		},
	}
}

func newImageUnmountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unmount IMAGE",
		Aliases: []string{"umount"},
		Short:   "Unmount an image mounted with `hull image mount`",
		Args:    exactArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := g.openImages()
			if err != nil {
				return err
			}
			defer done()
			r, err := svc.Resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			id := r.ConfigID.Hex[:12]
			target := mountPoint(g, id)
			if err := snapshot.Unmount(target); err != nil {
				return err
			}
			os.Remove(target)
			snap, err := openSnapshotter(g)
			if err != nil {
				return err
			}
			if err := snap.Remove(cmd.Context(), viewKey(id)); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), r.ConfigID.String())
			return nil
		},
	}
}

// isMountPoint reports whether dir appears as a mount point in mountinfo.
func isMountPoint(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	return containsField(string(data), dir)
}

func containsField(mountinfo, dir string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
