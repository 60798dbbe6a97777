package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"hull/internal/engine"
)

// newPortCmd is docker's `port CONTAINER [PRIVATE_PORT[/PROTO]]`: the host
// addresses a running container's ports are published on.
func newPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2, "a container and optionally a port"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			c, err := eng.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ports := eng.PublishedPorts(c)
			out := cmd.OutOrStdout()
			if len(args) == 2 {
				want, proto, _ := strings.Cut(args[1], "/")
				if proto == "" {
					proto = "tcp"
				}
				n, err := strconv.ParseUint(want, 10, 16)
				if err != nil || n == 0 {
					return fmt.Errorf("invalid port %q: use PORT or PORT/PROTO, e.g. 80/tcp", args[1])
				}
				found := false
				for _, p := range ports {
					if p.ContainerPort == uint16(n) && p.Protocol == proto {
						fmt.Fprintln(out, hostAddr(p))
						found = true
					}
				}
				if !found {
					return fmt.Errorf("no public port '%d/%s' published for %s", n, proto, c.Name)
				}
				return nil
			}
			for _, p := range ports {
				fmt.Fprintf(out, "%d/%s -> %s\n", p.ContainerPort, p.Protocol, hostAddr(p))
			}
			return nil
		}),
	}
}

// hostAddr is where a port is published, as docker prints it:
// 0.0.0.0:8080.
func hostAddr(p engine.PortMapping) string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
}

// portsColumn is docker's PORTS column: the published ports
// (0.0.0.0:8080->80/tcp), then the exposed ones not published (443/tcp).
func portsColumn(published []engine.PortMapping, exposed map[string]struct{}) string {
	var out []string
	done := map[string]bool{}
	for _, p := range published {
		out = append(out, p.String())
		done[fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)] = true
	}
	var rest []string
	for p := range exposed {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		if !done[p] {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	return strings.Join(append(out, rest...), ", ")
}
