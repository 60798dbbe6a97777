package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// hull's rules live in two nftables tables of their own, "ip hull" and
// "ip6 hull", which `nft list table ip hull` shows whole:
//
//	map tcp-ports, udp-ports { type inet_service : verdict }  # HOSTPORT : goto ctr-ID-NETWORK
//	chain prerouting  { type nat hook prerouting priority dstnat;  fib daddr type local jump ports }
//	chain output      { type nat hook output priority dstnat;      fib daddr type local jump ports }
//	chain ports       { meta l4proto tcp th dport vmap @tcp-ports; meta l4proto udp th dport vmap @udp-ports }
//	chain ctr-ID-NETWORK { [ip daddr HOSTIP] meta l4proto tcp th dport HOSTPORT dnat to CIP:CPORT ... }
//	chain postrouting { type nat hook postrouting priority srcnat;
//	                    ct status dnat ip saddr 127.0.0.0/8 oifname BR masquerade  # 127.0.0.1:PORT from the host
//	                    ct status dnat ip saddr SUBNET oifname BR masquerade      # a container to a published port of its network
//	                    ip saddr SUBNET ip daddr != SUBNET ... oifname != BR masquerade  # ipMasq networks only }
//
// DNAT in prerouting serves other hosts and containers, in output the
// host itself; "fib daddr type local" keeps it to the host's own
// addresses. A container's ports are a chain of its own and one map
// element per host port, so that adding and deleting them is one batch
// addressed by name and key, never a walk of everyone's rules. (A host
// port is one container's on all addresses, see ports.go, so the maps
// are keyed by port alone.) Masquerading is only for DNATed connections
// that would otherwise come back on another path (the hairpin and
// loopback cases, portmap's SNAT), plus the bridge plugin's ipMasq for
// the network's traffic to the outside. A network's postrouting rules
// carry the comment "hull net NETWORK BRIDGE", by which they are deleted:
// the bridge, a host device, tells apart the networks of the same name
// that hulls with other roots have on the host (every root's default
// network is "bridge"), whose rules share the table.
//
// The ip6 table is the same for a network with IPv6, less the loopback
// rule: the kernel never routes ::1 off the host, so [::1]:PORT is not
// published (docker needs its userland proxy for it).

const tableName = "hull"

// family is one of hull's two tables with what differs between them.
type family struct {
	table          *nftables.Table
	saddr, daddr   uint32 // offsets of the addresses in the header
	addrLen        uint32
	nfproto        uint32
	loopback       netip.Prefix // masqueraded when DNATed; invalid for IPv6
	multicast      netip.Prefix
	chainPorts     *nftables.Chain
	chainPostroute *nftables.Chain
}

func newFamily(tf nftables.TableFamily) *family {
	f := &family{table: &nftables.Table{Name: tableName, Family: tf}}
	if tf == nftables.TableFamilyIPv4 {
		f.saddr, f.daddr, f.addrLen, f.nfproto = 12, 16, 4, unix.NFPROTO_IPV4
		f.loopback, f.multicast = netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("224.0.0.0/4")
	} else {
		f.saddr, f.daddr, f.addrLen, f.nfproto = 8, 24, 16, unix.NFPROTO_IPV6
		f.multicast = netip.MustParsePrefix("ff00::/8")
	}
	f.chainPorts = &nftables.Chain{Name: "ports", Table: f.table}
	f.chainPostroute = f.baseChain("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	return f
}

var (
	ipv4     = newFamily(nftables.TableFamilyIPv4)
	ipv6     = newFamily(nftables.TableFamilyIPv6)
	families = []*family{ipv4, ipv6}
)

// familyOf is the table of addresses like a.
func familyOf(a netip.Addr) *family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

func (f *family) baseChain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: f.table, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio}
}

// portMap is the map of protocol proto's published host ports.
func (f *family) portMap(proto string) *nftables.Set {
	return &nftables.Set{Table: f.table, Name: proto + "-ports", IsMap: true, KeyType: nftables.TypeInetService, DataType: nftables.TypeVerdict}
}

// ctrChainPrefix starts the name of a container's chain: ctr-ID-NETWORK.
const ctrChainPrefix = "ctr-"

func (f *family) ctrChain(id, network string) *nftables.Chain {
	return &nftables.Chain{Name: ctrChainPrefix + id + "-" + network, Table: f.table}
}

func netComment(n *Network) string { return "hull net " + n.Name + " " + n.Bridge }

