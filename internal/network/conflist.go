package network

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"
)

// cniVersion is the CNI spec version of the conflists hull writes.
const cniVersion = "1.0.0"

// conflist is a CNI configuration list as stored. Plugins stay raw: each
// goes to its plugin as written.
type conflist struct {
	CNIVersion string            `json:"cniVersion"`
	Name       string            `json:"name"`
	Plugins    []json.RawMessage `json:"plugins"`
	// Args holds what hull knows of the network beyond CNI (podman keeps
	// its labels in the same place); plugins never see it.
	Args *conflistArgs `json:"args,omitempty"`
}

type conflistArgs struct {
	Hull *hullArgs `json:"hull,omitempty"`
}

type hullArgs struct {
	ID       string            `json:"id"`
	Created  time.Time         `json:"created"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// bridgePlugin is the reference bridge plugin's config, with host-local
// IPAM: the options hull implements natively, and nothing else.
type bridgePlugin struct {
	Type        string    `json:"type"`
	Bridge      string    `json:"bridge"`
	IsGateway   bool      `json:"isGateway"`
	IPMasq      bool      `json:"ipMasq"`
	HairpinMode bool      `json:"hairpinMode"`
	MTU         int       `json:"mtu,omitempty"`
	IPAM        hostLocal `json:"ipam"`
	extra       []string  // keys hull does not implement
	ranges      []ipRange // parsed IPAM.Ranges, one per range set
	routes      []netip.Prefix
}

type hostLocal struct {
	Type    string        `json:"type"`
	Ranges  [][]rangeConf `json:"ranges"`
	Routes  []routeConf   `json:"routes,omitempty"`
	DataDir string        `json:"dataDir,omitempty"`
}

type rangeConf struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
}

type routeConf struct {
	Dst string `json:"dst"`
}

// ipRange is one parsed host-local range: addresses first..last of
// subnet, gateway excluded.
type ipRange struct {
	subnet      netip.Prefix
	first, last netip.Addr
	gateway     netip.Addr
}

// bridgeConflist is the conflist of a new bridge network: the reference
// plugins as podman's CNI backend writes them, host-local keeping its
// addresses in hull's run root.
func (m *Manager) bridgeConflist(n *Network) ([]byte, error) {
	ipam := hostLocal{Type: "host-local", DataDir: m.ipamDir}
	for _, s := range n.Subnets {
		r := rangeConf{Subnet: s.Subnet.String(), Gateway: s.Gateway.String()}
		if s.IPRange.IsValid() {
			first, last := s.IPRange.Addr(), lastAddr(s.IPRange)
			if first == s.Subnet.Addr() { // never the network address
				first = first.Next()
			}
			if last == lastAddr(s.Subnet) && last.Is4() { // nor the broadcast
				last = last.Prev()
			}
			r.RangeStart, r.RangeEnd = first.String(), last.String()
		}
		ipam.Ranges = append(ipam.Ranges, []rangeConf{r})
		if !n.Internal {
			dst := "0.0.0.0/0"
			if s.Subnet.Addr().Is6() {
				dst = "::/0"
			}
			ipam.Routes = append(ipam.Routes, routeConf{Dst: dst})
		}
	}
	bridge := bridgePlugin{Type: "bridge", Bridge: n.Bridge, IsGateway: true, IPMasq: n.Masquerade, HairpinMode: true, IPAM: ipam}
	plugins := []any{
		bridge,
		map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		map[string]any{"type": "firewall"},
		map[string]any{"type": "tuning"},
	}
	raw := make([]json.RawMessage, len(plugins))
	for i, p := range plugins {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	c := conflist{CNIVersion: cniVersion, Name: n.Name, Plugins: raw, Args: &conflistArgs{Hull: &hullArgs{
		ID: n.ID, Created: n.Created, Internal: n.Internal, Labels: n.Labels,
	}}}
	return json.MarshalIndent(c, "", "  ")
}

// load reads network name's conflist and decides whether hull sets it up
// natively: only if every plugin is one hull implements, with only the
// options it implements.
func (m *Manager) load(name string) (*Network, error) {
	path := m.confPath(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c conflist
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("network %s: %s: %w", name, path, err)
	}
	if c.Name != name {
		return nil, fmt.Errorf("network %s: %s names network %q", name, path, c.Name)
	}
	if len(c.Plugins) == 0 {
		return nil, fmt.Errorf("network %s: %s has no plugins", name, path)
	}
	n := &Network{Name: name, Path: path, conf: c, Native: !m.usePlugins}
	if c.Args != nil && c.Args.Hull != nil {
		n.ID, n.Created, n.Internal, n.Labels = c.Args.Hull.ID, c.Args.Hull.Created, c.Args.Hull.Internal, c.Args.Hull.Labels
	}
	if n.ID == "" {
		n.ID = newIDFrom(data)
	}
	if n.Created.IsZero() {
		if fi, err := os.Stat(path); err == nil {
			n.Created = fi.ModTime().UTC()
		}
	}
	for i, raw := range c.Plugins {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, fmt.Errorf("network %s: plugin %d: %w", name, i, err)
		}
		var typ string
		_ = json.Unmarshal(keys["type"], &typ)
		if typ == "" {
			return nil, fmt.Errorf("network %s: plugin %d has no type", name, i)
		}
		n.Plugins = append(n.Plugins, typ)
		if !nativeOptions(typ, keys, i) {
			n.Native = false
		}
		if typ == "bridge" && n.bridge == nil {
			b, err := parseBridge(raw)
			if err != nil {
				return nil, fmt.Errorf("network %s: bridge plugin: %w", name, err)
			}
			if len(b.extra) > 0 {
				n.Native = false
			}
			if n.Imported() && b.IPAM.DataDir != m.ipamDir {
				n.Native = false // its addresses are in another store (import.go)
			}
			n.bridge, n.Bridge, n.Masquerade = b, b.Bridge, b.IPMasq
			for _, r := range b.ranges {
				s := Subnet{Subnet: r.subnet, Gateway: r.gateway}
				if r.first != firstAddr(r.subnet) || r.last != lastAddr(r.subnet).Prev() {
					s.IPRange = rangePrefix(r)
				}
				n.Subnets = append(n.Subnets, s)
				if r.subnet.Addr().Is6() {
					n.IPv6 = true
				}
			}
		}
	}
	n.Driver = n.Plugins[0]
	if n.bridge == nil || n.Plugins[0] != "bridge" {
		n.Native = false
	}
	return n, nil
}

// nativeOptions says whether hull implements plugin typ (the i'th of its
// list) with exactly these options. The bridge plugin's are checked by
// parseBridge.
func nativeOptions(typ string, keys map[string]json.RawMessage, i int) bool {
	allowed := map[string][]string{
		"bridge":   nil,
		"portmap":  {"capabilities", "snat"},
		"firewall": {"backend"},
		"tuning":   nil,
		"loopback": nil,
	}
	ok, known := allowed[typ]
	if !known || (typ == "bridge") != (i == 0) {
		return false
	}
	if typ == "bridge" {
		return true
	}
	for k := range keys {
		if k != "type" && k != "name" && k != "cniVersion" && !slices.Contains(ok, k) {
			return false
		}
	}
	return true
}

// parseBridge parses the bridge plugin's config, noting keys hull does not
// implement natively.
func parseBridge(raw json.RawMessage) (*bridgePlugin, error) {
	b := &bridgePlugin{}
	if err := json.Unmarshal(raw, b); err != nil {
		return nil, err
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(raw, &keys)
	for k := range keys {
		switch k {
		case "type", "name", "cniVersion", "bridge", "isGateway", "ipMasq", "hairpinMode", "mtu", "ipam":
		default:
			b.extra = append(b.extra, k)
		}
	}
	var ipamKeys map[string]json.RawMessage
	_ = json.Unmarshal(keys["ipam"], &ipamKeys)
	for k := range ipamKeys {
		if k != "type" && k != "ranges" && k != "routes" && k != "dataDir" {
			b.extra = append(b.extra, "ipam."+k)
		}
	}
	if b.IPAM.Type != "host-local" {
		b.extra = append(b.extra, "ipam.type="+b.IPAM.Type)
	}
	if b.Bridge == "" {
		b.Bridge = "cni0" // the plugin's default
	}
	if !b.IsGateway {
		b.extra = append(b.extra, "isGateway=false")
	}
	for _, set := range b.IPAM.Ranges {
		if len(set) != 1 {
			b.extra = append(b.extra, "ipam.ranges (several ranges in a set)")
			continue
		}
		r, err := parseRange(set[0])
		if err != nil {
			return nil, err
		}
		b.ranges = append(b.ranges, r)
	}
	if len(b.ranges) == 0 {
		b.extra = append(b.extra, "ipam without ranges")
	}
	for _, rt := range b.IPAM.Routes {
		p, err := netip.ParsePrefix(rt.Dst)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rt.Dst, err)
		}
		b.routes = append(b.routes, p)
	}
	return b, nil
}

// parseRange parses a host-local range with the plugin's defaults: from
// the subnet's second address to its last but one, gateway the first.
func parseRange(rc rangeConf) (ipRange, error) {
	var r ipRange
	p, err := netip.ParsePrefix(rc.Subnet)
	if err != nil {
		return r, fmt.Errorf("ipam range subnet %q: %w", rc.Subnet, err)
	}
	r.subnet = p.Masked()
	r.first, r.last = firstAddr(r.subnet), lastAddr(r.subnet).Prev()
	if r.subnet.Addr().Is6() {
		r.last = lastAddr(r.subnet)
	}
	if rc.RangeStart != "" {
		if r.first, err = netip.ParseAddr(rc.RangeStart); err != nil || !r.subnet.Contains(r.first) {
			return r, fmt.Errorf("ipam rangeStart %q is not in %s", rc.RangeStart, r.subnet)
		}
	}
	if rc.RangeEnd != "" {
		if r.last, err = netip.ParseAddr(rc.RangeEnd); err != nil || !r.subnet.Contains(r.last) {
			return r, fmt.Errorf("ipam rangeEnd %q is not in %s", rc.RangeEnd, r.subnet)
		}
	}
	r.gateway = firstAddr(r.subnet)
	if rc.Gateway != "" {
		if r.gateway, err = netip.ParseAddr(rc.Gateway); err != nil {
			return r, fmt.Errorf("ipam gateway %q: %w", rc.Gateway, err)
		}
	}
	return r, nil
}

// firstAddr is p's first address after the network address.
func firstAddr(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// lastAddr is p's last address (IPv4's broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// rangePrefix is the smallest prefix holding r's addresses, for display.
func rangePrefix(r ipRange) netip.Prefix {
	for bits := r.subnet.Addr().BitLen(); bits >= r.subnet.Bits(); bits-- {
		p, _ := r.first.Prefix(bits)
		if p.Contains(r.last) {
			return p
		}
	}
	return r.subnet
}

// newIDFrom is the ID of a conflist hull did not write: its digest.
func newIDFrom(data []byte) string {
	return fmt.Sprintf("%x", sha256.Sum256(data))
}
