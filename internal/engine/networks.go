package engine

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"hull/internal/network"
	"hull/internal/spec"
)

// The network commands (docker's `network create|ls|inspect|rm|prune|
// connect|disconnect`) over internal/network. A network is the manager's
// conflist; the containers on it are of two kinds: those configured on it
// (Config.Net.Networks, running or not: they need it at their next start,
// so it cannot be removed under them) and those attached now (the
// attachment records of running containers: inspect's Containers).
// Besides the networks there are docker's two modes that `network ls`
// lists as networks, host and none; they exist always and cannot be
// removed, connected to or created.
//
// Every command that counts users first reclaims what killed monitors
// left (reclaimNetworks), so a container that is gone never holds a
// network.

// Network is one network as docker's `network inspect` shows it.
type Network struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    time.Time                   `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv4 bool                        `json:"EnableIPv4"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       NetworkIPAM                 `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigFrom struct{ Network string }    `json:"ConfigFrom"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]NetworkContainer `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`

	// Builtin says it is one of docker's pre-defined networks: the
	// default network, host or none.
	Builtin bool `json:"-"`
	// Users are the names of the containers configured on it, running
	// or not (network rm refuses while there are any; prune spares it).
	Users []string `json:"-"`
}

// NetworkIPAM is the address configuration of a network, docker's.
type NetworkIPAM struct {
	Driver  string              `json:"Driver"`
	Options map[string]string   `json:"Options"`
	Config  []NetworkIPAMConfig `json:"Config"`
}

// NetworkIPAMConfig is one subnet of a network.
type NetworkIPAMConfig struct {
	Subnet  string `json:"Subnet"`
	Gateway string `json:"Gateway,omitempty"`
	IPRange string `json:"IPRange,omitempty"`
}

// NetworkContainer is a running container's interface on a network, as
// docker's network inspect lists it.
type NetworkContainer struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// The option keys of `network create -o` hull implements (docker's
// bridge driver's).
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// NetworkCreateOptions are docker's `network create` flags.
type NetworkCreateOptions struct {
	Name string
	// Driver is "bridge" (or empty): the only one hull has.
	Driver string
	// Subnets, Gateways and IPRanges are --subnet, --gateway and
	// --ip-range: at most one IPv4 and one IPv6 subnet; a gateway and a
	// range go with the subnet of their family.
	Subnets, Gateways, IPRanges []string
	Internal                    bool
	IPv6                        bool
	Labels                      map[string]string
	// Options are -o's: OptBridgeName and OptMasquerade.
	Options map[string]string
}

// builtinModes are docker's network modes that `network ls` lists as
// networks, with their drivers.
var builtinModes = []struct{ name, driver string }{{NetworkHost, "host"}, {NetworkNone, "null"}}

// builtinID is the ID of the host or none network: stable, docker's
// shape.
func builtinID(name string) string {
	sum := sha256.Sum256([]byte("hull network " + name))
	return hex.EncodeToString(sum[:])
}

