package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

func newInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show storage paths, counts, cgroup mode and the kernel features hull relies on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			images, err := eng.ImageCount(cmd.Context())
			if err != nil {
				return err
			}
			containers, err := eng.List(cmd.Context())
			if err != nil {
				return err
			}
			running := 0
			for _, c := range containers {
				if c.IsRunning() {
					running++
				}
			}
			var uts unix.Utsname
			unix.Uname(&uts)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Version:          %s\n", version)
			fmt.Fprintf(w, "Root:             %s\n", g.cfg.Root)
			fmt.Fprintf(w, "Run root:         %s\n", g.cfg.RunRoot)
			fmt.Fprintf(w, "Image store:      %s (OCI image layout)\n", eng.ImageStoreDir())
			fmt.Fprintf(w, "Snapshotter:      %s\n", g.cfg.Storage.Snapshotter)
			fmt.Fprintf(w, "Images:           %d\n", images)
			fmt.Fprintf(w, "Containers:       %d (running %d)\n", len(containers), running)
			fmt.Fprintf(w, "Cgroup mode:      %s\n", cgroups.DetectMode())
			fmt.Fprintf(w, "Kernel:           %s\n", unix.ByteSliceToString(uts.Release[:]))
			fmt.Fprintf(w, "Overlay:          %s\n", yesNo(hasFilesystem("overlay")))
			fmt.Fprintf(w, "User namespaces:  %s\n", yesNo(readInt("/proc/sys/user/max_user_namespaces") > 0))
			fmt.Fprintf(w, "Seccomp:          %s\n", yesNo(seccompAvailable()))
			return nil
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func hasFilesystem(name string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

func readInt(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// seccompAvailable reports whether the kernel offers seccomp filters.
func seccompAvailable() bool {
	data, err := os.ReadFile("/proc/self/status")
	return err == nil && strings.Contains(string(data), "\nSeccomp:")
}
