package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"hull/internal/config"
	"hull/internal/network"
	"hull/internal/spec"
)

// A container's networking, as docker's: a network mode (Spec.Network),
// the networks it joins with an interface each, published ports and name
// resolution. Create checks and records it (resolveNetwork); the
// container's monitor attaches it after the container's namespaces exist
// and before its process starts (attachNetworks), and detaches it when the
// process has exited (detachNetworks); Reclaim undoes what a killed
// monitor left (reclaimNetworks).

// The network modes of --network that are not networks.
const (
	NetworkNone = "none"
	NetworkHost = "host"
	// NetworkBridge is the default network's name and the default mode.
	NetworkBridge = network.DefaultNetwork
)

// PortMapping is one published port (-p): network.PortMapping.
type PortMapping = network.PortMapping

// ParsePorts parses docker's -p values.
func ParsePorts(values []string) ([]PortMapping, error) {
	p, err := network.ParsePorts(values)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return p, nil
}

// NetConfig is a container's networking besides its mode.
type NetConfig struct {
	// Networks are the networks the container joins, in order: its
	// interfaces eth0, eth1, ... Empty with the modes none, host and
	// container:C.
	Networks []Endpoint `json:"Networks,omitempty"`
	// Ports are -p's; PublishAll (-P) adds the exposed ports at create,
	// on random host ports. They are published on the first network.
	Ports      []PortMapping `json:"Ports,omitempty"`
	PublishAll bool          `json:"PublishAll,omitempty"`
	// DNS, DNSSearch and DNSOptions are --dns, --dns-search and
	// --dns-option; ExtraHosts are --add-host NAME:IP.
	DNS        []string `json:"Dns,omitempty"`
	DNSSearch  []string `json:"DnsSearch,omitempty"`
	DNSOptions []string `json:"DnsOptions,omitempty"`
	ExtraHosts []string `json:"ExtraHosts,omitempty"`
}

// Endpoint is the container's interface on one network: --network NAME
// with the --ip, --ip6, --mac-address and --network-alias that go with
// it.
type Endpoint struct {
	Network string       `json:"Network"`
	IP      []netip.Addr `json:"IP,omitempty"`
	MAC     string       `json:"MacAddress,omitempty"`
	Aliases []string     `json:"Aliases,omitempty"`
}

// networks returns the engine's network manager, opened on first use:
// a command that does not touch networking does not pay for it.
func (e *Engine) networks() (*network.Manager, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.net != nil {
		return e.net, nil
	}
	m, err := openNetworks(e.cfg)
	if err != nil {
		return nil, err
	}
	m.DeferReleasedVeths(e.longLived)
	e.net = m
	return m, nil
}

// openNetworks opens the network manager of cfg's roots.
func openNetworks(cfg config.Config) (*network.Manager, error) {
	n := cfg.Network
	return network.Open(cfg.Root, cfg.RunRoot, network.Options{
		PluginDirs: n.PluginDirs, UsePlugins: n.UsePlugins, DefaultBridge: n.DefaultBridge, DefaultSubnet: n.DefaultSubnet,
	})
}

// inspectNetwork is m.Inspect(name), remembered while the network's
// conflist is unchanged (its size and modification time): a create reads
// its networks three times (checks, /etc files, the resolver), and a
// conflist's first read and parse is most of that.
func (e *Engine) inspectNetwork(ctx context.Context, m *network.Manager, name string) (*network.Network, error) {
	e.mu.Lock()
	c, ok := e.netSeen[name]
	e.mu.Unlock()
	if ok {
		if st, err := os.Stat(c.nw.Path); err == nil && st.ModTime().Equal(c.mod) && st.Size() == c.size {
			return c.nw, nil
		}
	}
	nw, err := m.Inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(nw.Path); err == nil {
		e.mu.Lock()
		if e.netSeen == nil {
			e.netSeen = map[string]seenNetwork{}
		}
		e.netSeen[name] = seenNetwork{nw: nw, mod: st.ModTime(), size: st.Size()}
		e.mu.Unlock()
	}
	return nw, nil
}

