// Package network gives containers their networks: a network namespace
// joined to a bridge through a veth pair, an address from the network's
// pool, a default route, published ports, and the /etc/hosts and
// /etc/resolv.conf that go with them.
//
// # Model
//
// A network is a named CNI configuration list (spec 1.0.0), stored as
// <root>/networks/NAME.conflist where users and other CNI runtimes can read
// it. hull writes bridge networks as the CNI reference plugins describe
// them (bridge + host-local IPAM, portmap, firewall, tuning); the default
// network "bridge" (device hull0, 10.88.0.0/16) is written on first use.
//
// # Two ways to the same host state
//
// Exec'ing the plugins costs hundreds of milliseconds per container on
// this project's 2-core test host (bench/network-attach.sh: ADD+DEL about
// 0.5 s, 1 s with a published port), against a budget of 5 ms for all of
// a container's networking. So a conflist made only of the plugins hull
// knows (bridge with host-local IPAM, portmap, firewall, tuning, loopback,
// with the options hull understands) is set up natively, in a few
// milliseconds: the same bridge with the gateway on it, the same veth pair
// (the peer made right in the container's namespace as eth0), the address
// from the same host-local store on disk, the same routes, with netlink;
// published ports as DNAT rules in an nftables table "hull" (nft.go).
// Any other conflist (a third-party plugin, an option hull does not know)
// runs through libcni, exec'ing its plugins from /usr/lib/cni and
// /opt/cni/bin. Options.UsePlugins sends every network that way.
//
// # Lifecycle
//
// Open the Manager once per process. Attach a container to a network after
// its network namespace exists and before its process starts; Detach when
// the process is gone (stop, removal, its monitor dying). Detach is
// idempotent and works when the namespace is already gone. Every Attach
// first writes a record under <runRoot>/networks/attachments, before any
// kernel state exists, so whatever a killed hull leaves half done is named
// by a record; Reclaim walks the records and undoes those of containers
// that are no longer alive. After a reboot the kernel state is gone and
// Reclaim gives the records' addresses and ports back.
//
// Concurrent hull processes share the state: addresses are handed out
// under the network's flock (the same lock file host-local takes), host
// ports are reserved with exclusive-create files, records are written to a
// temporary file and renamed.
//
// # For the engine
//
//	create/run:  ParsePorts(-p), Attach once per --network (IfName eth0,
//	             eth1, ...) when the namespace exists, before the process
//	             starts; it can run alongside the rootfs's preparation.
//	             Keep the Attachments for inspect (NetworkSettings), ps
//	             (PortMapping.String) and `hull port`; write /etc/hosts and
//	             /etc/resolv.conf with Hosts and ResolvConf.
//	stop/exit:   let go of the namespace, then Detach each network.
//	every cmd:   Reclaim(alive) once, alive = running or being started.
//	network *:   Create, List, Inspect, Remove (after AttachmentsOf is
//	             empty); connect/disconnect = Attach/Detach with the
//	             namespace alive.
package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultNetwork is the network containers join unless told otherwise, as
// docker's "bridge".
const DefaultNetwork = "bridge"

// The default network's layout (podman's, on hull's own bridge).
const (
	defaultBridge = "hull0"
	defaultSubnet = "10.88.0.0/16" // gateway 10.88.0.1
)

// DefaultPluginDirs are where CNI plugin binaries are looked up: Debian's
// containernetworking-plugins, then the upstream default.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Options configure a Manager.
type Options struct {
	// PluginDirs are searched for CNI plugin binaries, in order
	// (DefaultPluginDirs if empty).
	PluginDirs []string
	// UsePlugins runs every network through its CNI plugins, even one
	// hull could set up itself (for comparison and debugging).
	UsePlugins bool
	// DefaultBridge and DefaultSubnet replace the default network's
	// hull0 and 10.88.0.0/16 (its gateway is the subnet's first
	// address). The bridge is the host's, but the address pool is the
	// run root's: hulls with different run roots (tests) must not share
	// a default network's bridge.
	DefaultBridge, DefaultSubnet string
}

// Manager owns the networks under one root and the containers' attachments
// to them under one run root.
type Manager struct {
	confDir    string // <root>/networks: NAME.conflist
	runDir     string // <runRoot>/networks
	ipamDir    string // host-local's dataDir: NAME/<ip> files, NAME/lock
	attachDir  string // attachment records: CONTAINER/NETWORK.json
	tmpDir     string // records being written, renamed into attachDir
	portDir    string // host port reservations: PROTO-PORT
	cacheDir   string // libcni's cache of results and configs
	pluginDirs []string
	// deferRelease: DeferReleasedVeths.
	deferRelease bool
	usePlugins   bool
	// the default network's bridge and subnet
	defaultBridge, defaultSubnet string
}

