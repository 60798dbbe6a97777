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

// hull's rules live in one nftables table of their own, "ip hull", which
// `nft list table ip hull` shows whole:
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
// carry the comment "hull net NETWORK", by which they are deleted.

const tableName = "hull"

var table = &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}

var (
	chainPorts       = &nftables.Chain{Name: "ports", Table: table}
	chainPrerouting  = &nftables.Chain{Name: "prerouting", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
	chainOutput      = &nftables.Chain{Name: "output", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest}
	chainPostrouting = &nftables.Chain{Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
)

// portMap is the map of protocol proto's published host ports.
func portMap(proto string) *nftables.Set {
	return &nftables.Set{Table: table, Name: proto + "-ports", IsMap: true, KeyType: nftables.TypeInetService, DataType: nftables.TypeVerdict}
}

// ctrChainPrefix starts the name of a container's chain: ctr-ID-NETWORK.
const ctrChainPrefix = "ctr-"

func ctrChain(id, network string) *nftables.Chain {
	return &nftables.Chain{Name: ctrChainPrefix + id + "-" + network, Table: table}
}

func netComment(network string) string { return "hull net " + network }

// setupTable makes the table, its maps and chains if they are missing.
// Two processes doing it at once add the jumps twice, which is harmless:
// dnat ends the evaluation.
func setupTable(c *nftables.Conn) error {
	if _, err := c.GetSetByName(table, portMap("udp").Name); err == nil {
		return nil
	}
	c.AddTable(table)
	c.AddChain(chainPorts)
	for _, ch := range []*nftables.Chain{chainPrerouting, chainOutput, chainPostrouting} {
		c.AddChain(ch)
	}
	for _, proto := range []string{"tcp", "udp"} {
		m := portMap(proto)
		if err := c.AddSet(m, nil); err != nil {
			return fmt.Errorf("nftables: map %s: %w", m.Name, err)
		}
		c.AddRule(&nftables.Rule{Table: table, Chain: chainPorts, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(proto)}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: m.Name, SetID: m.ID, DestRegister: 0, IsDestRegSet: true},
		}})
	}
	for _, ch := range []*nftables.Chain{chainPrerouting, chainOutput} {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainPorts.Name},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table ip %s: %w", tableName, err)
	}
	return nil
}

func protoNumber(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// addNetworkRules (re)writes network n's masquerade rules.
func addNetworkRules(n *Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := setupTable(c); err != nil {
		return err
	}
	if err := delRules(c, chainPostrouting, func(comment string) bool { return comment == netComment(n.Name) }); err != nil {
		return err
	}
	comment := userdata.AppendString(nil, userdata.TypeComment, netComment(n.Name))
	for _, r := range n.bridge.ranges {
		if !r.subnet.Addr().Is4() {
			continue // IPv6 ports are not published yet; no masquerade either
		}
		loopback := netip.MustParsePrefix("127.0.0.0/8")
		for _, src := range []netip.Prefix{loopback, r.subnet} {
			exprs := append(ctDNATed(), matchPrefix(12, src, expr.CmpOpEq)...)
			exprs = append(exprs, matchOifname(n.Bridge, expr.CmpOpEq)...)
			exprs = append(exprs, &expr.Masq{})
			c.AddRule(&nftables.Rule{Table: table, Chain: chainPostrouting, Exprs: exprs, UserData: comment})
		}
		if n.Masquerade {
			exprs := matchPrefix(12, r.subnet, expr.CmpOpEq)
			exprs = append(exprs, matchPrefix(16, r.subnet, expr.CmpOpNeq)...)
			exprs = append(exprs, matchPrefix(16, netip.MustParsePrefix("224.0.0.0/4"), expr.CmpOpNeq)...)
			exprs = append(exprs, matchOifname(n.Bridge, expr.CmpOpNeq)...)
			exprs = append(exprs, &expr.Masq{})
			c.AddRule(&nftables.Rule{Table: table, Chain: chainPostrouting, Exprs: exprs, UserData: comment})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: network %s's rules: %w", n.Name, err)
	}
	return nil
}

// deleteNetworkRules deletes network name's rules, if any.
func deleteNetworkRules(name string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := delRules(c, chainPostrouting, func(comment string) bool { return comment == netComment(name) }); err != nil {
		return err
	}
	return flush(c)
}

// addPortRules publishes attachment a's ports: its chain of DNAT rules
// and the maps' elements pointing to it, in one batch.
func addPortRules(n *Network, a *Attachment) error {
	cip, _ := a.IPv4()
	if !cip.IsValid() {
		return errors.New("publish ports: the container has no IPv4 address (IPv6 ports are not published yet)")
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ch := c.AddChain(ctrChain(a.ContainerID, a.Network))
	elems := map[string][]nftables.SetElement{}
	for _, p := range a.Ports {
		var exprs []expr.Any
		if p.HostIP.IsValid() {
			exprs = matchPrefix(16, netip.PrefixFrom(p.HostIP, 32), expr.CmpOpEq)
		}
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(p.Protocol)}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
			&expr.Immediate{Register: 1, Data: cip.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: exprs})
		elems[p.Protocol] = append(elems[p.Protocol], nftables.SetElement{
			Key: binaryutil.BigEndian.PutUint16(p.HostPort), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: ch.Name}})
	}
	for proto, e := range elems {
		if err := c.SetAddElements(portMap(proto), e); err != nil {
			return fmt.Errorf("nftables: publish ports: %w", err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publish ports: %w", err)
	}
	return nil
}

// deletePortRules unpublishes container id's ports on network: the map
// elements, then its chain, in one batch; a missing chain has nothing to
// delete.
func deletePortRules(id, network string, ports []PortMapping) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ch := ctrChain(id, network)
	queue := func() {
		elems := map[string][]nftables.SetElement{}
		for _, p := range ports {
			elems[p.Protocol] = append(elems[p.Protocol], nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p.HostPort)})
		}
		for proto, e := range elems {
			c.SetDeleteElements(portMap(proto), e)
		}
		c.FlushChain(ch)
		c.DelChain(ch)
	}
	queue()
	if err := c.Flush(); err == nil {
		return nil
	}
	// Not all of it is there (a removal already done, a table flushed
	// by hand): what is left of it, found by looking.
	if _, err := c.ListChain(table, ch.Name); err != nil {
		return nil
	}
	return deleteChainAndElements(c, map[string]bool{ch.Name: true})
}

// deleteChainAndElements deletes the containers' chains named in chains
// and the map elements that point to them.
func deleteChainAndElements(c *nftables.Conn, chains map[string]bool) error {
	for _, proto := range []string{"tcp", "udp"} {
		m := portMap(proto)
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
		ch := &nftables.Chain{Name: name, Table: table}
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
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
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
	if len(dead) == 0 {
		return nil
	}
	return deleteChainAndElements(c, dead)
}

// delRules queues the deletion of chain's rules whose comment matches; a
// missing table or chain has none.
func delRules(c *nftables.Conn, chain *nftables.Chain, match func(comment string) bool) error {
	rules, err := c.GetRules(table, chain)
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

// matchPrefix matches the IPv4 header's address at offset (12 source,
// 16 destination) against p.
func matchPrefix(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	mask := prefixNet(p).Mask
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
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