// CreateNetwork makes a bridge network, as docker's network create: the
// subnet is checked against every other network's and the host's routes;
// nothing is set up on the host until a container joins it.
func (e *Engine) CreateNetwork(ctx context.Context, o NetworkCreateOptions) (*Network, error) {
	invalid := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
	}
	switch o.Driver {
	case "", "bridge":
	case "host", "null":
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("only one instance of %q network is allowed", o.Driver))
	default:
		return nil, invalid("network driver %q is not supported: hull has only the bridge driver (--driver bridge)", o.Driver)
	}
	if o.Name == NetworkBridge || o.Name == NetworkHost || o.Name == NetworkNone {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", o.Name))
	}
	co := network.CreateOptions{Name: o.Name, Internal: o.Internal, Labels: o.Labels, IPv6: o.IPv6}
	for k, v := range o.Options {
		switch k {
		case OptBridgeName:
			co.BridgeName = v
		case OptMasquerade:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, invalid("-o %s=%s: use true or false", k, v)
			}
			co.NoMasquerade = !b
		default:
			return nil, invalid("network option %q is not supported (hull knows %s and %s)", k, OptBridgeName, OptMasquerade)
		}
	}
	var v4, v6 *netip.Prefix
	for _, s := range o.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, invalid("invalid subnet %s: use a CIDR such as 10.200.1.0/24", s)
		}
		slot := &v4
		if p.Addr().Is6() {
			slot = &v6
		}
		if *slot != nil {
			return nil, invalid("--subnet %s: hull takes one IPv4 and one IPv6 subnet per network", s)
		}
		*slot = &p
	}
	if v4 != nil {
		co.Subnet = v4.String()
	}
	if v6 != nil {
		if !o.IPv6 {
			return nil, invalid("--subnet %s is an IPv6 subnet: add --ipv6", v6)
		}
		co.Subnet6 = v6.String()
	}
	for _, g := range o.Gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, invalid("invalid gateway %s: use an address of the subnet", g)
		}
		switch {
		case a.Is4() && v4 != nil && co.Gateway == "":
			co.Gateway = g
		case a.Is6() && v6 != nil && co.Gateway6 == "":
			co.Gateway6 = g
		default:
			return nil, invalid("--gateway %s: every ip-range or gateway must have a corresponding subnet (one gateway per subnet)", g)
		}
	}
	for _, r := range o.IPRanges {
		p, err := netip.ParsePrefix(r)
		switch {
		case err != nil:
			return nil, invalid("invalid ip-range %s: use a CIDR inside the subnet", r)
		case p.Addr().Is6():
			return nil, invalid("--ip-range %s: hull takes an IPv4 ip-range only", r)
		case v4 == nil || co.IPRange != "":
			return nil, invalid("--ip-range %s: every ip-range or gateway must have a corresponding subnet (one ip-range per subnet)", r)
		}
		co.IPRange = r
	}
	for k := range o.Labels {
		if k == "" {
			return nil, invalid("--label: a label needs a key (key=value)")
		}
	}
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	if _, err := m.Inspect(ctx, NetworkBridge); err != nil { // the default network first, as docker's
		return nil, err
	}
	n, err := m.Create(ctx, co)
	if errors.Is(err, os.ErrExist) {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", o.Name))
	}
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	logEvent(ctx, e.db, "network", "create", n.ID, n.Name, map[string]string{"name": n.Name, "type": "bridge"})
	return e.networkOfManager(n, nil, nil), nil
}

