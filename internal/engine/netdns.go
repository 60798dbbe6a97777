package engine

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"hull/internal/config"
	"hull/internal/dns"
	"hull/internal/network"
)

// Name resolution on user-defined networks (package hull/internal/dns):
// a container on one gets the gateway of its first user-defined network
// as its only nameserver (networkFiles, at create), where that network's
// name server, `hull dns NETWORK` on the host, answers the names of the
// containers of the container's networks (their names, short IDs and
// --network-alias values, recorded in their attachments by dnsNames) and
// forwards the rest to the container's --dns servers or the host's. The
// container's monitor starts the server when it attaches the container
// and none runs (attachNetworks → ensureDNS); the server exits a few
// seconds after the network's last container has gone. A server killed
// by hand is started again by the next container attaching to the
// network. Containers on the default network only, or with --network
// none, host or container:, never touch any of it: docker resolves no
// container names on the default network.

// DNSCommand is the hidden command that runs a network's name server.
const DNSCommand = "dns"

// dnsDir holds the name servers' pidfiles, locks and logs.
func dnsDir(cfg config.Config) string {
	return filepath.Join(cfg.RunRoot, "networks", "dns")
}

// resolverOf returns the name server of a container with networking n:
// the gateway of its first user-defined network, invalid if it has none
// (or hull cannot start servers: no HullCommand).
func (e *Engine) resolverOf(ctx context.Context, n NetConfig) (string, netip.Addr) {
	if e.HullCommand == nil {
		return "", netip.Addr{}
	}
	i := slices.IndexFunc(n.Networks, func(ep Endpoint) bool { return ep.Network != NetworkBridge })
	if i < 0 {
		return "", netip.Addr{}
	}
	m, err := e.networks()
	if err != nil {
		return "", netip.Addr{}
	}
	nw, err := m.Inspect(ctx, n.Networks[i].Network)
	if err != nil {
		return "", netip.Addr{}
	}
	return nw.Name, gateway(nw)
}

// ensureDNS starts the name server of network name, listening on addr,
// unless one runs: a few system calls when it does.
func (e *Engine) ensureDNS(name string, addr netip.Addr) error {
	return dns.Ensure(dns.StartOptions{
		Dir: dnsDir(e.cfg), Network: name, Addr: addr, Command: e.HullCommand(DNSCommand, name),
	})
}

// ServeDNS is the name server process of network name, `hull dns NETWORK`,
// as the engine starts it (see dns.Run). It opens only the networks, not
// the engine.
func ServeDNS(cfg config.Config, name string) error {
	m, err := openNetworks(cfg)
	if err != nil {
		return err
	}
	nw, err := m.Inspect(context.Background(), name)
	if err != nil {
		return err
	}
	return dns.Run(dns.RunOptions{
		Dir: dnsDir(cfg), Network: name, Zone: networkZone(m, nw),
		Idle: func() bool {
			as, err := m.AttachmentsOf(name)
			return err == nil && !slices.ContainsFunc(as, attachedNow)
		},
	})
}

// networkZone is what network nw's name server answers from, read afresh
// for every query (a few small files per container on the host: about
// XXX µs with 100 containers): the records of the asker's networks, nw
// and the others it is attached to, as docker's resolver sees all of a
// container's networks; and where the asker's other queries go, its --dns
// servers or the host's nameservers (loopback ones too: the server runs
// in the host's namespace). An asker from outside nw's subnets gets the
// names alone: the server is nobody else's recursive resolver.
func networkZone(m *network.Manager, nw *network.Network) dns.Zone {
	return dns.ZoneFunc(func(asker netip.Addr) (dns.View, error) {
		as, err := m.AttachmentsOf(nw.Name)
		if err != nil {
			return dns.View{}, err
		}
		as = slices.DeleteFunc(as, func(a *network.Attachment) bool { return !attachedNow(a) })
		var me *network.Attachment
		for _, a := range as {
			if slices.ContainsFunc(a.Addresses, func(p netip.Prefix) bool { return p.Addr() == asker }) {
				me = a
				break
			}
		}
		var v dns.View
		add := func(as []*network.Attachment) {
			for _, a := range as {
				if len(a.Aliases) == 0 {
					continue
				}
				r := dns.Record{Names: a.Aliases}
				for _, p := range a.Addresses {
					r.Addrs = append(r.Addrs, p.Addr())
				}
				v.Records = append(v.Records, r)
			}
		}
		add(as)
		if me != nil {
			mine, _ := m.Attachments(me.ContainerID)
			for _, other := range mine {
				if other.Network == nw.Name || other.Network == network.DefaultNetwork {
					continue
				}
				if oas, err := m.AttachmentsOf(other.Network); err == nil {
					add(slices.DeleteFunc(oas, func(a *network.Attachment) bool { return !attachedNow(a) }))
				}
			}
		}
		switch {
		case me != nil && len(me.DNS) > 0:
			v.Upstream = me.DNS
		case me != nil || slices.ContainsFunc(nw.Subnets, func(s network.Subnet) bool { return s.Subnet.Contains(asker) }):
			host, _ := os.ReadFile("/etc/resolv.conf")
			_, v.Upstream, _, _ = network.ResolvConf(host, network.DNSOptions{Resolver: gateway(nw)})
		}
		return v, nil
	})
}

// attachedNow says whether attachment a's container still has its network
// namespace. A record outlives its container until something detaches or
// reclaims it (a container removed while hull-shim supervised it, a
// monitor killed: the next start's Reclaim): its names must not resolve
// meanwhile, nor keep the network's server up.
func attachedNow(a *network.Attachment) bool {
	if a.NetNSInode == 0 || a.NetNSPath == "" {
		return true
	}
	var st unix.Stat_t
	return unix.Stat(a.NetNSPath, &st) == nil && st.Ino == a.NetNSInode
}
