package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"hull/internal/image"
	"hull/internal/reference"
	"hull/internal/snapshot"
	"hull/internal/ui"
)

// addSnapshotCommands adds what works on unpacked layers: `import` (also
// `image import`), `system df` and `system prune`.
func addSnapshotCommands(root *cobra.Command, g *globals) {
	root.AddCommand(g.some(named{"import", newImportCmd})...)
	for _, c := range root.Commands() {
		if c.Name() == "image" {
			c.AddCommand(newImportCmd(g))
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
	var message string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] TARBALL|- [NAME[:TAG]]",
		Short: "Create a one-layer image from a root filesystem tarball",
		Long: `Create a one-layer image from a root filesystem tarball (plain, gzip or
zstd; "-" reads standard input), like docker import. The image is unpacked
at once, so it can be run or mounted right away. Without NAME the image is
untagged; its ID is printed either way.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires 1 or 2 arguments: a tarball (or -) and optionally NAME[:TAG]\nUsage: %s", cmd.CommandPath(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			nameArg := ""
			if len(args) == 2 {
				nameArg = args[1]
			}
			id, err := importTarball(ctx, g, args[0], nameArg, message, cmd.InOrStdin())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "history comment of the imported layer")
	return cmd
}

// importTarball builds the image as a docker archive in a temp file and
// loads it: loading verifies, stores, unpacks and names it in one path.
func importTarball(ctx context.Context, g *globals, src, nameArg, message string, stdin io.Reader) (string, error) {
	var ref *reference.Reference
	if nameArg != "" {
		r, err := reference.Parse(nameArg)
		if err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
		if r.Digest != "" {
			return "", fmt.Errorf("import: name %q has a digest; give NAME[:TAG]", nameArg)
		}
		ref = &r
	}
	if err := os.MkdirAll(g.cfg.Root, 0o711); err != nil {
		return "", err
	}
	path := src
	if src == "-" {
		f, err := os.CreateTemp(g.cfg.Root, ".import-stdin-*")
		if err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
		defer os.Remove(f.Name())
		_, err = io.Copy(f, stdin)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("import: read standard input: %w", err)
		}
		path = f.Name()
	}
	if err := checkTarball(path); err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	layer, err := tarball.LayerFromFile(path)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	now := time.Now().UTC()
	if message == "" {
		message = "Imported from " + src
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH, OS: "linux", Created: v1.Time{Time: now},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return "", err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: now}, CreatedBy: "hull import", Comment: message,
	}})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	var tag name.Reference
	if ref != nil {
		tag, err = name.NewTag(ref.String())
	} else {
		var d v1.Hash
		if d, err = img.Digest(); err == nil {
			tag, err = name.NewDigest("hull-import@" + d.String())
		}
	}
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	archive, err := os.CreateTemp(g.cfg.Root, ".import-*.tar")
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	defer os.Remove(archive.Name())
	err = tarball.Write(tag, img, archive)
	if cerr := archive.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}

	svc, done, err := g.openImages()
	if err != nil {
		return "", err
	}
	defer done()
	if _, err := svc.Load(ctx, archive.Name()); err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return cfgName.String(), nil
}

// checkTarball fails early, and clearly, on input that is not a tar
// archive (plain or gzip; zstd is left to the unpacker).
func checkTarball(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("not a gzip-compressed tar archive: %w", err)
		}
		r = zr
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		return nil
	}
	if _, err := tar.NewReader(r).Next(); err != nil {
		return fmt.Errorf("not a tar archive (%v)", err)
	}
	return nil
}

// diskState is what `system df` and `system prune` look at: images, with
// the layer chain each uses, and snapshots.
type diskState struct {
	svc       *image.Service
	snap      *snapshot.Snapshotter
	images    []*image.Record
	topChain  map[*image.Record]string
	snaps     []snapshot.Info
	unused    map[string]bool // chain IDs Prune would remove
	inUseTops map[string]bool // chain IDs containers (active snapshots) build on
}

// openDiskState opens the image service and the snapshotter and reads the
// state; call done when finished with it.
func openDiskState(ctx context.Context, g *globals) (st *diskState, done func(), err error) {
	svc, done, err := g.openImages()
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	snap, err := openSnapshotter(g)
	if err != nil {
		return nil, nil, err
	}
	st, err = loadDiskState(ctx, svc, snap)
	return st, done, err
}

func loadDiskState(ctx context.Context, svc *image.Service, snap *snapshot.Snapshotter) (*diskState, error) {
	st := &diskState{svc: svc, snap: snap, topChain: map[*image.Record]string{}, unused: map[string]bool{}, inUseTops: map[string]bool{}}
	var err error
	if st.images, err = svc.List(ctx); err != nil {
		return nil, err
	}
	for _, r := range st.images {
		cf, err := svc.Config(r)
		if err != nil {
			return nil, err
		}
		var diffIDs []string
		for _, d := range cf.RootFS.DiffIDs {
			diffIDs = append(diffIDs, d.String())
		}
		if chains := snapshot.ChainIDs(diffIDs); len(chains) > 0 {
			st.topChain[r] = chains[len(chains)-1]
		}
	}
	if st.snaps, err = snap.List(ctx); err != nil {
		return nil, err
	}
	for _, s := range st.snaps {
		if s.Kind == snapshot.KindActive && s.Parent != "" {
			st.inUseTops[s.Parent] = true
		}
	}
	unused, err := snap.Unused(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range unused {
		st.unused[u.Name] = true
	}
	return st, nil
}

func newSystemDfCmd(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show disk usage: images, unpacked layers and container writable layers",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, done, err := openDiskState(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			return printDf(ctx, cmd.OutOrStdout(), st, verbose)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show each image, layer and container")
	return cmd
}

func printDf(ctx context.Context, w io.Writer, st *diskState, verbose bool) error {
	var imgSize, imgReclaim int64
	imgActive := 0
	for _, r := range st.images {
		imgSize += r.Size
		if st.inUseTops[st.topChain[r]] {
			imgActive++
		} else {
			imgReclaim += r.Size
		}
	}
	var layers, ctrs []snapshot.Info
	var layerSize, layerReclaim, ctrSize int64
	layerActive := 0
	ctrUsage := map[string]snapshot.Usage{}
	for _, s := range st.snaps {
		switch s.Kind {
		case snapshot.KindCommitted:
			layers = append(layers, s)
			layerSize += s.Size
			if st.unused[s.Name] {
				layerReclaim += s.Size
			} else {
				layerActive++
			}
		case snapshot.KindActive:
			u, err := st.snap.Usage(ctx, s.Name)
			if err != nil {
				return err
			}
			ctrUsage[s.Name] = u
			ctrs = append(ctrs, s)
			ctrSize += u.Size
		}
	}
	pct := func(part, whole int64) string {
		if whole == 0 {
			return ui.Size(part)
		}
		return fmt.Sprintf("%s (%d%%)", ui.Size(part), part*100/whole)
	}
	t := ui.NewTable(w, "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")
	t.Row("Images", fmt.Sprint(len(st.images)), fmt.Sprint(imgActive), ui.Size(imgSize), pct(imgReclaim, imgSize))
	t.Row("Layers", fmt.Sprint(len(layers)), fmt.Sprint(layerActive), ui.Size(layerSize), pct(layerReclaim, layerSize))
	t.Row("Containers", fmt.Sprint(len(ctrs)), fmt.Sprint(len(ctrs)), ui.Size(ctrSize), ui.Size(0))
	if err := t.Flush(); err != nil || !verbose {
		return err
	}

	fmt.Fprint(w, "\nImages space usage:\n\n")
	t = ui.NewTable(w, "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "CONTAINERS")
	for _, r := range st.images {
		repo, tag := "<none>", "<none>"
		if len(r.Names) > 0 {
			if ref, err := reference.Parse(r.Names[0]); err == nil {
				repo, tag = ref.Familiar(), tagOf(r.Names[0])
				repo = strings.TrimSuffix(repo, ":"+tag)
			}
		}
		n := 0
		for _, c := range ctrs {
			if c.Parent == st.topChain[r] {
				n++
			}
		}
		t.Row(repo, tag, r.ConfigID.Hex[:12], ui.Ago(r.Created), ui.Size(r.Size), fmt.Sprint(n))
	}
	if err := t.Flush(); err != nil {
		return err
	}

	fmt.Fprint(w, "\nLayers space usage:\n\n")
	t = ui.NewTable(w, "LAYER ID", "DIFF ID", "SIZE", "FILES", "SHARED BY", "RECLAIMABLE")
	for _, l := range layers {
		t.Row(strings.TrimPrefix(l.Name, "sha256:")[:12], strings.TrimPrefix(l.DiffID, "sha256:")[:12],
			ui.Size(l.Size), fmt.Sprint(l.Inodes), fmt.Sprint(l.Owners), fmt.Sprint(st.unused[l.Name]))
	}
	if err := t.Flush(); err != nil {
		return err
	}

	fmt.Fprint(w, "\nContainers space usage:\n\n")
	t = ui.NewTable(w, "CONTAINER", "IMAGE LAYER", "SIZE", "CREATED")
	for _, c := range ctrs {
		parent := "<none>"
		if c.Parent != "" {
			parent = strings.TrimPrefix(c.Parent, "sha256:")[:12]
		}
		t.Row(c.Name, parent, ui.Size(ctrUsage[c.Name].Size), ui.Ago(c.Created))
	}
	return t.Flush()
}

func tagOf(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return "latest"
}

func newSystemPruneCmd(g *globals) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data: stopped containers, untagged images, unreferenced layers and blobs",
		Long: `Remove stopped containers (as docker system prune does), then untagged
images (with -a, every image no container uses), then every unpacked layer
no image or container needs, then every blob no image references. Nothing in
use is removed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if !force {
				what := "all untagged images"
				if all {
					what = "all images without at least one container associated to them"
				}
				fmt.Fprintf(out, "WARNING! This will remove:\n  - all stopped containers\n  - %s\n  - all unpacked layers no image or container uses\n  - all unreferenced blobs\nAre you sure you want to continue? [y/N] ", what)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			ctx := cmd.Context()
			eng, edone, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			removed, reclaimed, err := eng.PruneContainers(ctx, nil)
			edone()
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Fprintln(out, "Deleted Containers:")
				for _, id := range removed {
					fmt.Fprintln(out, id)
				}
				fmt.Fprintln(out)
			}
			st, done, err := openDiskState(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			var deletedImages []string
			for _, r := range st.images {
				if st.inUseTops[st.topChain[r]] || (!all && len(r.Names) > 0) {
					continue
				}
				res, err := st.svc.Remove(ctx, r.Digest.String(), true)
				if err != nil {
					return fmt.Errorf("prune image %s: %w", r.ConfigID.Hex[:12], err)
				}
				deletedImages = append(deletedImages, res.Untagged...)
				deletedImages = append(deletedImages, "deleted: "+r.ConfigID.String())
				reclaimed += r.Size
			}
			pr, err := st.snap.Prune(ctx)
			if err != nil {
				return err
			}
			reclaimed += pr.Bytes
			blobs, err := st.svc.Collect(ctx)
			if err != nil {
				return err
			}
			if len(deletedImages) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				for _, d := range deletedImages {
					if !strings.HasPrefix(d, "deleted: ") {
						d = "untagged: " + d
					}
					fmt.Fprintln(out, d)
				}
				fmt.Fprintln(out)
			}
			if len(pr.Removed) > 0 {
				fmt.Fprintln(out, "Deleted Layers:")
				for _, c := range pr.Removed {
					fmt.Fprintln(out, c)
				}
				fmt.Fprintln(out)
			}
			if len(blobs) > 0 {
				fmt.Fprintf(out, "Deleted %d blobs\n\n", len(blobs))
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", ui.Size(reclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only untagged ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}
