package network

import (
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
//	chain prerouting  { type nat hook prerouting priority dstnat;  fib daddr type local jump ports }
//	chain output      { type nat hook output priority dstnat;      fib daddr type local jump ports }
//	chain ports       { [ip daddr HOSTIP] meta l4proto tcp th dport HOSTPORT dnat to CIP:CPORT  # one per published port }
//	chain postrouting { type nat hook postrouting priority srcnat;
//	                    ct status dnat ip saddr 127.0.0.0/8 oifname BR masquerade  # 127.0.0.1:PORT from the host
//	                    ct status dnat ip saddr SUBNET oifname BR masquerade      # a container to a published port of its network
//	                    ip saddr SUBNET ip daddr != SUBNET ... oifname != BR masquerade  # ipMasq networks only }
//
// DNAT in prerouting serves other hosts and containers, in output the
// host itself; "fib daddr type local" keeps it to the host's own
// addresses. Masquerading is only for DNATed connections that would
// otherwise come back on another path (the hairpin and loopback cases,
// portmap's SNAT), plus the bridge plugin's ipMasq for the network's
// traffic to the outside. Each rule carries a comment naming its owner,
// "hull ctr ID NETWORK" or "hull net NETWORK", by which it is deleted.

const tableName = "hull"

var table = &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}

var (
	chainPorts       = &nftables.Chain{Name: "ports", Table: table}
	chainPrerouting  = &nftables.Chain{Name: "prerouting", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
	chainOutput      = &nftables.Chain{Name: "output", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest}
	chainPostrouting = &nftables.Chain{Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
)

func ctrComment(id, network string) string { return "hull ctr " + id + " " + network }
func netComment(network string) string     { return "hull net " + network }

// setupTable makes the table and its chains if the ports chain is
// missing. Two processes doing it at once add the jumps twice, which is
// harmless: dnat ends the evaluation.
func setupTable(c *nftables.Conn) error {
	if _, err := c.ListChain(table, chainPorts.Name); err == nil {
		return nil
	}
	c.AddTable(table)
	c.AddChain(chainPorts)
	for _, ch := range []*nftables.Chain{chainPrerouting, chainOutput, chainPostrouting} {
		c.AddChain(ch)
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

// addPortRules adds the DNAT rules of attachment a's published ports.
func addPortRules(n *Network, a *Attachment) error {
	cip, _ := a.IPv4()
	if !cip.IsValid() {
		return errors.New("publish ports: the container has no IPv4 address (IPv6 ports are not published yet)")
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	comment := userdata.AppendString(nil, userdata.TypeComment, ctrComment(a.ContainerID, a.Network))
	for _, p := range a.Ports {
		var exprs []expr.Any
		if p.HostIP.IsValid() {
			exprs = matchPrefix(16, netip.PrefixFrom(p.HostIP, 32), expr.CmpOpEq)
		}
		proto := byte(unix.IPPROTO_TCP)
		if p.Protocol == "udp" {
			proto = unix.IPPROTO_UDP
		}
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
			&expr.Immediate{Register: 1, Data: cip.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		c.AddRule(&nftables.Rule{Table: table, Chain: chainPorts, Exprs: exprs, UserData: comment})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publish ports: %w", err)
	}
	return nil
}

// deletePortRules deletes container id's rules on network.
func deletePortRules(id, network string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := delRules(c, chainPorts, func(comment string) bool { return comment == ctrComment(id, network) }); err != nil {
		return err
	}
	return flush(c)
}

// sweepRules deletes the port rules of containers that are gone.
func sweepRules(alive func(string) bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	err = delRules(c, chainPorts, func(comment string) bool {
		f := strings.Fields(comment)
		return len(f) == 4 && f[0] == "hull" && f[1] == "ctr" && !alive(f[2])
	})
	if err != nil {
		return err
	}
	return flush(c)
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
