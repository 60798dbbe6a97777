package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The files a container resolves names with, written per container by
// the engine and bind-mounted over /etc/hosts and /etc/resolv.conf, by
// docker's rules (libnetwork's etchosts and resolvconf).

// DNSOptions are a container's --dns, --dns-search and --dns-option.
type DNSOptions struct {
	Servers []string
	Search  []string // "." alone clears the host's
	Options []string
	// Resolver is the name server of the container's user-defined
	// network (docker's 127.0.0.11: hull's runs on the network's
	// gateway, see package hull/internal/dns): the container's only
	// nameserver, forwarding to the servers ResolvConf returns (the
	// host's, loopback ones included, or --dns's); "options ndots:0"
	// unless an ndots is given, as docker. Unset on the default network,
	// as docker.
	Resolver netip.Addr
	// IPv6 keeps the host's IPv6 nameservers (the container has IPv6).
	IPv6 bool
}

// ResolvConf returns a container's resolv.conf built from the host's
// (hostResolv, /etc/resolv.conf's contents): the host's nameservers less
// the loopback ones, which mean nothing in the container's namespace (and
// less the IPv6 ones without IPv6), or the --dns servers instead; the
// host's search domains and options unless --dns-search/--dns-option
// replace them. upstream are the servers an embedded resolver forwards to.
// If no nameserver is left the container gets none, and a warning says
// so: it is never given a public resolver it did not ask for.
func ResolvConf(hostResolv []byte, o DNSOptions) (content []byte, upstream []string, warnings []string, err error) {
	var servers, search, options []string
	sc := bufio.NewScanner(bytes.NewReader(hostResolv))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0][0] == '#' || f[0][0] == ';' {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				servers = append(servers, f[1])
			}
		case "search", "domain": // the last one wins, as in the resolver
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(o.Servers) > 0 {
		servers = nil
		for _, s := range o.Servers {
			if _, err := netip.ParseAddr(s); err != nil {
				return nil, nil, nil, fmt.Errorf("--dns %q is not an IP address", s)
			}
			servers = append(servers, s)
		}
	} else {
		var kept []string
		for _, s := range servers {
			a, err := netip.ParseAddr(strings.Split(s, "%")[0])
			if err != nil || a.Unmap().IsLoopback() || (a.Is6() && !a.Is4In6() && !o.IPv6) {
				continue
			}
			kept = append(kept, s)
		}
		if o.Resolver.IsValid() {
			// The resolver runs on the host and reaches the host's
			// loopback servers (systemd-resolved's 127.0.0.53).
			kept = servers
		} else if len(kept) == 0 && len(servers) > 0 {
			warnings = append(warnings, fmt.Sprintf("the host's nameservers (%s) are loopback or IPv6 addresses the container cannot reach, so it has none; give one with --dns", strings.Join(servers, ", ")))
		} else if len(servers) == 0 {
			warnings = append(warnings, "the host's /etc/resolv.conf has no nameserver, so the container has none; give one with --dns")
		}
		servers = kept
	}
	if len(o.Search) > 0 {
		search = nil
		if !(len(o.Search) == 1 && o.Search[0] == ".") {
			search = o.Search
		}
	}
	if len(o.Options) > 0 {
		options = o.Options
	}
	var b strings.Builder
	if o.Resolver.IsValid() {
		upstream = servers
		fmt.Fprintf(&b, "nameserver %s\n", o.Resolver)
		// docker's: names of the network have no dots, and are asked
		// as they are before any search domain is tried.
		if !slices.ContainsFunc(options, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
			options = append(slices.Clip(options), "ndots:0")
		}
	} else {
		for _, s := range servers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return []byte(b.String()), upstream, warnings, nil
}

// defaultHosts are docker's first lines of every container's /etc/hosts.
const defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// HostsOptions describe a container's /etc/hosts.
type HostsOptions struct {
	Hostname   string
	Domainname string
	// Addresses are the container's own (one line each, named Hostname).
	Addresses []netip.Addr
	// ExtraHosts are --add-host values, NAME:IP (or NAME=IP), IP may be
	// "host-gateway".
	ExtraHosts []string
	// HostGateway is what host-gateway stands for: the gateway of the
	// container's network.
	HostGateway netip.Addr
}

// Hosts returns a container's /etc/hosts as docker writes it: the
// loopback names, the --add-host entries, then the container's own
// addresses with its hostname.
func Hosts(o HostsOptions) ([]byte, error) {
	var b strings.Builder
	b.WriteString(defaultHosts)
	for _, h := range o.ExtraHosts {
		name, ip, err := ParseAddHost(h, o.HostGateway)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	names := o.Hostname
	if o.Domainname != "" {
		names = o.Hostname + "." + o.Domainname + " " + o.Hostname
	}
	for _, a := range o.Addresses {
		if names != "" {
			fmt.Fprintf(&b, "%s\t%s\n", a, names)
		}
	}
	return []byte(b.String()), nil
}

// ParseAddHost parses an --add-host value, NAME:IP or NAME=IP, IP an IPv4
// or IPv6 address or host-gateway (hostGateway's address).
func ParseAddHost(v string, hostGateway netip.Addr) (string, netip.Addr, error) {
	name, ip, ok := strings.Cut(v, "=")
	if !ok {
		name, ip, ok = strings.Cut(v, ":")
	}
	if !ok || name == "" || ip == "" {
		return "", netip.Addr{}, fmt.Errorf("invalid --add-host %q: expected NAME:IP", v)
	}
	if strings.ContainsAny(name, " \t") {
		return "", netip.Addr{}, fmt.Errorf("invalid --add-host %q: the name has white space", v)
	}
	if ip == "host-gateway" {
		if !hostGateway.IsValid() {
			return "", netip.Addr{}, fmt.Errorf("--add-host %s: host-gateway has no address: the container's network has no gateway", v)
		}
		return name, hostGateway, nil
	}
	a, err := netip.ParseAddr(strings.Trim(ip, "[]"))
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("invalid --add-host %q: %q is not an IP address", v, ip)
	}
	return name, a, nil
}