// Open returns the manager of the networks under root and the attachments
// under runRoot, making their directories.
func Open(root, runRoot string, opts Options) (*Manager, error) {
	m := &Manager{
		confDir:       filepath.Join(root, "networks"),
		runDir:        filepath.Join(runRoot, "networks"),
		pluginDirs:    opts.PluginDirs,
		usePlugins:    opts.UsePlugins,
		defaultBridge: opts.DefaultBridge, defaultSubnet: opts.DefaultSubnet,
	}
	if m.defaultBridge == "" {
		m.defaultBridge = defaultBridge
	}
	if m.defaultSubnet == "" {
		m.defaultSubnet = defaultSubnet
	}
	if len(m.pluginDirs) == 0 {
		m.pluginDirs = DefaultPluginDirs
	}
	m.ipamDir = filepath.Join(m.runDir, "ipam")
	m.attachDir = filepath.Join(m.runDir, "attachments")
	m.tmpDir = filepath.Join(m.runDir, "attachments.tmp")
	m.portDir = filepath.Join(m.runDir, "ports")
	m.cacheDir = filepath.Join(m.runDir, "cni-cache")
	if err := os.MkdirAll(m.confDir, 0o700); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	for _, d := range []string{m.ipamDir, m.attachDir, m.tmpDir, m.portDir, m.cacheDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("networks: %w", err)
		}
	}
	return m, nil
}

// Network is one network as its conflist describes it.
type Network struct {
	Name    string
	ID      string // 64 hex digits, docker's shape
	Created time.Time
	// Driver is "bridge" for a bridge network, else the first plugin's type.
	Driver string
	// Bridge is the bridge device, for a bridge network.
	Bridge   string
	Subnets  []Subnet
	Internal bool
	// Masquerade says that traffic from the network to the outside leaves
	// with the host's address (the bridge plugin's ipMasq).
	Masquerade bool
	IPv6       bool
	Labels     map[string]string
	// Plugins are the conflist's plugin types, in order.
	Plugins []string
	// Native says hull sets the network up itself rather than through
	// its plugins (see the package comment).
	Native bool
	// Path is the conflist's file.
	Path string

	conf   conflist
	bridge *bridgePlugin // the bridge plugin's config, if any
}

// Subnet is one address range of a network.
type Subnet struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
	// IPRange is the part of Subnet addresses are handed out from (all of
	// it if invalid).
	IPRange netip.Prefix
}

// CreateOptions describe a new network. Unset fields get docker's
// defaults: a bridge named after the network's ID, a free subnet, its first
// address as gateway.
type CreateOptions struct {
	Name       string
	Subnet     string // CIDR; a free 10.89-10.127.x.0/24 if empty
	Gateway    string
	IPRange    string
	Internal   bool
	Labels     map[string]string
	BridgeName string
	// IPv6 adds an IPv6 subnet (Subnet6, or a unique local /64 if empty).
	IPv6     bool
	Subnet6  string
	Gateway6 string
	// NoMasquerade keeps the network's traffic to the outside from
	// leaving with the host's address (docker's
	// com.docker.network.bridge.enable_ip_masquerade=false).
	NoMasquerade bool
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// reservedNames are docker's network modes, never a network's name.
var reservedNames = []string{"none", "host", "default"}

// Create writes a new bridge network's conflist. It refuses a name in use,
// a subnet overlapping another network's or a route of the host's.
// Nothing is set up on the host until a container attaches.
func (m *Manager) Create(ctx context.Context, o CreateOptions) (*Network, error) {
	if !validName.MatchString(o.Name) || len(o.Name) > 64 {
		return nil, fmt.Errorf("network %q: invalid name (letters, digits, _ . -; starting with a letter or digit)", o.Name)
	}
	if slices.Contains(reservedNames, o.Name) || (o.Name == DefaultNetwork && o.BridgeName != m.defaultBridge) {
		return nil, fmt.Errorf("network %s: %w: the name is reserved", o.Name, os.ErrExist)
	}
	if _, err := os.Stat(m.confPath(o.Name)); err == nil {
		return nil, fmt.Errorf("network %s: %w", o.Name, os.ErrExist)
	}
	id := newID(o.Name)
	if o.BridgeName == "" {
		o.BridgeName = "hull-" + id[:10]
	}
	if len(o.BridgeName) > 15 {
		return nil, fmt.Errorf("network %s: bridge name %q is longer than 15 characters", o.Name, o.BridgeName)
	}
	if o.Name != DefaultNetwork {
		// The default network's subnet counts as taken from the start.
		if err := m.ensureDefault(); err != nil {
			return nil, err
		}
	}
	others, err := m.networks()
	if err != nil {
		return nil, err
	}
	for _, n := range others {
		if n.Bridge == o.BridgeName {
			return nil, fmt.Errorf("network %s: bridge %s is network %s's", o.Name, o.BridgeName, n.Name)
		}
	}
	var subnets []Subnet
	v4, err := m.subnet(o.Name, o.BridgeName, o.Subnet, o.Gateway, o.IPRange, false, others)
	if err != nil {
		return nil, err
	}
	subnets = append(subnets, v4)
	if o.IPv6 {
		v6, err := m.subnet(o.Name, o.BridgeName, o.Subnet6, o.Gateway6, "", true, others)
		if err != nil {
			return nil, err
		}
		subnets = append(subnets, v6)
	}
	n := &Network{
		Name: o.Name, ID: id, Created: time.Now().UTC().Truncate(time.Second), Driver: "bridge",
		Bridge: o.BridgeName, Subnets: subnets, Internal: o.Internal, IPv6: o.IPv6, Labels: o.Labels,
		Masquerade: !o.Internal && !o.NoMasquerade,
	}
	data, err := m.bridgeConflist(n)
	if err != nil {
		return nil, err
	}
	// O_EXCL: of two processes creating one name, one wins.
	tmp := m.confPath(o.Name) + ".tmp" + id[:8]
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return nil, fmt.Errorf("network %s: %w", o.Name, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, m.confPath(o.Name)); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("network %s: %w", o.Name, os.ErrExist)
		}
		return nil, fmt.Errorf("network %s: %w", o.Name, err)
	}
	return m.Inspect(ctx, o.Name)
}