// setup makes the table, its maps and chains if they are missing. Two
// processes doing it at once add the jumps twice, which is harmless: dnat
// ends the evaluation.
func (f *family) setup(c *nftables.Conn) error {
	if _, err := c.GetSetByName(f.table, f.portMap("udp").Name); err == nil {
		return nil
	}
	c.AddTable(f.table)
	c.AddChain(f.chainPorts)
	c.AddChain(f.chainPostroute)
	pre := c.AddChain(f.baseChain("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest))
	out := c.AddChain(f.baseChain("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest))
	for _, proto := range []string{"tcp", "udp"} {
		m := f.portMap(proto)
		if err := c.AddSet(m, nil); err != nil {
			return fmt.Errorf("nftables: map %s: %w", m.Name, err)
		}
		c.AddRule(&nftables.Rule{Table: f.table, Chain: f.chainPorts, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(proto)}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: m.Name, SetID: m.ID, DestRegister: 0, IsDestRegSet: true},
		}})
	}
	for _, ch := range []*nftables.Chain{pre, out} {
		c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: f.chainPorts.Name},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", f, err)
	}
	return nil
}

func (f *family) String() string {
	if f == ipv4 {
		return "ip " + tableName
	}
	return "ip6 " + tableName
}

func protoNumber(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// addNetworkRules (re)writes network n's masquerade rules, in the table
// of each of its subnets' families.
func addNetworkRules(n *Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	comment := userdata.AppendString(nil, userdata.TypeComment, netComment(n))
	for _, r := range n.bridge.ranges {
		f := familyOf(r.subnet.Addr())
		if err := f.setup(c); err != nil {
			return err
		}
		if err := f.delRules(c, f.chainPostroute, func(comment string) bool { return comment == netComment(n) }); err != nil {
			return err
		}
		for _, src := range []netip.Prefix{f.loopback, r.subnet} {
			if !src.IsValid() {
				continue
			}
			exprs := append(ctDNATed(), f.matchPrefix(f.saddr, src, expr.CmpOpEq)...)
			exprs = append(exprs, matchOifname(n.Bridge, expr.CmpOpEq)...)
			exprs = append(exprs, &expr.Masq{})
			c.AddRule(&nftables.Rule{Table: f.table, Chain: f.chainPostroute, Exprs: exprs, UserData: comment})
		}
		if n.Masquerade {
			exprs := f.matchPrefix(f.saddr, r.subnet, expr.CmpOpEq)
			exprs = append(exprs, f.matchPrefix(f.daddr, r.subnet, expr.CmpOpNeq)...)
			exprs = append(exprs, f.matchPrefix(f.daddr, f.multicast, expr.CmpOpNeq)...)
			exprs = append(exprs, matchOifname(n.Bridge, expr.CmpOpNeq)...)
			exprs = append(exprs, &expr.Masq{})
			c.AddRule(&nftables.Rule{Table: f.table, Chain: f.chainPostroute, Exprs: exprs, UserData: comment})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: network %s's rules: %w", n.Name, err)
	}
	return nil
}

// deleteNetworkRules deletes network n's rules, if any.
func deleteNetworkRules(n *Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, f := range families {
		if err := f.delRules(c, f.chainPostroute, func(comment string) bool { return comment == netComment(n) }); err != nil {
			return err
		}
	}
	return flush(c)
}

// addPortRules publishes attachment a's ports: in the table of each of
// the container's address families a chain of DNAT rules and the maps'
// elements pointing to it, in one batch. A port without a host address
// is published on both families if the container has both.
func addPortRules(n *Network, a *Attachment) error {
	v4, _ := a.IPv4()
	v6, _ := a.IPv6()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, cip := range []netip.Prefix{v4, v6} {
		if !cip.IsValid() {
			continue
		}
		f := familyOf(cip.Addr())
		var ch *nftables.Chain
		elems := map[string][]nftables.SetElement{}
		for _, p := range a.Ports {
			if p.HostIP.IsValid() && familyOf(p.HostIP) != f {
				continue
			}
			if ch == nil {
				ch = c.AddChain(f.ctrChain(a.ContainerID, a.Network))
			}
			var exprs []expr.Any
			if p.HostIP.IsValid() {
				exprs = f.matchPrefix(f.daddr, netip.PrefixFrom(p.HostIP, p.HostIP.BitLen()), expr.CmpOpEq)
			}
			exprs = append(exprs,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(p.Protocol)}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
				&expr.Immediate{Register: 1, Data: cip.Addr().AsSlice()},
				&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.nfproto, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
			)
			c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: exprs})
			elems[p.Protocol] = append(elems[p.Protocol], nftables.SetElement{
				Key: binaryutil.BigEndian.PutUint16(p.HostPort), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: ch.Name}})
		}
		for proto, e := range elems {
			if err := c.SetAddElements(f.portMap(proto), e); err != nil {
				return fmt.Errorf("nftables: publish ports: %w", err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publish ports: %w", err)
	}
	return nil
}

// deletePortRules unpublishes container id's ports on network: the map
// elements, then its chain, in one batch per family it has addresses
// of; what is missing (a removal already done, a table flushed by hand)
// is found by looking.
func deletePortRules(id, network string, ports []PortMapping, addrs []netip.Prefix) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, f := range families {
		has := len(addrs) == 0 // not known: try both
		for _, a := range addrs {
			has = has || familyOf(a.Addr()) == f
		}
		if !has {
			continue
		}
		ch := f.ctrChain(id, network)
		elems := map[string][]nftables.SetElement{}
		for _, p := range ports {
			if !p.HostIP.IsValid() || familyOf(p.HostIP) == f {
				elems[p.Protocol] = append(elems[p.Protocol], nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p.HostPort)})
			}
		}
		for proto, e := range elems {
			c.SetDeleteElements(f.portMap(proto), e)
		}
		c.FlushChain(ch)
		c.DelChain(ch)
		if err := c.Flush(); err == nil {
			continue
		}
		if _, err := c.ListChain(f.table, ch.Name); err != nil {
			continue // none of it there
		}
		if err := f.deleteChainAndElements(c, map[string]bool{ch.Name: true}); err != nil {
			return err
		}
	}
	return nil
}

