package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

func newContainerPruneCmd(g *globals) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := pruneFilter(filters)
			if err != nil {
				return err
			}
			if !force && !confirm(cmd, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			removed, freed, err := eng.PruneContainers(cmd.Context(), keep)
			printPruned(cmd.OutOrStdout(), "Containers", removed, freed)
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter: until=TIMESTAMP|DURATION, label=k[=v], label!=k[=v]")
	return cmd
}

// pruneFilter turns docker's prune filters into the containers to keep:
// until= spares those created after it, label= those without the label,
// label!= those with it.
func pruneFilter(args []string) (func(*engine.Container) bool, error) {
	fs, err := parseFilterSet(args, "until", "label", "label!")
	if err != nil {
		return nil, err
	}
	var until []time.Time
	for _, v := range fs["until"] {
		t, err := parseTimeArg("--filter until", v)
		if err != nil {
			return nil, err
		}
		until = append(until, t)
	}
	return func(c *engine.Container) bool {
		for _, t := range until {
			if !c.Created.Before(t) {
				return true
			}
		}
		for _, l := range fs["label"] {
			if !labelMatches(c.Config.Labels, l) {
				return true
			}
		}
		for _, l := range fs["label!"] {
			if labelMatches(c.Config.Labels, l) {
				return true
			}
		}
		return false
	}, nil
}

// printPruned is docker's prune report.
func printPruned(out io.Writer, what string, removed []string, freed int64) {
	if len(removed) > 0 {
		fmt.Fprintf(out, "Deleted %s:\n", what)
		for _, id := range removed {
			fmt.Fprintln(out, id)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Total reclaimed space: %s\n", ui.Size(freed))
}
