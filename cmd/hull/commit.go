package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

func newCommitCmd(g *globals) *cobra.Command {
	var o engine.CommitOptions
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Long: `Create a new image from a container's changes, as docker commit: the
container's writable layer becomes a layer on top of its image, and its
config (command, environment, user, working directory, labels, ports) the
image's, with each --change applied. A running container is paused while
its layer is read (--pause=false leaves it running). Prints the image ID.

--change takes Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE,
LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, e.g. -c 'CMD ["sh"]' -c 'ENV A=1'.`,
		Args: rangeArgs(1, 2, "a container and optionally REPOSITORY[:TAG]"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			if len(args) == 2 {
				o.Name = args[1]
			}
			ctx, cancel := signalContext()
			defer cancel()
			id, err := eng.Commit(ctx, args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&o.Author, "author", "a", "", `author (e.g. "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringVarP(&o.Message, "message", "m", "", "commit message")
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image's config")
	f.BoolVarP(&o.Pause, "pause", "p", true, "pause the container during the commit")
	return cmd
}