// deleteChainAndElements deletes the containers' chains named in chains
// and the map elements that point to them.
func (f *family) deleteChainAndElements(c *nftables.Conn, chains map[string]bool) error {
	for _, proto := range []string{"tcp", "udp"} {
		m := f.portMap(proto)
		elems, err := c.GetSetElements(m)
		if err != nil {
			continue
		}
		var del []nftables.SetElement
		for _, e := range elems {
			if chains[elemChain(e)] {
				del = append(del, nftables.SetElement{Key: e.Key})
			}
		}
		if len(del) > 0 {
			c.SetDeleteElements(m, del)
		}
	}
	for name := range chains {
		ch := &nftables.Chain{Name: name, Table: f.table}
		c.FlushChain(ch)
		c.DelChain(ch)
	}
	return flush(c)
}

// sweepRules deletes the port chains of containers that are gone.
func sweepRules(alive func(string) bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, f := range families {
		chains, err := c.ListChainsOfTableFamily(f.table.Family)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		dead := map[string]bool{}
		for _, ch := range chains {
			if ch.Table.Name != tableName {
				continue
			}
			if rest, ok := strings.CutPrefix(ch.Name, ctrChainPrefix); ok {
				if id, _, ok := strings.Cut(rest, "-"); ok && !alive(id) {
					dead[ch.Name] = true
				}
			}
		}
		if len(dead) > 0 {
			if err := f.deleteChainAndElements(c, dead); err != nil {
				return err
			}
		}
	}
	return nil
}

// delRules queues the deletion of chain's rules whose comment matches; a
// missing table or chain has none.
func (f *family) delRules(c *nftables.Conn, chain *nftables.Chain, match func(comment string) bool) error {
	rules, err := c.GetRules(f.table, chain)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("nftables: list chain %s: %w", chain.Name, err)
	}
	for _, r := range rules {
		if comment, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && match(comment) {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("nftables: delete rule %d: %w", r.Handle, err)
			}
		}
	}
	return nil
}

func flush(c *nftables.Conn) error {
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// ctDNATed matches connections that were DNATed (ct status dnat).
func ctDNATed() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// matchPrefix matches the header's address at offset (f.saddr or
// f.daddr) against p.
func (f *family) matchPrefix(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	mask := prefixNet(p).Mask
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: f.addrLen},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: f.addrLen, Mask: mask, Xor: make([]byte, f.addrLen)},
		&expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// matchOifname matches the output interface's name.
func matchOifname(name string, op expr.CmpOp) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

// ipsDstNAT is the conntrack status bit of a DNATed connection
// (IPS_DST_NAT in linux/netfilter/nf_conntrack_common.h).
const ipsDstNAT = 1 << 5

// elemChain is the chain a verdict map element jumps or goes to.
// google/nftables leaves a read element's verdict undecoded in Val: the
// attributes NFTA_VERDICT_CODE and NFTA_VERDICT_CHAIN.
func elemChain(e nftables.SetElement) string {
	if e.VerdictData != nil {
		return e.VerdictData.Chain
	}
	b := e.Val
	for len(b) >= 4 {
		n, typ := int(binary.NativeEndian.Uint16(b)), binary.NativeEndian.Uint16(b[2:])&0x3fff
		if n < 4 || n > len(b) {
			return ""
		}
		if typ == unix.NFTA_VERDICT_CHAIN {
			return strings.TrimRight(string(b[4:n]), "\x00")
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return ""
}