// subnet resolves one subnet of a new network, checking it against the
// other networks and the host's routes (those of the network's own
// bridge aside: a bridge left from an earlier life of the network, or
// of the default network under another root).
func (m *Manager) subnet(name, bridge, cidr, gw, ipRange string, v6 bool, others []*Network) (Subnet, error) {
	var s Subnet
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	if cidr == "" {
		free, err := freeSubnet(v6, name, bridge, others)
		if err != nil {
			return s, fmt.Errorf("network %s: %w", name, err)
		}
		cidr = free.String()
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p.Addr().Is6() != v6 || p.Addr().Is4In6() {
		return s, fmt.Errorf("network %s: subnet %q is not an %s CIDR", name, cidr, family)
	}
	s.Subnet = p.Masked()
	if bits := s.Subnet.Addr().BitLen() - s.Subnet.Bits(); bits < 2 {
		return s, fmt.Errorf("network %s: subnet %s is too small for a gateway and a container", name, s.Subnet)
	}
	if gw == "" {
		s.Gateway = s.Subnet.Addr().Next()
	} else if s.Gateway, err = netip.ParseAddr(gw); err != nil || !s.Subnet.Contains(s.Gateway) {
		return s, fmt.Errorf("network %s: gateway %q is not an address in %s", name, gw, s.Subnet)
	}
	if ipRange != "" {
		r, err := netip.ParsePrefix(ipRange)
		if err != nil || !s.Subnet.Contains(r.Addr()) || r.Bits() < s.Subnet.Bits() {
			return s, fmt.Errorf("network %s: ip range %q is not a CIDR inside %s", name, ipRange, s.Subnet)
		}
		s.IPRange = r.Masked()
	}
	for _, o := range others {
		for _, os := range o.Subnets {
			if os.Subnet.Overlaps(s.Subnet) {
				return s, fmt.Errorf("network %s: subnet %s overlaps network %s's %s", name, s.Subnet, o.Name, os.Subnet)
			}
		}
	}
	if r, ok := hostRouteOverlapping(s.Subnet, bridge); ok {
		return s, fmt.Errorf("network %s: subnet %s overlaps the host's route %s; pick another --subnet", name, s.Subnet, r)
	}
	return s, nil
}

// hostRouteOverlapping returns a route of the host's (default routes and
// those of device ownBridge aside) that overlaps p, if any.
func hostRouteOverlapping(p netip.Prefix, ownBridge string) (string, bool) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	routes, err := netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", false
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		addr, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok || ones == 0 || addr.Unmap().IsLinkLocalUnicast() || addr.Unmap().IsMulticast() {
			continue
		}
		rp := netip.PrefixFrom(addr.Unmap(), ones)
		if rp.Overlaps(p) {
			dev := ""
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				if l.Attrs().Name == ownBridge {
					continue
				}
				dev = " dev " + l.Attrs().Name
			}
			return rp.String() + dev, true
		}
	}
	return "", false
}