// seenNetwork is a network read by inspectNetwork, with its conflist's
// state then.
type seenNetwork struct {
	nw   *network.Network
	mod  time.Time
	size int64
}

// netMode is a container's network mode as docker names it: bridge (the
// default), none, host, container:C or a network's name.
func netMode(o spec.Options) string {
	if o.Network == "" {
		return NetworkBridge
	}
	return o.Network
}

// joinsNetworks says whether the mode gives the container a network
// namespace of its own connected to networks (bridge, a network's name).
func joinsNetworks(mode string) bool {
	switch {
	case mode == NetworkNone, mode == NetworkHost, strings.HasPrefix(mode, "ns:"), spec.ContainerMode(mode) != "":
		return false
	}
	return true
}

// resolveNetwork checks and completes a new container's networking before
// anything of it is recorded, as docker refuses such a create outright:
// the mode's networks exist, the options fit the mode (docker's
// conflicts).
func (e *Engine) resolveNetwork(ctx context.Context, cfg *Config) error {
	o, n := &cfg.Spec, &cfg.Net
	mode := netMode(*o)
	invalid := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
	}
	if !joinsNetworks(mode) {
		if len(n.Networks) > 0 {
			return invalid("--network %s cannot be combined with other networks (a container in that mode joins none)", mode)
		}
		switch {
		case len(n.Ports) > 0 || n.PublishAll:
			if mode == NetworkHost {
				e.warn("published ports are discarded when using host network mode")
				n.Ports, n.PublishAll = nil, false
			} else {
				return invalid("conflicting options: port publishing and the container type network mode (%s)", mode)
			}
		}
		if spec.ContainerMode(mode) != "" {
			switch {
			case o.Hostname != "":
				return invalid("conflicting options: hostname and the network mode (%s)", mode)
			case len(n.DNS) > 0 || len(n.DNSSearch) > 0 || len(n.DNSOptions) > 0:
				return invalid("conflicting options: dns and the network mode (%s)", mode)
			case len(n.ExtraHosts) > 0:
				return invalid("conflicting options: custom host-to-IP mapping and the network mode (%s)", mode)
			}
		}
		return nil
	}
	if o.Network == "" {
		o.Network = NetworkBridge
	}
	if len(n.Networks) == 0 {
		n.Networks = []Endpoint{{Network: mode}}
	}
	m, err := e.networks()
	if err != nil {
		return err
	}
	// What killed monitors left goes back to the pools before this
	// container's addresses and ports are handed out. (Its own leftovers
	// from an earlier run, Attach undoes.)
	if err := e.reclaimNetworks(ctx); err != nil {
		e.warn("reclaim networks: %v", err)
	}
	seen := map[string]bool{}
	for _, ep := range n.Networks {
		if seen[ep.Network] {
			return invalid("--network %s is given twice", ep.Network)
		}
		seen[ep.Network] = true
		nw, err := e.inspectNetwork(ctx, m, ep.Network)
		if errors.Is(err, network.ErrNotFound) {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found (hull network ls lists them; hull network create %s makes it)", ep.Network, ep.Network))
		}
		if err != nil {
			return err
		}
		if len(ep.Aliases) > 0 && nw.Name == NetworkBridge {
			return invalid("network-scoped aliases are only supported for user-defined networks (not %s)", nw.Name)
		}
		for _, ip := range ep.IP {
			if !slices.ContainsFunc(nw.Subnets, func(s network.Subnet) bool { return s.Subnet.Contains(ip) }) {
				return invalid("--ip %s: the address is not in a subnet of network %s", ip, nw.Name)
			}
		}
	}
	return nil
}

