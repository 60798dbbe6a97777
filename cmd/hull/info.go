package main

import (
	"fmt"
	goruntime "runtime"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"hull/internal/engine"
	"hull/internal/ui"
)

// infoDoc is what `hull info --format` sees: the engine's Info under
// docker's field names, with the version of hull as ServerVersion.
type infoDoc struct {
	engine.Info
	ServerVersion string
}

func newInfoCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Show storage paths, counts, cgroup mode and the kernel features hull relies on",
		Long: `Show storage paths, counts, cgroup mode and the kernel features hull relies on.
--format takes a Go template over docker's field names ({{.Driver}},
{{.CgroupVersion}}, {{.ContainersRunning}}, {{.NCPU}}, ...) or json.`,
		Args: exactArgs(0, "no arguments"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			in, err := eng.Info(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if format != "" {
				return ui.Format(w, format, []infoDoc{{Info: *in, ServerVersion: version}})
			}
			fmt.Fprintf(w, "Version:          %s\n", version)
			fmt.Fprintf(w, "Root:             %s\n", in.DockerRootDir)
			fmt.Fprintf(w, "Run root:         %s\n", in.RunRoot)
			fmt.Fprintf(w, "Image store:      %s (OCI image layout)\n", in.ImageStore)
			fmt.Fprintf(w, "Snapshotter:      %s\n", in.Driver)
			fmt.Fprintf(w, "Images:           %d\n", in.Images)
			fmt.Fprintf(w, "Containers:       %d (running %d, paused %d, stopped %d)\n", in.Containers, in.ContainersRunning, in.ContainersPaused, in.ContainersStopped)
			fmt.Fprintf(w, "Cgroup mode:      %s\n", in.CgroupMode)
			fmt.Fprintf(w, "Logging driver:   %s\n", in.LoggingDriver)
			fmt.Fprintf(w, "Kernel:           %s\n", in.KernelVersion)
			fmt.Fprintf(w, "Operating system: %s\n", in.OperatingSystem)
			fmt.Fprintf(w, "CPUs:             %d\n", in.NCPU)
			fmt.Fprintf(w, "Total memory:     %s\n", ui.Size(in.MemTotal))
			fmt.Fprintf(w, "Overlay:          %s\n", yesNo(in.Overlay))
			fmt.Fprintf(w, "User namespaces:  %s\n", yesNo(in.UserNamespaces))
			fmt.Fprintf(w, "Seccomp:          %s\n", yesNo(in.Seccomp))
			fmt.Fprintf(w, "ID:               %s\n", in.ID)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template, or json")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// versionDoc is docker's `docker version` document. hull has no daemon:
// the server is the engine in this same binary, so both halves carry
// hull's version.
type versionDoc struct {
	Client versionClient
	Server versionServer
}

type versionPlatform struct{ Name string }

type versionClient struct {
	Platform   versionPlatform
	Version    string
	APIVersion string `json:"ApiVersion"`
	GoVersion  string
	Os         string
	Arch       string
}

type versionServer struct {
	versionClient
	KernelVersion string
}

func newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Print hull's version",
		Long: `Print hull's version. --format takes docker's template
({{.Client.Version}}, {{.Server.Version}}, {{json .}}) or json.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if format == "" {
				fmt.Fprintf(w, "hull version %s\n", version)
				return nil
			}
			var uts unix.Utsname
			unix.Uname(&uts)
			client := versionClient{Platform: versionPlatform{"hull"}, Version: version, APIVersion: version,
				GoVersion: goruntime.Version(), Os: goruntime.GOOS, Arch: goruntime.GOARCH}
			doc := versionDoc{Client: client, Server: versionServer{client, unix.ByteSliceToString(uts.Release[:])}}
			return ui.Format(w, format, []versionDoc{doc})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template, or json")
	return cmd
}
