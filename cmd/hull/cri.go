package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// newCRICmd is `hull cri serve`: the Container Runtime Interface for
// kubelet and crictl. The server is hull-cri (package internal/cri),
// which this command execs with hull's configuration: gRPC is linked
// there only, so its start-up cost never lands on hull's other commands.
func newCRICmd(g *globals) *cobra.Command {
	cri := &cobra.Command{
		Use:   "cri",
		Short: "Serve the Container Runtime Interface (kubelet, crictl)",
	}
	var listen, streamingAddr string
	var pinned []string
	serve := &cobra.Command{
		Use:   "serve [OPTIONS]",
		Short: "Serve the CRI on a unix socket until SIGTERM or SIGINT",
		Long: `Serve the Container Runtime Interface (k8s.io/cri-api v1) on a unix socket,
over the same images and containers as the CLI. Point kubelet's
containerRuntimeEndpoint (or crictl --runtime-endpoint) at it.
The streams of exec, attach and port-forward go over HTTP on
--streaming-address (the loopback by default: kubelet on this node is their
client). Containers keep running when the server stops; SIGTERM or SIGINT
stop it and remove the socket.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			bin := criBinary(self)
			argv := append([]string{bin, "--hull", self}, g.globalArgs()...)
			argv = append(argv, "--listen", listen, "--streaming-address", streamingAddr)
			for _, p := range pinned {
				argv = append(argv, "--pinned-image", p)
			}
			if err := syscall.Exec(bin, argv, os.Environ()); err != nil {
				return fmt.Errorf("run %s: %w (build it with make build, or set HULL_CRI)", bin, err)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&listen, "listen", "unix:///run/hull/cri.sock", "the unix socket to serve on (kubelet's containerRuntimeEndpoint)")
	serve.Flags().StringVar(&streamingAddr, "streaming-address", "127.0.0.1:0", "the TCP address of the streaming server, where the URLs of exec, attach and port-forward point (port 0: one the kernel picks)")
	serve.Flags().StringArrayVar(&pinned, "pinned-image", nil, "an image kubelet's image GC must keep (repeatable)")
	cri.AddCommand(serve)
	return cri
}

// criBinary is the CRI server: $HULL_CRI, else hull-cri next to hull.
func criBinary(self string) string {
	if p := os.Getenv("HULL_CRI"); p != "" {
		return p
	}
	return filepath.Join(filepath.Dir(self), "hull-cri")
}