// publishExposed adds -P's ports: every port the container exposes (its
// image's and --expose's, in eff) not published already, on a random
// host port.
func publishExposed(n *NetConfig, eff *spec.Effective) {
	if n.PublishAll && eff != nil {
		for port := range eff.ExposedPorts {
			p, proto, _ := strings.Cut(port, "/")
			num, err := strconv.ParseUint(p, 10, 16)
			if err != nil || num == 0 {
				continue
			}
			if proto == "" {
				proto = "tcp"
			}
			if slices.ContainsFunc(n.Ports, func(m PortMapping) bool { return m.ContainerPort == uint16(num) && m.Protocol == proto }) {
				continue
			}
			n.Ports = append(n.Ports, PortMapping{ContainerPort: uint16(num), Protocol: proto})
		}
		slices.SortFunc(n.Ports, func(a, b PortMapping) int {
			if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
				return c
			}
			return int(a.ContainerPort) - int(b.ContainerPort)
		})
	}
}

// networkOf returns the first network of a container that joins
// networks, for its gateway (host-gateway, the resolver).
func (e *Engine) networkOf(ctx context.Context, n NetConfig) *network.Network {
	if len(n.Networks) == 0 {
		return nil
	}
	m, err := e.networks()
	if err != nil {
		return nil
	}
	nw, err := e.inspectNetwork(ctx, m, n.Networks[0].Network)
	if err != nil {
		return nil
	}
	return nw
}

// gateway is a network's first IPv4 gateway (invalid if none).
func gateway(nw *network.Network) netip.Addr {
	if nw == nil {
		return netip.Addr{}
	}
	for _, s := range nw.Subnets {
		if s.Gateway.Is4() {
			return s.Gateway
		}
	}
	return netip.Addr{}
}

