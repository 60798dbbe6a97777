package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

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
	var pinned, cniBin, nriArgs []string
	var cniConf string
	var nriOn bool
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
			// Passed only when given: hull.toml's [cri] applies otherwise.
			if cmd.Flags().Changed("cni-conf-dir") {
				argv = append(argv, "--cni-conf-dir", cniConf)
			}
			for _, d := range cniBin {
				argv = append(argv, "--cni-bin-dir", d)
			}
			argv = append(argv, fmt.Sprintf("--nri=%t", nriOn))
			for _, name := range nriArgs {
				if f := cmd.Flags().Lookup(name); f.Changed {
					argv = append(argv, "--"+name, f.Value.String())
				}
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
	serve.Flags().StringVar(&cniConf, "cni-conf-dir", "/etc/cni/net.d", "CNI configuration directory: its first conflist in lexical order is the pod network ('' = hull's default bridge network)")
	serve.Flags().StringArrayVar(&cniBin, "cni-bin-dir", nil, "a directory of CNI plugins, searched in order (repeatable; default /usr/lib/cni and /opt/cni/bin)")
	// NRI and the spares (hull-cri's flags of the same names; see
	// docs/cri.md).
	serve.Flags().BoolVar(&nriOn, "nri", true, "serve NRI plugins (the Node Resource Interface), as containerd 2 does")
	serve.Flags().String("nri-socket", "/var/run/nri/nri.sock", "the unix socket NRI plugins connect to")
	serve.Flags().String("nri-plugin-path", "/opt/nri/plugins", "pre-installed NRI plugins to start")
	serve.Flags().String("nri-plugin-config-path", "/etc/nri/conf.d", "configuration of the pre-installed NRI plugins")
	serve.Flags().Duration("nri-plugin-registration-timeout", 5*time.Second, "how long an NRI plugin may take to register")
	serve.Flags().Duration("nri-plugin-request-timeout", 2*time.Second, "how long an NRI plugin may take to answer an event")
	serve.Flags().Int("spares", 1, "warm spare monitors kept for StartContainer (each a hull monitor process waiting for its container); 0: none")
	nriArgs = []string{"nri-socket", "nri-plugin-path", "nri-plugin-config-path", "nri-plugin-registration-timeout", "nri-plugin-request-timeout", "spares"}
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
