package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"

	"hull/internal/engine"
)

// netFlags are run/create's networking flags (docker's).
type netFlags struct {
	networks                       []string
	ip, ip6, mac                   string
	aliases                        []string
	publish                        []string
	publishAll                     bool
	dns, dnsSearch, dnsOpts, hosts []string
	pod                            string
}

func (f *netFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.networks, "network", nil, "connect to a network: bridge (default), none, host, container:NAME|ID, or a network's name (repeatable)")
	fs.StringArrayVar(&f.networks, "net", nil, "same as --network")
	fs.Lookup("net").Hidden = true
	fs.StringVar(&f.ip, "ip", "", "IPv4 address on the (first) network, e.g. 10.88.0.10")
	fs.StringVar(&f.ip6, "ip6", "", "IPv6 address on the (first) network")
	fs.StringVar(&f.mac, "mac-address", "", "MAC address on the (first) network, e.g. 92:d0:c6:0a:29:33")
	fs.StringArrayVar(&f.aliases, "network-alias", nil, "add a name the container answers to on the (first) user-defined network")
	fs.StringArrayVar(&f.aliases, "net-alias", nil, "same as --network-alias")
	fs.Lookup("net-alias").Hidden = true
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) on the host: [IP:][HOSTPORT:]PORT[/PROTO]")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports on random host ports")
	fs.StringArrayVar(&f.dns, "dns", nil, "set a DNS server")
	fs.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set a DNS search domain")
	fs.StringArrayVar(&f.dnsOpts, "dns-option", nil, "set a DNS option")
	fs.StringArrayVar(&f.dnsOpts, "dns-opt", nil, "same as --dns-option")
	fs.Lookup("dns-opt").Hidden = true
	fs.StringArrayVar(&f.hosts, "add-host", nil, "add a host-to-IP mapping: NAME:IP (IP may be host-gateway)")
}

// registerPod adds run/create's --pod (not pod create's).
func (f *netFlags) registerPod(fs *pflag.FlagSet) {
	fs.StringVar(&f.pod, "pod", "", "run the container in a pod (its network, IPC and UTS namespaces): name or ID")
}

// newNetNS says whether the container gets a network namespace of its own
// (which its spare monitor makes ahead).
func (f *netFlags) newNetNS() bool {
	if f.pod != "" {
		return false // the pod's
	}
	mode := engine.NetworkBridge
	if len(f.networks) > 0 {
		mode = f.networks[0]
	}
	return mode != engine.NetworkHost && !strings.HasPrefix(mode, "container:")
}

// apply sets c's network mode and NetConfig from the flags.
func (f *netFlags) apply(c *engine.Config) error {
	n := &c.Net
	for i, name := range f.networks {
		if name == "" {
			return fmt.Errorf("--network: the network's name is empty")
		}
		if i == 0 {
			c.Spec.Network = name
		}
		switch {
		case name == engine.NetworkNone, name == engine.NetworkHost, strings.HasPrefix(name, "container:"):
			if len(f.networks) > 1 {
				return fmt.Errorf("--network %s cannot be combined with other --network flags", name)
			}
			continue
		}
		n.Networks = append(n.Networks, engine.Endpoint{Network: name})
	}
	first := func(flag string) (*engine.Endpoint, error) {
		if c.Spec.Network == "" { // the default: bridge, made explicit
			c.Spec.Network = engine.NetworkBridge
			n.Networks = []engine.Endpoint{{Network: engine.NetworkBridge}}
		}
		if len(n.Networks) == 0 {
			return nil, fmt.Errorf("%s: --network %s has no network to apply it to", flag, c.Spec.Network)
		}
		return &n.Networks[0], nil
	}
	for _, v := range []struct{ flag, value string }{{"--ip", f.ip}, {"--ip6", f.ip6}} {
		if v.value == "" {
			continue
		}
		a, err := netip.ParseAddr(v.value)
		if err != nil || (v.flag == "--ip") != a.Is4() {
			return fmt.Errorf("invalid %s %q: not an IPv%s address", v.flag, v.value, map[bool]string{true: "4", false: "6"}[v.flag == "--ip"])
		}
		ep, err := first(v.flag)
		if err != nil {
			return err
		}
		ep.IP = append(ep.IP, a)
	}
	if f.mac != "" {
		ep, err := first("--mac-address")
		if err != nil {
			return err
		}
		ep.MAC = f.mac
	}
	if len(f.aliases) > 0 {
		ep, err := first("--network-alias")
		if err != nil {
			return err
		}
		ep.Aliases = f.aliases
	}
	ports, err := engine.ParsePorts(f.publish)
	if err != nil {
		return err
	}
	n.Ports, n.PublishAll = ports, f.publishAll
	n.DNS, n.DNSSearch, n.DNSOptions, n.ExtraHosts = f.dns, f.dnsSearch, f.dnsOpts, f.hosts
	c.Pod = f.pod
	return nil
}
