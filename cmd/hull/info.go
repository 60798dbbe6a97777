package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

func newInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show storage paths, counts, cgroup mode and the kernel features hull relies on",
		Args:  cobra.NoArgs,
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			in, err := eng.Info(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Version:          %s\n", version)
			fmt.Fprintf(w, "Root:             %s\n", in.Root)
			fmt.Fprintf(w, "Run root:         %s\n", in.RunRoot)
			fmt.Fprintf(w, "Image store:      %s (OCI image layout)\n", in.ImageStore)
			fmt.Fprintf(w, "Snapshotter:      %s\n", in.Snapshotter)
			fmt.Fprintf(w, "Images:           %d\n", in.Images)
			fmt.Fprintf(w, "Containers:       %d (running %d)\n", in.Containers, in.Running)
			fmt.Fprintf(w, "Cgroup mode:      %s\n", in.CgroupMode)
			fmt.Fprintf(w, "Kernel:           %s\n", in.Kernel)
			fmt.Fprintf(w, "Overlay:          %s\n", yesNo(in.Overlay))
			fmt.Fprintf(w, "User namespaces:  %s\n", yesNo(in.UserNamespaces))
			fmt.Fprintf(w, "Seccomp:          %s\n", yesNo(in.Seccomp))
			return nil
		}),
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
