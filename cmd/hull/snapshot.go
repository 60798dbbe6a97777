package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/reference"
	"hull/internal/ui"
)

// addSnapshotCommands adds what works on unpacked layers: `import` (also
// `image import`), `image prune`, `system df` and `system prune`.
func addSnapshotCommands(root *cobra.Command, g *globals) {
	root.AddCommand(g.some(named{"import", newImportCmd})...)
	for _, c := range root.Commands() {
		if c.Name() == "image" {
			c.AddCommand(newImportCmd(g), newImagePruneCmd(g))
		}
	}
	if g.want("system") {
		system := findOrAdd(root, &cobra.Command{Use: "system", Short: "Manage hull's storage and state"})
		system.AddCommand(newSystemDfCmd(g), newSystemPruneCmd(g), newSystemCheckCmd(g))
	}
}

// findOrAdd returns root's subcommand named like cmd, adding cmd if there
// is none, so several files can contribute subcommands to one parent.
func findOrAdd(root, cmd *cobra.Command) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == cmd.Name() {
			return c
		}
	}
	root.AddCommand(cmd)
	return cmd
}

func newImportCmd(g *globals) *cobra.Command {
	var o engine.ImportOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] TARBALL|URL|- [REPOSITORY[:TAG]]",
		Short: "Create a one-layer image from a root filesystem tarball",
		Long: `Create a one-layer image from a root filesystem tarball (plain, gzip or
zstd; an http(s) URL is downloaded; "-" reads standard input), like docker import: hull export's output,
for one. The image is unpacked at once, so it can be run or mounted right
away. Without a name the image is untagged; its ID is printed either way.

--change takes Dockerfile instructions for the image's config, as commit's:
CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires 1 or 2 arguments: a tarball (or -) and optionally NAME[:TAG]\nUsage: %s", cmd.CommandPath(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			if len(args) == 2 {
				o.Name = args[1]
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			id, err := eng.Import(ctx, args[0], cmd.InOrStdin(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Message, "message", "m", "", "history comment of the imported layer")
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image's config")
	f.StringVar(&o.Platform, "platform", "", "the platform the image is for, os/arch[/variant] (default: the host's)")
	return cmd
}

func newSystemDfCmd(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show disk usage: images, unpacked layers and container writable layers",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			du, err := eng.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			return printDf(cmd.OutOrStdout(), du, verbose)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show each image, layer and container")
	return cmd
}

func printDf(w io.Writer, du *engine.DiskUsage, verbose bool) error {
	// As docker: images by their layers unpacked, each layer once.
	imgSize, imgReclaim := du.ImagesSize, du.ImagesReclaimable
	imgActive := 0
	for _, r := range du.Images {
		if r.InUse {
			imgActive++
		}
	}
	var layerSize, layerReclaim, ctrSize int64
	layerActive := 0
	for _, l := range du.Layers {
		layerSize += l.Size
		if l.Reclaimable {
			layerReclaim += l.Size
		} else {
			layerActive++
		}
	}
	for _, c := range du.Containers {
		ctrSize += c.Size
	}
	pct := func(part, whole int64) string {
		if whole == 0 {
			return ui.Size(part)
		}
		return fmt.Sprintf("%s (%d%%)", ui.Size(part), part*100/whole)
	}
	t := ui.NewTable(w, "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")
	t.Row("Images", fmt.Sprint(len(du.Images)), fmt.Sprint(imgActive), ui.Size(imgSize), pct(imgReclaim, imgSize))
	t.Row("Layers", fmt.Sprint(len(du.Layers)), fmt.Sprint(layerActive), ui.Size(layerSize), pct(layerReclaim, layerSize))
	t.Row("Containers", fmt.Sprint(len(du.Containers)), fmt.Sprint(len(du.Containers)), ui.Size(ctrSize), ui.Size(0))
	if err := t.Flush(); err != nil || !verbose {
		return err
	}

	fmt.Fprint(w, "\nImages space usage:\n\n")
	t = ui.NewTable(w, "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS")
	for _, r := range du.Images {
		repo, tag := "<none>", "<none>"
		if len(r.Names) > 0 {
			if ref, err := reference.Parse(r.Names[0]); err == nil {
				repo, tag = ref.Familiar(), tagOf(r.Names[0])
				repo = strings.TrimSuffix(repo, ":"+tag)
			}
		}
		t.Row(repo, tag, r.ConfigID.Hex[:12], ui.Ago(r.Created), ui.Size(r.Unpacked), ui.Size(r.SharedSize), ui.Size(r.UniqueSize), fmt.Sprint(r.Containers))
	}
	if err := t.Flush(); err != nil {
		return err
	}

	fmt.Fprint(w, "\nLayers space usage:\n\n")
	t = ui.NewTable(w, "LAYER ID", "DIFF ID", "SIZE", "FILES", "SHARED BY", "RECLAIMABLE")
	for _, l := range du.Layers {
		t.Row(strings.TrimPrefix(l.Name, "sha256:")[:12], strings.TrimPrefix(l.DiffID, "sha256:")[:12],
			ui.Size(l.Size), fmt.Sprint(l.Inodes), fmt.Sprint(l.Owners), fmt.Sprint(l.Reclaimable))
	}
	if err := t.Flush(); err != nil {
		return err
	}

	fmt.Fprint(w, "\nContainers space usage:\n\n")
	t = ui.NewTable(w, "CONTAINER", "IMAGE LAYER", "SIZE", "CREATED")
	for _, c := range du.Containers {
		parent := "<none>"
		if c.Parent != "" {
			parent = strings.TrimPrefix(c.Parent, "sha256:")[:12]
		}
		t.Row(c.Name, parent, ui.Size(c.Size), ui.Ago(c.Created))
	}
	return t.Flush()
}

func tagOf(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return "latest"
}
