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

	"github.com/containerd/errdefs"

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
	n := e.cfg.Network
	m, err := network.Open(e.cfg.Root, e.cfg.RunRoot, network.Options{
		PluginDirs: n.PluginDirs, UsePlugins: n.UsePlugins, DefaultBridge: n.DefaultBridge, DefaultSubnet: n.DefaultSubnet,
	})
	if err != nil {
		return nil, err
	}
	e.net = m
	return m, nil
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

// resolveNetwork checks and completes a new container's networking: the
// mode's networks exist, the options fit the mode (docker's conflicts),
// -P's ports are added. eff is the container's effective config (its
// exposed ports).
func (e *Engine) resolveNetwork(ctx context.Context, cfg *Config, eff *spec.Effective) error {
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
	seen := map[string]bool{}
	for _, ep := range n.Networks {
		if seen[ep.Network] {
			return invalid("--network %s is given twice", ep.Network)
		}
		seen[ep.Network] = true
		nw, err := m.Inspect(ctx, ep.Network)
		if err != nil {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found (hull network ls lists them; hull network create %s makes it)", ep.Network, ep.Network))
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
	return nil
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
	nw, err := m.Inspect(ctx, n.Networks[0].Network)
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
// from the host's, less loopback nameservers, or --dns's.
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
	resolv, _, warnings, err := network.ResolvConf(host, network.DNSOptions{Servers: n.DNS, Search: n.DNSSearch, Options: n.DNSOptions})
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
// published on the first; then its /etc/hosts gets its addresses. It runs
// in the container's monitor, for every run. On error nothing of it is
// left.
func (e *Engine) attachNetworks(ctx context.Context, c *Container, pid int) error {
	n := c.Config.Net
	if len(n.Networks) == 0 {
		return nil
	}
	m, err := e.networks()
	if err != nil {
		return err
	}
	nsPath := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	var attached []string
	var addrs []netip.Addr
	for i, ep := range n.Networks {
		r := network.AttachRequest{
			ContainerID: c.ID, NetNSPath: nsPath, Network: ep.Network, IfName: "eth" + strconv.Itoa(i),
			IP: ep.IP, MAC: ep.MAC, Aliases: dnsNames(c, ep),
		}
		if i == 0 {
			r.Ports = n.Ports
		}
		a, err := m.Attach(ctx, r)
		if err != nil {
			for _, name := range attached {
				m.Detach(ctx, c.ID, name, nsPath)
			}
			return err
		}
		attached = append(attached, a.Network)
		for _, p := range a.Addresses {
			addrs = append(addrs, p.Addr())
		}
	}
	hostname, _ := spec.Hostname(c.Config.Spec)
	hosts, _, err := e.networkFiles(ctx, hostname, c.Config.Spec.Domainname, n, addrs)
	if err == nil {
		// In place: the file is bind-mounted into the container already.
		err = os.WriteFile(e.persistDir(c.ID)+"/hosts", hosts, 0o644)
	}
	if err != nil {
		for _, name := range attached {
			m.Detach(ctx, c.ID, name, nsPath)
		}
		return fmt.Errorf("container %s: /etc/hosts: %w", c.Name, err)
	}
	return nil
}

// dnsNames are the names container c answers to on a network: on a
// user-defined one its name, its short ID and its aliases (docker's
// DNSNames); on the default network none (docker resolves no names there).
func dnsNames(c *Container, ep Endpoint) []string {
	if ep.Network == NetworkBridge {
		return nil
	}
	return append([]string{c.Name, shortID(c.ID)}, ep.Aliases...)
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

// releaseNetworks detaches container c where its monitor did not: a
// command that finds the monitor dead and records the exit in its place,
// a removal that ended the monitor (rm -f) or found it dead. The ports
// and addresses go back at once, as on an exit the monitor recorded. A
// failure is only warned about: the next start's reclaim retries.
func (e *Engine) releaseNetworks(ctx context.Context, c *Container) {
	if len(c.Config.Net.Networks) == 0 {
		return
	}
	if err := e.detachNetworks(context.WithoutCancel(ctx), c); err != nil {
		e.warn("container %s: %v", c.Name, err)
	}
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
		return live(id)
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
