package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

// newDNSCmd is the hidden `hull dns NETWORK`: a user-defined network's
// name server, which the engine starts when a container attaches to the
// network and which exits by itself once the network has no container
// left (engine.ServeDNS).
func newDNSCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    engine.DNSCommand + " NETWORK",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
			return engine.ServeDNS(g.cfg, args[0])
		},
	}
}