// freeSubnet picks a subnet no network and no host route uses: a /24 in
// 10.89.0.0-10.127.255.0 (podman's choice), or a unique local /64 derived
// from the network's name for IPv6.
func freeSubnet(v6 bool, name, bridge string, others []*Network) (netip.Prefix, error) {
	used := func(p netip.Prefix) bool {
		for _, o := range others {
			for _, s := range o.Subnets {
				if s.Subnet.Overlaps(p) {
					return true
				}
			}
		}
		_, ok := hostRouteOverlapping(p, bridge)
		return ok
	}
	if v6 {
		sum := sha256.Sum256([]byte(name))
		var a [16]byte
		a[0] = 0xfd
		copy(a[1:8], sum[:7])
		for i := 0; i < 256; i++ {
			a[7] = byte(i)
			if p := netip.PrefixFrom(netip.AddrFrom16(a), 64); !used(p) {
				return p, nil
			}
		}
		return netip.Prefix{}, errors.New("no free IPv6 subnet; give one with --subnet")
	}
	for b := 89; b < 128; b++ {
		for c := 0; c < 256; c++ {
			if p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), byte(c), 0}), 24); !used(p) {
				return p, nil
			}
		}
	}
	return netip.Prefix{}, errors.New("no free subnet in 10.89.0.0-10.127.255.0/24; give one with --subnet")
}

// newID is a new network's ID: random, docker's 64 hex digits.
func newID(name string) string {
	var seed [32]byte
	rand.Read(seed[:])
	sum := sha256.Sum256(append(seed[:], name...))
	return hex.EncodeToString(sum[:])
}

func (m *Manager) confPath(name string) string {
	return filepath.Join(m.confDir, name+".conflist")
}

// List returns every network, the default one included, by name.
func (m *Manager) List(ctx context.Context) ([]*Network, error) {
	if err := m.ensureDefault(); err != nil {
		return nil, err
	}
	return m.networks()
}

// networks returns the networks whose conflists exist, by name.
func (m *Manager) networks() ([]*Network, error) {
	entries, err := os.ReadDir(m.confDir)
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	var nets []*Network
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".conflist")
		if !ok {
			continue
		}
		n, err := m.load(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// ErrNotFound is wrapped by the error of a name that is not a network.
var ErrNotFound = errors.New("no such network")

// Inspect returns network name; the default network is made on first use.
func (m *Manager) Inspect(ctx context.Context, name string) (*Network, error) {
	if name == DefaultNetwork {
		if err := m.ensureDefault(); err != nil {
			return nil, err
		}
	}
	n, err := m.load(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("network %s: %w", name, ErrNotFound)
	}
	return n, err
}

// Remove deletes network name: its bridge and rules on the host, its
// address store and its conflist. The caller checks first that no
// container uses it.
func (m *Manager) Remove(ctx context.Context, name string) error {
	n, err := m.Inspect(ctx, name)
	if err != nil {
		return err
	}
	if n.Native || n.Bridge != "" {
		if err := removeBridge(n); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(filepath.Join(m.ipamDir, name)); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	if err := os.Remove(n.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network %s: %w", name, err)
	}
	return nil
}

// ensureDefault writes the default network's conflist if it is missing.
func (m *Manager) ensureDefault() error {
	if _, err := os.Stat(m.confPath(DefaultNetwork)); err == nil {
		return nil
	}
	_, err := m.Create(context.Background(), CreateOptions{
		Name: DefaultNetwork, BridgeName: m.defaultBridge, Subnet: m.defaultSubnet,
	})
	if err != nil {
		// Another hull process may have written it meanwhile: its
		// conflist then made this Create fail (a name in use, or its
		// subnet taken by that very network).
		if _, serr := os.Stat(m.confPath(DefaultNetwork)); serr == nil {
			return nil
		}
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("default network: %w (Options.DefaultSubnet gives it another)", err)
	}
	return nil
}

// MarshalJSON gives a network docker's shape of `network inspect`, less
// the containers (the engine knows those).
func (n *Network) MarshalJSON() ([]byte, error) {
	type ipamConfig struct {
		Subnet  string `json:"Subnet"`
		Gateway string `json:"Gateway,omitempty"`
		IPRange string `json:"IPRange,omitempty"`
	}
	var cfgs []ipamConfig
	for _, s := range n.Subnets {
		c := ipamConfig{Subnet: s.Subnet.String()}
		if s.Gateway.IsValid() {
			c.Gateway = s.Gateway.String()
		}
		if s.IPRange.IsValid() {
			c.IPRange = s.IPRange.String()
		}
		cfgs = append(cfgs, c)
	}
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	opts := map[string]string{}
	if n.Bridge != "" {
		opts["com.docker.network.bridge.name"] = n.Bridge
	}
	return json.Marshal(map[string]any{
		"Name": n.Name, "Id": n.ID, "Created": n.Created, "Scope": "local", "Driver": n.Driver,
		"EnableIPv6": n.IPv6, "IPAM": map[string]any{"Driver": "default", "Options": map[string]string{}, "Config": cfgs},
		"Internal": n.Internal, "Attachable": false, "Ingress": false, "Options": opts, "Labels": labels,
		"Plugins": n.Plugins, "ConfigFile": n.Path,
	})
}