// networkOfManager is n in docker's shape, with the containers attached
// to it now and those configured on it.
func (e *Engine) networkOfManager(n *network.Network, attached map[string]NetworkContainer, users []string) *Network {
	out := &Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: true,
		EnableIPv6: n.IPv6, Internal: n.Internal, Builtin: n.Name == NetworkBridge,
		IPAM:       NetworkIPAM{Driver: "default", Options: map[string]string{}, Config: []NetworkIPAMConfig{}},
		Containers: attached, Options: map[string]string{}, Labels: n.Labels, Users: users,
	}
	for _, s := range n.Subnets {
		c := NetworkIPAMConfig{Subnet: s.Subnet.String(), Gateway: addrString(s.Gateway)}
		if s.IPRange.IsValid() {
			c.IPRange = s.IPRange.String()
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	if n.Bridge != "" {
		out.Options[OptBridgeName] = n.Bridge
	}
	if !n.Masquerade && !n.Internal {
		out.Options[OptMasquerade] = "false"
	}
	if out.Containers == nil {
		out.Containers = map[string]NetworkContainer{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	return out
}

// builtinNetwork is the host or none mode as a network, with the running
// containers in that mode.
func builtinNetwork(name, driver string, attached map[string]NetworkContainer, users []string) *Network {
	if attached == nil {
		attached = map[string]NetworkContainer{}
	}
	return &Network{
		Name: name, ID: builtinID(name), Scope: "local", Driver: driver, EnableIPv4: true, Builtin: true,
		IPAM:       NetworkIPAM{Driver: "default", Options: map[string]string{}, Config: []NetworkIPAMConfig{}},
		Containers: attached, Options: map[string]string{}, Labels: map[string]string{}, Users: users,
	}
}

// netUsage is who uses which network: the containers configured on each
// (by network name, container names) and the running ones attached now
// (by network, by container ID). The host and none modes count their
// containers as theirs.
type netUsage struct {
	users    map[string][]string
	attached map[string]map[string]NetworkContainer
}

// networkUsage reads every container's networks and the attachments to
// nets.
func (e *Engine) networkUsage(ctx context.Context, m *network.Manager, nets []*network.Network) (*netUsage, error) {
	u := &netUsage{users: map[string][]string{}, attached: map[string]map[string]NetworkContainer{}}
	rows, err := e.db.QueryContext(ctx, `SELECT id, name, state, config FROM containers`)
	if err != nil {
		return nil, fmt.Errorf("read containers: %w", err)
	}
	defer rows.Close()
	names := map[string]string{}
	type row struct {
		id, name, state string
		cfg             Config
	}
	var modeRows []row
	for rows.Next() {
		var r row
		var cfg string
		if err := rows.Scan(&r.id, &r.name, &r.state, &cfg); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(cfg), &r.cfg); err != nil {
			continue
		}
		names[r.id] = r.name
		for _, ep := range r.cfg.Net.Networks {
			u.users[ep.Network] = append(u.users[ep.Network], r.name)
		}
		if mode := netMode(r.cfg.Spec); mode == NetworkHost || mode == NetworkNone {
			u.users[mode] = append(u.users[mode], r.name)
			if r.state == StateRunning || r.state == StatePaused {
				modeRows = append(modeRows, r)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Pods use their networks as containers do (their attachments are
	// under the pod's ID).
	if pods, err := e.ListPods(ctx); err == nil {
		for _, p := range pods {
			names[p.ID] = p.Name
			for _, ep := range p.Config.Net.Networks {
				u.users[ep.Network] = append(u.users[ep.Network], "pod "+p.Name)
			}
		}
	}
	for _, r := range modeRows {
		mode := netMode(r.cfg.Spec)
		if u.attached[mode] == nil {
			u.attached[mode] = map[string]NetworkContainer{}
		}
		u.attached[mode][r.id] = NetworkContainer{Name: r.name, EndpointID: endpointID(r.id, mode)}
	}
	for _, n := range nets {
		as, err := m.AttachmentsOf(n.Name)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			name, ok := names[a.ContainerID]
			if !ok {
				continue // a record of a container being removed
			}
			nc := NetworkContainer{Name: name, EndpointID: endpointID(a.ContainerID, n.Name), MacAddress: a.MAC}
			if p, _ := a.IPv4(); p.IsValid() {
				nc.IPv4Address = p.String()
			}
			if p, _ := a.IPv6(); p.IsValid() {
				nc.IPv6Address = p.String()
			}
			if u.attached[n.Name] == nil {
				u.attached[n.Name] = map[string]NetworkContainer{}
			}
			u.attached[n.Name][a.ContainerID] = nc
		}
	}
	return u, nil
}

// Networks returns every network, docker's pre-defined ones included,
// by name, each with its containers.
func (e *Engine) Networks(ctx context.Context) ([]*Network, error) {
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	if err := e.reclaimNetworks(ctx); err != nil {
		e.warn("reclaim networks: %v", err)
	}
	nets, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	u, err := e.networkUsage(ctx, m, nets)
	if err != nil {
		return nil, err
	}
	var out []*Network
	var since time.Time // the default network's: when networking began
	for _, n := range nets {
		out = append(out, e.networkOfManager(n, u.attached[n.Name], u.users[n.Name]))
		if n.Name == NetworkBridge {
			since = n.Created
		}
	}
	for _, b := range builtinModes {
		bn := builtinNetwork(b.name, b.driver, u.attached[b.name], u.users[b.name])
		bn.Created = since
		out = append(out, bn)
	}
	slices.SortFunc(out, func(a, b *Network) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// networkNotFound is the error of a name or ID that is no network.
func networkNotFound(ref string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found (hull network ls lists them)", ref))
}

// pickNetwork finds ref among nets: a name, a full ID or a unique ID
// prefix, as docker's.
func pickNetwork(nets []*Network, ref string) (*Network, error) {
	for _, n := range nets {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	var found []*Network
	for _, n := range nets {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, networkNotFound(ref)
	case 1:
		return found[0], nil
	}
	return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found): give more of the ID, or the name", ref, len(found)))
}

// InspectNetwork returns network ref (a name, ID or unique ID prefix)
// with the running containers attached to it.
func (e *Engine) InspectNetwork(ctx context.Context, ref string) (*Network, error) {
	nets, err := e.Networks(ctx)
	if err != nil {
		return nil, err
	}
	return pickNetwork(nets, ref)
}

// RemoveNetwork removes network ref: its bridge, rules and address store
// and its conflist. It refuses the pre-defined networks and a network
// any container is configured on (running: docker's "has active
// endpoints"; created or stopped: it needs the network to start).
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	nets, err := e.Networks(ctx)
	if err != nil {
		return err
	}
	n, err := pickNetwork(nets, ref)
	if err != nil {
		return err
	}
	return e.removeNetwork(ctx, n)
}

func (e *Engine) removeNetwork(ctx context.Context, n *Network) error {
	if n.Builtin {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	if len(n.Containers) > 0 {
		var eps []string
		for _, c := range n.Containers { // docker's: endpoint name and short ID
			eps = append(eps, fmt.Sprintf("name:%q id:%q", c.Name, shortID(c.EndpointID)))
		}
		slices.Sort(eps)
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("error while removing network: network %s has active endpoints (%s)", n.Name, strings.Join(eps, ", ")))
	}
	if len(n.Users) > 0 {
		what := "container"
		if len(n.Users) > 1 {
			what = "containers"
		}
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("error while removing network: network %s is used by %s %s (not running); remove it or hull network disconnect %s CONTAINER first",
			n.Name, what, strings.Join(n.Users, ", "), n.Name))
	}
	m, err := e.networks()
	if err != nil {
		return err
	}
	if err := m.Remove(ctx, n.Name); err != nil {
		return fmt.Errorf("error while removing network %s: %w", n.Name, err)
	}
	logEvent(ctx, e.db, "network", "destroy", n.ID, n.Name, map[string]string{"name": n.Name, "type": n.Driver})
	return nil
}

// PruneNetworks removes the user-defined networks no container is
// configured on, where f matches (until=, label=, label!=), and returns
// their names.
func (e *Engine) PruneNetworks(ctx context.Context, f PruneFilter) ([]string, error) {
	nets, err := e.Networks(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, n := range nets {
		if n.Builtin || len(n.Users) > 0 || len(n.Containers) > 0 || !f.Match(n.Created, n.Labels) {
			continue
		}
		if err := e.removeNetwork(ctx, n); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n.Name)
	}
	return removed, errors.Join(errs...)
}

// ConnectOptions are docker's `network connect` flags.
type ConnectOptions struct {
	IP      []netip.Addr // --ip, --ip6
	Aliases []string     // --alias
}

// ConnectNetwork connects container ctr to network net, as docker's
// network connect: a running container gets its interface at once (the
// next free ethN in its namespace); for every container the network is
// recorded in its config, so that its every later start joins it too.
func (e *Engine) ConnectNetwork(ctx context.Context, netRef, ctr string, o ConnectOptions) error {
	nets, err := e.Networks(ctx)
	if err != nil {
		return err
	}
	n, err := pickNetwork(nets, netRef)
	if err != nil {
		return err
	}
	c, err := e.getStarted(ctx, ctr)
	if err != nil {
		return err
	}
	invalid := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
	}
	mode := netMode(c.Config.Spec)
	switch {
	case c.State == StateRemoving || c.State == StateDead:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is marked for removal and cannot be connected or disconnected to the network", c.Name))
	case n.Name == NetworkHost:
		return invalid("container cannot be disconnected from host network or connected to host network")
	case n.Name == NetworkNone || mode == NetworkNone:
		return invalid("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	case !joinsNetworks(mode):
		return invalid("container sharing network namespace with another container or host cannot be connected to any other network")
	case slices.ContainsFunc(c.Config.Net.Networks, func(ep Endpoint) bool { return ep.Network == n.Name }):
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", c.Name, n.Name))
	}
	if n.Name == NetworkBridge {
		if len(o.Aliases) > 0 {
			return invalid("network-scoped aliases are only supported for user-defined networks")
		}
		if len(o.IP) > 0 {
			return invalid("user specified IP address is supported on user defined networks only")
		}
	}
	for _, ip := range o.IP {
		if !slices.ContainsFunc(n.IPAM.Config, func(s NetworkIPAMConfig) bool {
			p, err := netip.ParsePrefix(s.Subnet)
			return err == nil && p.Contains(ip)
		}) {
			return invalid("no configured subnet or ip-range contain the IP address %s (network %s)", ip, n.Name)
		}
	}
	ep := Endpoint{Network: n.Name, IP: o.IP, Aliases: o.Aliases}
	m, err := e.networks()
	if err != nil {
		return err
	}
	nsPath := ""
	if c.IsRunning() && c.Pid > 0 && procStart(c.Pid) == c.PidStart {
		nsPath = "/proc/" + strconv.Itoa(c.Pid) + "/ns/net"
		ifname, err := nextIfName(m, c.ID)
		if err != nil {
			return err
		}
		_, err = m.Attach(ctx, network.AttachRequest{
			ContainerID: c.ID, NetNSPath: nsPath, Network: n.Name, IfName: ifname, IP: ep.IP, Aliases: dnsNames(c.Name, c.ID, ep),
			DNS: c.Config.Net.DNS,
		})
		if err != nil {
			return fmt.Errorf("connect container %s to network %s: %w", c.Name, n.Name, err)
		}
		// Its names resolve through the name server of its resolver
		// network (the first user-defined one), which must run.
		if name, addr := e.resolverOf(ctx, c.Config.Net); addr.IsValid() {
			if err := e.ensureDNS(name, addr); err != nil {
				m.Detach(ctx, c.ID, n.Name, nsPath)
				return fmt.Errorf("connect container %s to network %s: %w", c.Name, n.Name, err)
			}
		}
	}
	if err := e.setNetworks(ctx, c, append(slices.Clone(c.Config.Net.Networks), ep)); err != nil {
		if nsPath != "" {
			m.Detach(ctx, c.ID, n.Name, nsPath)
		}
		return err
	}
	if nsPath != "" {
		e.rewriteHosts(ctx, c, m)
	}
	logEvent(ctx, e.db, "network", "connect", n.ID, n.Name, map[string]string{"container": c.ID, "name": n.Name, "type": n.Driver})
	return nil
}

// DisconnectNetwork takes container ctr off network net: a running
// container loses its interface at once, and the network leaves its
// config. force drops the network from the config even when the network
// no longer exists or its interface cannot be removed.
func (e *Engine) DisconnectNetwork(ctx context.Context, netRef, ctr string, force bool) error {
	nets, err := e.Networks(ctx)
	if err != nil {
		return err
	}
	c, err := e.getStarted(ctx, ctr)
	if err != nil {
		return err
	}
	name, id, driver := netRef, "", ""
	if n, err := pickNetwork(nets, netRef); err == nil {
		name, id, driver = n.Name, n.ID, n.Driver
	} else if !force {
		return err
	}
	mode := netMode(c.Config.Spec)
	switch {
	case c.State == StateRemoving || c.State == StateDead:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is marked for removal and cannot be connected or disconnected to the network", c.Name))
	case name == NetworkHost && mode == NetworkHost:
		return errdefs.ErrInvalidArgument.WithMessage("container cannot be disconnected from host network or connected to host network")
	case !slices.ContainsFunc(c.Config.Net.Networks, func(ep Endpoint) bool { return ep.Network == name }):
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %s is not connected to network %s", c.Name, name))
	}
	m, err := e.networks()
	if err != nil {
		return err
	}
	running := c.IsRunning() && c.Pid > 0 && procStart(c.Pid) == c.PidStart
	if running {
		nsPath := "/proc/" + strconv.Itoa(c.Pid) + "/ns/net"
		if err := m.Detach(ctx, c.ID, name, nsPath); err != nil && !force {
			return fmt.Errorf("disconnect container %s from network %s: %w", c.Name, name, err)
		}
	}
	rest := slices.DeleteFunc(slices.Clone(c.Config.Net.Networks), func(ep Endpoint) bool { return ep.Network == name })
	if err := e.setNetworks(ctx, c, rest); err != nil {
		return err
	}
	if running {
		e.rewriteHosts(ctx, c, m)
	}
	logEvent(ctx, e.db, "network", "disconnect", id, name, map[string]string{"container": c.ID, "name": name, "type": driver})
	return nil
}

// nextIfName is the first ethN none of container id's attachments has.
func nextIfName(m *network.Manager, id string) (string, error) {
	as, err := m.Attachments(id)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, a := range as {
		used[a.IfName] = true
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name, nil
		}
	}
}

// setNetworks records a container's networks in its config. Only that
// member of the config is written (SQLite's json_set), so an update of
// its limits meanwhile is not undone.
func (e *Engine) setNetworks(ctx context.Context, c *Container, eps []Endpoint) error {
	if eps == nil {
		eps = []Endpoint{}
	}
	data, err := json.Marshal(eps)
	if err != nil {
		return err
	}
	err = e.update(ctx, c.ID, map[string]any{
		"config": sqlExpr{`json_set(config, '$.Net.Networks', json(?))`, []any{string(data)}},
	})
	if err != nil {
		return fmt.Errorf("container %s: record its networks: %w", c.Name, err)
	}
	c.Config.Net.Networks = eps
	return nil
}

// rewriteHosts writes a running container's /etc/hosts again with the
// addresses of its interfaces now (best effort: a connect or disconnect
// has happened either way).
func (e *Engine) rewriteHosts(ctx context.Context, c *Container, m *network.Manager) {
	as, err := m.Attachments(c.ID)
	if err != nil {
		return
	}
	var addrs []netip.Addr
	for _, a := range as {
		if a.Released {
			continue
		}
		for _, p := range a.Addresses {
			addrs = append(addrs, p.Addr())
		}
	}
	if addrs == nil {
		addrs = []netip.Addr{} // not nil: networkFiles then writes only hosts
	}
	hostname, _ := spec.Hostname(c.Config.Spec)
	hosts, _, err := e.networkFiles(ctx, hostname, c.Config.Spec.Domainname, c.Config.Net, addrs)
	if err != nil {
		return
	}
	os.WriteFile(e.persistDir(c.ID)+"/hosts", hosts, 0o644)
}

// networkHook is the monitor's Network hook for container c: each run
// attaches the networks the record has then, read again since network
// connect and disconnect may have changed them (the first run may not
// call it: its networks were attached ahead, in the spare).
func (e *Engine) networkHook(ctx context.Context, c *Container) func(pid int) error {
	return func(pid int) error {
		var cfg sql.NullString
		err := e.db.QueryRowContext(ctx, `SELECT json_extract(config, '$.Net.Networks') FROM containers WHERE id = ?`, c.ID).Scan(&cfg)
		if err == nil {
			var eps []Endpoint
			if !cfg.Valid || json.Unmarshal([]byte(cfg.String), &eps) == nil {
				c.Config.Net.Networks = eps
			}
		}
		return e.attachNetworks(ctx, c, pid)
	}
}

// checkNetworks, with repair, frees the network state of containers that
// are gone that no record names (network.Manager.Sweep).
func (e *Engine) checkNetworks(ctx context.Context, repair bool, report reportFunc) {
	if !repair {
		return
	}
	if _, err := os.Stat(e.cfg.Root + "/networks"); err != nil {
		return // no network was ever used
	}
	m, err := e.networks()
	if err != nil {
		report("networks", err.Error(), "", nil)
		return
	}
	live := e.liveContainers(ctx)
	if err := m.Sweep(ctx, live); err != nil {
		report("networks", "leftover network state of containers that are gone: "+err.Error(),
			"remove it by hand (ip link, nft list table inet hull)", nil)
	}
}
