package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

// newSystemCheckCmd is `hull system check`: engine.Check over the roots,
// and, with --repair on a database hull refuses to open, its rebuild.
func newSystemCheckCmd(g *globals) *cobra.Command {
	var o engine.CheckOptions
	var format string
	cmd := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Compare the database, the image store, snapshots, mounts and run state, and repair what disagrees",
		Long: `Compare the database, the image store, the unpacked layers, the mounts, the
run state and the modes of what hull keeps; print one line for every
inconsistency (exit status 1 if there is any). --repair puts right what can
be: it finishes removals and drops creations that were killed half way,
stops and removes what belongs to no recorded container (a container's logs
are moved to <root>/lost+found), removes layers and blobs nothing uses and
tightens modes. --verify hashes every stored blob again (with --repair, a
corrupt one is deleted). On a database hull refuses to open (emptied or not
a database), --repair keeps the damaged file as hull.db.damaged-TIME and
rebuilds the images from the store; containers it cannot know again are
stopped and their logs moved to lost+found.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			var rebuilt []string
			eng, done, err := g.openEngine(cmd)
			var damaged *engine.DamagedError
			if errors.As(err, &damaged) && o.Repair {
				if rebuilt, err = engine.RebuildDatabase(cmd.Context(), g.cfg, damaged); err == nil {
					eng, done, err = g.openEngine(cmd)
				}
			}
			if err != nil {
				return err
			}
			defer done()
			problems, err := eng.Check(cmd.Context(), o)
			if err != nil {
				return err
			}
			if format == "json" {
				if problems == nil {
					problems = []engine.Problem{}
				}
				b, _ := json.MarshalIndent(problems, "", "    ")
				fmt.Fprintln(out, string(b))
			} else {
				for _, r := range rebuilt {
					fmt.Fprintln(out, r)
				}
				for _, p := range problems {
					line := fmt.Sprintf("%s: %s", p.Object, p.Problem)
					switch {
					case p.Repaired:
						line += " (repaired: " + p.Repair + ")"
					case p.Error != "":
						line += " (repair failed: " + p.Error + ")"
					default:
						line += " (" + p.Repair + ")"
					}
					fmt.Fprintln(out, line)
				}
				if len(problems) == 0 {
					fmt.Fprintln(out, "no inconsistencies found")
				}
			}
			for _, p := range problems {
				if !p.Repaired {
					return withCode(1, errors.New("inconsistencies found; run hull system check --repair"))
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Repair, "repair", false, "repair what can be repaired")
	f.BoolVar(&o.Verify, "verify", false, "hash every stored blob again")
	f.StringVar(&format, "format", "", "json: print the findings as JSON")
	return cmd
}
