package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The native path does what the bridge plugin (with host-local) does, in
// fewer netlink messages and without exec'ing anything:
//
//	bridge:  the network's bridge, the gateway addresses on it, up;
//	         ip_forward and the bridge's route_localnet (portmap's) on;
//	         the network's masquerade rules (see nft.go)
//	veth:    one RTM_NEWLINK makes the pair, the host end on the bridge
//	         and up, the peer right in the container's namespace as eth0;
//	         hairpin on the host end (hairpinMode)
//	inside:  the addresses, eth0 and lo up, the routes via the gateway
//	ports:   DNAT rules in nftables (portmap's job)

// attachNative sets up attachment a of a native network.
func (m *Manager) attachNative(ctx context.Context, n *Network, a *Attachment, r AttachRequest) error {
	var mac net.HardwareAddr
	if r.MAC != "" {
		mac, _ = net.ParseMAC(r.MAC) // checked by Attach
	}
	s, err := m.lockIPAM(n.Name)
	if err != nil {
		return err
	}
	br, err := ensureBridge(n)
	if err == nil {
		a.Addresses, err = s.allocate(n.Name, a.ContainerID, a.IfName, n.bridge.ranges, r.IP)
	}
	s.unlock()
	if err != nil {
		return err
	}
	for _, rg := range n.bridge.ranges {
		a.Gateways = append(a.Gateways, rg.gateway)
	}

	ns, err := netns.GetFromPath(a.NetNSPath)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", a.NetNSPath, err)
	}
	defer ns.Close()
	la := netlink.NewLinkAttrs()
	la.Name, la.MasterIndex, la.Flags = a.HostVeth, br.Attrs().Index, net.FlagUp
	if n.bridge.MTU > 0 {
		la.MTU = n.bridge.MTU
	}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: a.IfName, PeerNamespace: netlink.NsFd(int(ns)), PeerHardwareAddr: mac, PeerTxQLen: -1}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s (%s in the container): %w", a.HostVeth, a.IfName, err)
	}
	if n.bridge.HairpinMode {
		if err := netlink.LinkSetHairpin(veth, true); err != nil {
			return fmt.Errorf("veth %s: hairpin: %w", a.HostVeth, err)
		}
	}
	if err := configureInside(ns, n, a); err != nil {
		return err
	}
	if len(a.Ports) > 0 {
		if err := addPortRules(n, a); err != nil {
			return err
		}
	}
	return nil
}

// configureInside gives the container's interface its addresses and
// routes and brings it and lo up.
func configureInside(ns netns.NsHandle, n *Network, a *Attachment) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", a.NetNSPath, err)
	}
	defer h.Close()
	link, err := h.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("%s in the container: %w", a.IfName, err)
	}
	for _, p := range a.Addresses {
		addr := &netlink.Addr{IPNet: prefixNet(p)}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // a fresh namespace has no one to collide with but the pool's owners
		}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("%s in the container: add %s: %w", a.IfName, p, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s in the container: up: %w", a.IfName, err)
	}
	// lo is a namespace's first device, index 1.
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}); err != nil {
		return fmt.Errorf("lo in the container: up: %w", err)
	}
	a.MAC = link.Attrs().HardwareAddr.String()
	for _, dst := range n.bridge.routes {
		var gw netip.Addr
		for _, g := range a.Gateways {
			if g.Is6() == dst.Addr().Is6() {
				gw = g
			}
		}
		if !gw.IsValid() {
			continue
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixNet(dst), Gw: gw.AsSlice()}
		if err := h.RouteAdd(route); errors.Is(err, unix.EEXIST) {
			continue // a default route of the container's first network (docker's choice too)
		} else if err != nil {
			return fmt.Errorf("%s in the container: route %s via %s: %w", a.IfName, dst, gw, err)
		}
	}
	return nil
}

// detachNative removes what attachNative set up; each step tolerates a
// missing object. With the namespace gone the veth pair goes with it (see
// Detach).
func (m *Manager) detachNative(a *Attachment, nsAlive bool) error {
	if a.HostVeth != "" && nsAlive {
		if err := deleteLink(a.HostVeth); err != nil {
			return fmt.Errorf("delete veth %s: %w", a.HostVeth, err)
		}
	}
	if len(a.Ports) > 0 {
		if err := deletePortRules(a.ContainerID, a.Network, a.Ports, a.Addresses); err != nil {
			return err
		}
	}
	s, err := m.lockIPAM(a.Network)
	if err != nil {
		return err
	}
	defer s.unlock()
	if len(a.Addresses) > 0 {
		s.releaseAddrs(a.ContainerID, a.IfName, a.Addresses)
		return nil
	}
	return s.releaseID(a.ContainerID, a.IfName)
}

// ensureBridge makes network n's bridge ready, under the network's lock.
// The bridge goes up last: one that is up was set up completely.
func ensureBridge(n *Network) (netlink.Link, error) {
	link, err := netlink.LinkByName(n.Bridge)
	if err == nil {
		if _, ok := link.(*netlink.Bridge); !ok {
			return nil, fmt.Errorf("%s is a %s device, not a bridge", n.Bridge, link.Type())
		}
		if link.Attrs().Flags&net.FlagUp != 0 {
			return link, nil
		}
	} else {
		if !isNotFound(err) {
			return nil, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
		la := netlink.NewLinkAttrs()
		la.Name = n.Bridge
		if n.bridge.MTU > 0 {
			la.MTU = n.bridge.MTU
		}
		// A MAC address of its own: a bridge without one takes its
		// lowest port's, and changing it as containers come and go
		// leaves stale gateway entries in their neighbour caches.
		la.HardwareAddr = randomMAC()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if link, err = netlink.LinkByName(n.Bridge); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	for _, r := range n.bridge.ranges {
		addr := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(r.gateway, r.subnet.Bits()))}
		if r.gateway.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("bridge %s: add %s: %w", n.Bridge, addr.IPNet, err)
		}
	}
	sysctls := map[string]string{
		"net/ipv4/conf/" + n.Bridge + "/route_localnet": "1", // 127.0.0.1:PORT DNATed to the bridge
		"net/ipv4/ip_forward":                           "1",
	}
	if n.IPv6 && !n.Internal { // (forwarding turns off the host's router advertisements)
		sysctls["net/ipv6/conf/all/forwarding"] = "1"
	}
	for k, v := range sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			return nil, fmt.Errorf("bridge %s: sysctl %s: %w", n.Bridge, k, err)
		}
	}
	if err := addNetworkRules(n); err != nil {
		return nil, fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bridge %s: up: %w", n.Bridge, err)
	}
	return link, nil
}

// removeBridge deletes network n's bridge and rules, if any. The bridge
// of a network hull does not set up itself may be shared with another
// runtime: it is deleted only without devices on it.
func removeBridge(n *Network) error {
	if err := deleteNetworkRules(n); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if n.Bridge == "" {
		return nil
	}
	if !n.Native {
		if br, err := netlink.LinkByName(n.Bridge); err == nil {
			links, _ := netlink.LinkList()
			for _, l := range links {
				if l.Attrs().MasterIndex == br.Attrs().Index {
					return nil
				}
			}
		}
	}
	if err := deleteLink(n.Bridge); err != nil {
		return fmt.Errorf("network %s: delete bridge %s: %w", n.Name, n.Bridge, err)
	}
	return nil
}

// linkExists says whether the host has a device name.
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// deleteLink deletes the host's device name, if it exists.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkDel(link)
	}
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// randomMAC is a random, locally administered, unicast MAC address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}
