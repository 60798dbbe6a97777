package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// The prune commands are docker's: each asks before it removes anything
// (unless -f), takes docker's --filter (engine.PruneFilter: until=,
// label=, label!=), and reports what went and the space reclaimed.

// pruneKind is one object kind's prune command: its warnings (warnAll
// with -a, "" when it has no -a), the section title of its report and
// the engine call; noSpace for a kind that holds no disk space (networks:
// docker reports no total for them).
type pruneKind struct {
	kind, short, warn, warnAll, allHelp, title string
	noSpace                                    bool
	prune                                      func(eng *engine.Engine, ctx context.Context, f engine.PruneFilter) ([]string, int64, error)
}

func newPruneCmd(g *globals, k pruneKind) *cobra.Command {
	var force, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: k.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParsePruneFilter(k.kind, filters)
			if err != nil {
				return err
			}
			f.All = f.All || all
			warning := k.warn
			if f.All {
				warning = k.warnAll
			}
			if !force && !confirm(cmd, warning) {
				return nil
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			removed, freed, err := k.prune(eng, cmd.Context(), f)
			if k.noSpace {
				printRemoved(cmd.OutOrStdout(), k.title, removed)
			} else {
				printPruned(cmd.OutOrStdout(), k.title, removed, freed)
			}
			return err
		},
	}
	if k.warnAll != "" {
		cmd.Flags().BoolVarP(&all, "all", "a", false, k.allHelp)
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. \"until=24h\", \"label=k=v\", \"label!=k\")")
	return cmd
}

func newContainerPruneCmd(g *globals) *cobra.Command {
	return newPruneCmd(g, pruneKind{kind: "container", short: "Remove all stopped containers", title: "Containers",
		warn:  "WARNING! This will remove all stopped containers.",
		prune: (*engine.Engine).PruneContainers})
}

func newImagePruneCmd(g *globals) *cobra.Command {
	return newPruneCmd(g, pruneKind{kind: "image", short: "Remove unused images", title: "Images",
		warn:    "WARNING! This will remove all dangling images.",
		warnAll: "WARNING! This will remove all images without at least one container associated to them.",
		allHelp: "remove all unused images, not just dangling ones",
		prune:   (*engine.Engine).PruneImages})
}

func newVolumePruneCmd(g *globals) *cobra.Command {
	return newPruneCmd(g, pruneKind{kind: "volume", short: "Remove unused local volumes", title: "Volumes",
		warn:    "WARNING! This will remove anonymous local volumes not used by at least one container.",
		warnAll: "WARNING! This will remove all local volumes not used by at least one container.",
		allHelp: "remove all unused volumes, not just anonymous ones",
		prune:   (*engine.Engine).PruneVolumes})
}

func newSystemPruneCmd(g *globals) *cobra.Command {
	var all, force, volumes bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Long: `Remove stopped containers, the networks no container uses, with
--volumes the anonymous volumes no container uses, untagged images (with -a, every image no container uses),
then every unpacked layer no image or container needs and every blob no
image references (as docker system prune does). Nothing in use is removed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParsePruneFilter("system", filters)
			if err != nil {
				return err
			}
			if volumes && !f.Until.IsZero() {
				return errors.New(`ERROR: The "until" filter is not supported with "--volumes"`)
			}
			out := cmd.OutOrStdout()
			if !force {
				what := []string{"all stopped containers", "all networks not used by at least one container"}
				if volumes {
					what = append(what, "all anonymous volumes not used by at least one container")
				}
				if all {
					what = append(what, "all images without at least one container associated to them")
				} else {
					what = append(what, "all dangling images")
				}
				what = append(what, "all unpacked layers no image or container uses", "all unreferenced blobs")
				var b strings.Builder
				b.WriteString("WARNING! This will remove:")
				for _, w := range what {
					b.WriteString("\n  - " + w)
				}
				b.WriteString("\n")
				if len(filters) > 0 {
					b.WriteString("\n  Items to be pruned will be filtered with:")
					for _, fl := range slices.Sorted(slices.Values(filters)) {
						b.WriteString("\n  - " + fl)
					}
					b.WriteString("\n")
				}
				if !confirm(cmd, b.String()) {
					return nil
				}
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			rep, err := eng.Prune(cmd.Context(), engine.PruneOptions{AllImages: all, Volumes: volumes, Filter: f})
			if rep == nil {
				return err
			}
			for _, section := range []struct {
				title string
				lines []string
			}{{"Deleted Containers:", rep.Containers}, {"Deleted Networks:", rep.Networks}, {"Deleted Volumes:", rep.Volumes}, {"Deleted Images:", rep.Images}, {"Deleted Layers:", rep.Layers}} {
				if len(section.lines) > 0 {
					fmt.Fprintln(out, section.title)
					for _, l := range section.lines {
						fmt.Fprintln(out, l)
					}
					fmt.Fprintln(out)
				}
			}
			if err != nil {
				return err
			}
			if len(rep.Blobs) > 0 {
				fmt.Fprintf(out, "Deleted %d blobs\n\n", len(rep.Blobs))
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", ui.Size(rep.Reclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. \"label=<key>=<value>\")")
	return cmd
}

// confirm asks docker's prune question on stdout, as docker does, and
// reads the answer from stdin: only y or yes goes on.
func confirm(cmd *cobra.Command, warning string) bool {
	fmt.Fprintf(cmd.OutOrStdout(), "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// printPruned is docker's prune report.
func printPruned(out io.Writer, what string, removed []string, freed int64) {
	printRemoved(out, what, removed)
	fmt.Fprintf(out, "Total reclaimed space: %s\n", ui.Size(freed))
}

// printRemoved is a prune report's "Deleted WHAT:" section, if any.
func printRemoved(out io.Writer, what string, removed []string) {
	if len(removed) > 0 {
		fmt.Fprintf(out, "Deleted %s:\n", what)
		for _, id := range removed {
			fmt.Fprintln(out, id)
		}
		fmt.Fprintln(out)
	}
}
