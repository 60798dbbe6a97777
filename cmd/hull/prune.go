package main

import (
	"fmt"
	"io"
	"strings"
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
	var until []time.Time
	var with, without []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad filter %q: use key=value", a)
		}
		switch k {
		case "until":
			t, err := parseTimeArg("--filter until", v)
			if err != nil {
				return nil, err
			}
			until = append(until, t)
		case "label":
			with = append(with, v)
		case "label!":
			without = append(without, v)
		default:
			return nil, fmt.Errorf("bad filter %q: unknown key %q (use until, label or label!)", a, k)
		}
	}
	hasLabel := func(c *engine.Container, want string) bool {
		k, v, has := strings.Cut(want, "=")
		got, ok := c.Config.Labels[k]
		return ok && (!has || got == v)
	}
	return func(c *engine.Container) bool {
		for _, t := range until {
			if !c.Created.Before(t) {
				return true
			}
		}
		for _, l := range with {
			if !hasLabel(c, l) {
				return true
			}
		}
		for _, l := range without {
			if hasLabel(c, l) {
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