// networkFiles returns the /etc/hosts and /etc/resolv.conf of a container
// that joins networks (docker's rules): hosts with the loopback names, the
// --add-host entries and the container's own addresses (none yet at
// create: attachNetworks writes the file again with them); resolv.conf
// from the host's, less loopback nameservers, or --dns's; on a
// user-defined network its name server alone (see netdns.go).
func (e *Engine) networkFiles(ctx context.Context, hostname, domainname string, n NetConfig, addrs []netip.Addr) (hosts, resolv []byte, err error) {
	gw := gateway(e.networkOf(ctx, n))
	hosts, err = network.Hosts(network.HostsOptions{
		Hostname: hostname, Domainname: domainname, Addresses: addrs, ExtraHosts: n.ExtraHosts, HostGateway: gw,
	})
	if err != nil {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if addrs != nil {
		return hosts, nil, nil
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("read the host's /etc/resolv.conf: %w", err)
	}
	_, resolver := e.resolverOf(ctx, n)
	resolv, _, warnings, err := network.ResolvConf(host, network.DNSOptions{Servers: n.DNS, Search: n.DNSSearch, Options: n.DNSOptions, Resolver: resolver})
	if err != nil {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	for _, w := range warnings {
		e.warn("%s", w)
	}
	return hosts, resolv, nil
}

// attachNetworks connects container c, whose process (its first, not yet
// started) is pid, to its networks: an interface on each, its ports
// published on the first; then its /etc/hosts gets its addresses, and the
// name server of its first user-defined network is started if none runs.
// It runs in the container's monitor, for every run. On error nothing of
// it is left.
func (e *Engine) attachNetworks(ctx context.Context, c *Container, pid int) error {
	n := c.Config.Net
	if len(n.Networks) == 0 {
		return nil
	}
	nsPath := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	addrs, err := e.attachTo(ctx, c.ID, nsPath, n, func(ep Endpoint) []string { return dnsNames(c.Name, c.ID, ep) })
	if err != nil {
		return err
	}
	hostname, _ := spec.Hostname(c.Config.Spec)
	hosts, _, err := e.networkFiles(ctx, hostname, c.Config.Spec.Domainname, n, addrs)
	if err == nil {
		// In place: the file is bind-mounted into the container already.
		err = os.WriteFile(e.persistDir(c.ID)+"/hosts", hosts, 0o644)
	}
	if err != nil {
		e.detachNetworks(ctx, c)
		return fmt.Errorf("container %s: /etc/hosts: %w", c.Name, err)
	}
	if name, addr := e.resolverOf(ctx, n); addr.IsValid() {
		if err := e.ensureDNS(name, addr); err != nil {
			e.detachNetworks(ctx, c)
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
	}
	return nil
}

// attachTo connects the network namespace at nsPath, of container (or
// pod) id, to the networks of n: an interface on each (eth0, eth1, ...),
// the ports published on the first, names(endpoint) its DNS names there.
// It returns the addresses it got. On error nothing of it is left.
func (e *Engine) attachTo(ctx context.Context, id, nsPath string, n NetConfig, names func(Endpoint) []string) ([]netip.Addr, error) {
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	var attached []string
	var addrs []netip.Addr
	for i, ep := range n.Networks {
		r := network.AttachRequest{
			ContainerID: id, NetNSPath: nsPath, Network: ep.Network, IfName: "eth" + strconv.Itoa(i),
			IP: ep.IP, MAC: ep.MAC, Aliases: names(ep), DNS: n.DNS,
		}
		if i == 0 {
			r.Ports = n.Ports
		}
		a, err := m.Attach(ctx, r)
		if err != nil {
			for _, name := range attached {
				m.Detach(ctx, id, name, nsPath)
			}
			return nil, err
		}
		attached = append(attached, a.Network)
		for _, p := range a.Addresses {
			addrs = append(addrs, p.Addr())
		}
	}
	return addrs, nil
}

// dnsNames are the names a container (or pod) answers to on a network:
// on a user-defined one its name, its short ID and its aliases (docker's
// DNSNames); on the default network none (docker resolves no names there).
func dnsNames(name, id string, ep Endpoint) []string {
	if ep.Network == NetworkBridge {
		return nil
	}
	return append([]string{name, shortID(id)}, ep.Aliases...)
}

// detachNetworks takes container c off its networks once its process has
// exited: addresses, ports and rules are freed at once. It is idempotent
// (a container not attached has nothing to undo).
func (e *Engine) detachNetworks(ctx context.Context, c *Container) error {
	m, err := e.networks()
	if err != nil {
		return err
	}
	as, err := m.Attachments(c.ID)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range as {
		errs = append(errs, m.Detach(ctx, c.ID, a.Network, ""))
	}
	return errors.Join(errs...)
}

// reclaimNetworks undoes the attachments of containers no monitor
// supervises any more (a monitor killed, a reboot): their addresses and
// host ports go back to the pools before new ones are handed out.
func (e *Engine) reclaimNetworks(ctx context.Context) error {
	m, err := e.networks()
	if err != nil {
		return err
	}
	var live func(string) bool
	return m.Reclaim(ctx, func(id string) bool {
		if live == nil {
			live = e.liveContainers(ctx)
		}
		if live(id) {
			return true
		}
		if !m.InUse(id) {
			return false
		}
		// Its namespace lives. A container whose monitor died still runs
		// unsupervised: reconcile stops it (and detaches it).
		if c, err := e.lookup(ctx, e.db, id); err == nil && c.active() {
			e.reconcile(ctx, c)
		}
		return m.InUse(id)
	})
}

// liveContainers reports which containers need their networks: running,
// paused or restarting with a live monitor, or being started (claimed, no
// monitor recorded yet). Read in one query, on the first record Reclaim
// finds; if the records cannot be read, nobody is taken for dead.
func (e *Engine) liveContainers(ctx context.Context) func(string) bool {
	everyone := func(string) bool { return true }
	rows, err := e.db.QueryContext(ctx, `SELECT id, state, monitor_pid, monitor_start FROM containers WHERE state IN (?, ?, ?, ?)`,
		StateRunning, StatePaused, StateRestarting, StateRemoving)
	if err != nil {
		return everyone
	}
	defer rows.Close()
	live := map[string]bool{}
	for rows.Next() {
		var c Container
		if rows.Scan(&c.ID, &c.State, &c.MonitorPid, &c.MonitorStart) != nil {
			return everyone
		}
		live[c.ID] = c.monitorAlive() || c.MonitorPid == 0 && c.State != StateRemoving
	}
	if rows.Err() != nil {
		return everyone
	}
	return func(id string) bool { return live[id] }
}
