package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// newNetworkCmd is docker's `hull network create|ls|inspect|rm|prune|
// connect|disconnect` (engine networks.go).
func newNetworkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(newNetworkCreateCmd(g), newNetworkLsCmd(g), newNetworkInspectCmd(g), newNetworkRmCmd(g),
		newNetworkPruneCmd(g), newNetworkConnectCmd(g), newNetworkDisconnectCmd(g))
	return cmd
}

func newNetworkCreateCmd(g *globals) *cobra.Command {
	var o engine.NetworkCreateOptions
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network (a bridge; prints its ID)",
		Args:  exactArgs(1, "a network name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			o.Labels = parseLabels(labels)
			o.Options = map[string]string{}
			for _, kv := range opts {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("invalid option %q: use -o key=value", kv)
				}
				o.Options[k] = v
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, err := eng.CreateNetwork(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Driver, "driver", "d", "bridge", "driver to manage the network (only bridge)")
	f.StringSliceVar(&o.Subnets, "subnet", nil, "subnet in CIDR format (one IPv4, one IPv6 with --ipv6)")
	f.StringSliceVar(&o.Gateways, "gateway", nil, "IPv4 or IPv6 gateway of the subnet")
	f.StringSliceVar(&o.IPRanges, "ip-range", nil, "allocate container addresses from this part of the subnet (CIDR)")
	f.BoolVar(&o.Internal, "internal", false, "restrict external access to the network (no default route)")
	f.BoolVar(&o.IPv6, "ipv6", false, "enable IPv6 (a unique local /64 unless --subnet gives one)")
	f.StringArrayVar(&labels, "label", nil, "set metadata on the network: key=value")
	f.StringArrayVarP(&opts, "opt", "o", nil, "driver options: "+engine.OptBridgeName+"=NAME, "+engine.OptMasquerade+"=false")
	return cmd
}

// networkRow is one row of `network ls`, with docker's --format fields
// (all strings, as docker's).
type networkRow struct {
	CreatedAt string `json:"CreatedAt"`
	Driver    string `json:"Driver"`
	ID        string `json:"ID"`
	IPv4      string `json:"IPv4"`
	IPv6      string `json:"IPv6"`
	Internal  string `json:"Internal"`
	Labels    string `json:"Labels"`
	Name      string `json:"Name"`
	Scope     string `json:"Scope"`
	labels    map[string]string
}

// Label is docker's {{.Label "key"}}.
func (r networkRow) Label(name string) string { return r.labels[name] }

func networkRowOf(n *engine.Network, noTrunc bool) networkRow {
	id := n.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	return networkRow{
		CreatedAt: n.Created.String(), Driver: n.Driver, ID: id, IPv4: fmt.Sprint(n.EnableIPv4), IPv6: fmt.Sprint(n.EnableIPv6),
		Internal: fmt.Sprint(n.Internal), Labels: strings.Join(labels, ","), Name: n.Name, Scope: n.Scope, labels: n.Labels,
	}
}

// networkFilter is docker's network ls filters: driver=, id=, label=,
// label!=, name=, scope=, type=custom|builtin, dangling=true|false (a
// user-defined network no container uses).
func networkFilter(args []string) (func(n *engine.Network) bool, error) {
	fs, err := parseFilterSet(args, "driver", "id", "label", "label!", "name", "scope", "type", "dangling")
	if err != nil {
		return nil, err
	}
	for _, t := range fs["type"] {
		if t != "custom" && t != "builtin" {
			return nil, fmt.Errorf("invalid filter: 'type'='%s' (use custom or builtin)", t)
		}
	}
	for _, d := range fs["dangling"] {
		if d != "true" && d != "false" && d != "1" && d != "0" {
			return nil, fmt.Errorf("invalid filter: 'dangling'='%s' (use true or false)", d)
		}
	}
	// docker's Match: the value itself, or as a regular expression.
	match := func(pattern, s string) bool {
		if pattern == s {
			return true
		}
		ok, err := regexp.MatchString(pattern, s)
		return err == nil && ok
	}
	return func(n *engine.Network) bool {
		for _, l := range fs["label!"] {
			if labelMatches(n.Labels, l) {
				return false
			}
		}
		unused := !n.Builtin && len(n.Users) == 0 && len(n.Containers) == 0
		return fs.anyOf("driver", func(s string) bool { return s == n.Driver }) &&
			fs.anyOf("id", func(s string) bool { return match(s, n.ID) }) &&
			fs.anyOf("name", func(s string) bool { return match(s, n.Name) }) &&
			fs.anyOf("scope", func(s string) bool { return s == n.Scope }) &&
			fs.anyOf("label", func(s string) bool { return labelMatches(n.Labels, s) }) &&
			fs.anyOf("type", func(s string) bool { return (s == "builtin") == n.Builtin }) &&
			fs.anyOf("dangling", func(s string) bool { return (s == "true" || s == "1") == unused })
	}, nil
}

func newNetworkLsCmd(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := networkFilter(filters)
			if err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			nets, err := eng.Networks(cmd.Context())
			if err != nil {
				return err
			}
			var rows []networkRow
			for _, n := range nets {
				if match(n) {
					rows = append(rows, networkRowOf(n, noTrunc))
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
				return nil
			case format != "":
				return ui.FormatHeaders(out, format, rows, map[string]string{"ID": "NETWORK ID", "IPv4": "IPV4", "IPv6": "IPV6"})
			}
			t := ui.NewTable(out, "NETWORK ID", "NAME", "DRIVER", "SCOPE")
			for _, r := range rows {
				t.Row(r.ID, r.Name, r.Driver, r.Scope)
			}
			return t.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: name=, id=, driver=, label=, scope=, type=custom|builtin, dangling=true|false")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func newNetworkInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Show detailed information on networks",
		Args:  minArgs(1, "at least one network"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return inspectEach(cmd, format, args, func(a string) (any, error) {
				return eng.InspectNetwork(cmd.Context(), a)
			})
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template")
	return cmd
}

func newNetworkRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove networks (refused while a container is configured on one)",
		Args:    minArgs(1, "at least one network"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var errs []error
			for _, a := range args {
				err := eng.RemoveNetwork(cmd.Context(), a)
				switch {
				case err == nil:
					fmt.Fprintln(cmd.OutOrStdout(), a)
				case force && errdefs.IsNotFound(err):
				default:
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not error if the network does not exist")
	return cmd
}

func newNetworkPruneCmd(g *globals) *cobra.Command {
	return newPruneCmd(g, pruneKind{kind: "network", short: "Remove all unused networks", title: "Networks", noSpace: true,
		warn: "WARNING! This will remove all custom networks not used by at least one container.",
		prune: func(eng *engine.Engine, ctx context.Context, f engine.PruneFilter) ([]string, int64, error) {
			removed, err := eng.PruneNetworks(ctx, f)
			return removed, 0, err
		}})
}

func newNetworkConnectCmd(g *globals) *cobra.Command {
	var ip, ip6 string
	var aliases []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network (a running one at once)",
		Args:  exactArgs(2, "a network and a container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o engine.ConnectOptions
			for _, a := range []struct {
				flag, value string
				v6          bool
			}{{"--ip", ip, false}, {"--ip6", ip6, true}} {
				if a.value == "" {
					continue
				}
				addr, err := netip.ParseAddr(a.value)
				if err != nil || addr.Is6() != a.v6 || addr.Is4In6() {
					family := "IPv4"
					if a.v6 {
						family = "IPv6"
					}
					return fmt.Errorf("invalid argument %q for %s: not an %s address", a.value, a.flag, family)
				}
				o.IP = append(o.IP, addr)
			}
			o.Aliases = aliases
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			return eng.ConnectNetwork(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", "IPv4 address (e.g. 10.200.1.10)")
	f.StringVar(&ip6, "ip6", "", "IPv6 address")
	f.StringSliceVar(&aliases, "alias", nil, "add a network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2, "a network and a container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return eng.DisconnectNetwork(cmd.Context(), args[0], args[1], force)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}
