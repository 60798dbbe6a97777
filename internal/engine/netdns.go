package engine

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

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
// the gateway of its first user-defined network, invalid if it has none,
// if that network is not a bridge (a third-party plugin's gateway need
// not be the host's), or if hull cannot start servers (no HullCommand).
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
	nw, err := e.inspectNetwork(ctx, m, n.Networks[i].Network)
	if err != nil || nw.Driver != "bridge" || nw.Imported() { // a CRI pod network: kubelet names the servers
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
	z := newAttachmentCache(m, cfg)
	lastLoad := -1
	return dns.Run(dns.RunOptions{
		Dir: dnsDir(cfg), Network: name, Zone: networkZone(z, nw),
		// Idle: no container now, and none came and went since the last
		// look (the records changed): short containers run one after
		// the other keep the server.
		// The run root gone (removed by hand, a test's), nothing is
		// left to serve either.
		Idle: func() bool {
			as, loads, err := z.of(name)
			if errors.Is(err, os.ErrNotExist) {
				return true
			}
			busy := loads != lastLoad && lastLoad != -1
			lastLoad = loads
			return err == nil && len(as) == 0 && !busy
		},
	})
}

// attachmentCache keeps the attachment records a name server read until
// inotify says they changed (dns.Changes). BenchmarkNetworkZone, 100
// containers on the host, 50 on the network, on the loaded 2-processor
// test host: reading every record for a query costs 10-18 ms, a query's
// view from the cache 0.15-0.23 ms of wall time (about 40 µs of CPU, most
// of it reading the host's resolv.conf). Without inotify (out of
// watches) every query reads the records.
type attachmentCache struct {
	m       *network.Manager
	dir     string
	changes *dns.Changes

	mu    sync.Mutex
	byNet map[string][]*network.Attachment // nil: to read
	byID  map[string][]*network.Attachment
	loads int // how many times the records were read
}

func newAttachmentCache(m *network.Manager, cfg config.Config) *attachmentCache {
	z := &attachmentCache{m: m, dir: filepath.Join(cfg.RunRoot, "networks", "attachments")}
	if c, err := dns.WatchChanges(z.dir); err == nil {
		z.changes = c
	}
	return z
}

// load reads the records again if they may have changed.
func (z *attachmentCache) load() error {
	if z.changes == nil || z.changes.Changed() {
		z.byNet = nil
	}
	if z.byNet != nil {
		return nil
	}
	entries, err := os.ReadDir(z.dir)
	if err != nil {
		return err
	}
	byNet, byID := map[string][]*network.Attachment{}, map[string][]*network.Attachment{}
	for _, e := range entries {
		as, _ := z.m.Attachments(e.Name())
		for _, a := range as {
			if !a.Released {
				byNet[a.Network] = append(byNet[a.Network], a)
				byID[a.ContainerID] = append(byID[a.ContainerID], a)
			}
		}
	}
	z.byNet, z.byID = byNet, byID
	z.loads++
	return nil
}

// of returns the attachments to network whose containers are alive, and
// how many times the records have been read (it grows when they change).
func (z *attachmentCache) of(network string) ([]*network.Attachment, int, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := z.load(); err != nil {
		return nil, 0, err
	}
	return z.live(z.byNet[network]), z.loads, nil
}

// live returns those of as whose containers are alive.
func (z *attachmentCache) live(as []*network.Attachment) []*network.Attachment {
	return slices.DeleteFunc(slices.Clone(as), func(a *network.Attachment) bool { return !alive(a) })
}

// alive says whether attachment a's network namespace is still there. A
// record outlives its container until something detaches or reclaims it
// (a container removed while hull-shim supervised it, a monitor killed:
// the next start's Reclaim): its names must not resolve meanwhile, nor
// keep the network's server up. It costs a stat (the kernel reuses a gone
// namespace's inode number, so "gone" cannot be remembered), so a query
// asks it of the records it matches only.
func alive(a *network.Attachment) bool {
	if a.NetNSInode == 0 || a.NetNSPath == "" {
		return true
	}
	var st unix.Stat_t
	return unix.Stat(a.NetNSPath, &st) == nil && st.Ino == a.NetNSInode
}

// view returns the attachments to network nw and, if asker is the
// address of one of them, those of the asker's other networks (whether
// their containers are alive is for the query to ask, see alive); and
// the asker's own attachment to nw (nil for a stranger).
func (z *attachmentCache) view(nw string, asker netip.Addr) (as []*network.Attachment, me *network.Attachment, err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := z.load(); err != nil {
		return nil, nil, err
	}
	as = slices.Clone(z.byNet[nw])
	for _, a := range as {
		if slices.ContainsFunc(a.Addresses, func(p netip.Prefix) bool { return p.Addr() == asker }) {
			me = a
			break
		}
	}
	if me != nil {
		for _, other := range z.byID[me.ContainerID] {
			if other.Network != nw && other.Network != network.DefaultNetwork {
				as = append(as, z.byNet[other.Network]...)
			}
		}
	}
	return as, me, nil
}

// networkZone is what network nw's name server answers from (z's records,
// as fresh as inotify makes them): the names of the asker's networks, nw
// and the others it is attached to, as docker's resolver sees all of a
// container's networks, each also as NAME.NETWORK (docker's too); and where the asker's other queries go, its --dns
// servers or the host's nameservers (loopback ones too: the server runs
// in the host's namespace). An asker from outside nw's subnets gets the
// names alone: the server is nobody else's recursive resolver.
func networkZone(z *attachmentCache, nw *network.Network) dns.Zone {
	return dns.ZoneFunc(func(asker netip.Addr) (dns.View, error) {
		as, me, err := z.view(nw.Name, asker)
		if err != nil {
			return dns.View{}, err
		}
		var v dns.View
		for _, a := range as {
			if len(a.Aliases) == 0 {
				continue
			}
			// docker's: each name also qualified by the network's.
			r := dns.Record{Names: slices.Clone(a.Aliases), Alive: func() bool { return alive(a) }}
			for _, n := range a.Aliases {
				r.Names = append(r.Names, n+"."+a.Network)
			}
			for _, p := range a.Addresses {
				r.Addrs = append(r.Addrs, p.Addr())
			}
			v.Records = append(v.Records, r)
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
