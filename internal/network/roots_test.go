package network

import (
	"context"
	"testing"
)

// TestNetworksOfOtherRoots: hulls with different roots on one host each
// have a network of the same name (every root's default network is
// "bridge") on a bridge of its own, and their rules share hull's
// nftables table. Making one's bridge and removing the network leave the
// other's masquerade rules whole (the loopback rule among them: without
// it 127.0.0.1:PORT of the other's containers times out).
func TestNetworksOfOtherRoots(t *testing.T) {
	ctx := context.Background()
	name := "t" + randHex(4)
	setUp := func(subnet string) (*Manager, *Network) {
		m := newManager(t, Options{})
		n, err := m.Create(ctx, CreateOptions{Name: name, Subnet: subnet, BridgeName: "hullt" + randHex(4)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Remove(ctx, name) })
		_, path := newNetNS(t)
		attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: path, Network: name}) // makes the bridge and the rules
		return m, n
	}
	_, first := setUp("10.231.38.0/24")
	if rules := networkRules(t, first.Bridge); len(rules) != 3 {
		t.Fatalf("network rules: %d, want loopback and hairpin masquerade and ipMasq", len(rules))
	}
	other, second := setUp("10.231.39.0/24")
	if rules := networkRules(t, first.Bridge); len(rules) != 3 {
		t.Fatalf("after another root made its network %s (bridge %s), the first's (bridge %s) has %d rules, want 3", name, second.Bridge, first.Bridge, len(rules))
	}
	for _, a := range mustAttachments(t, other, name) {
		if err := other.Detach(ctx, a.ContainerID, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if rules := networkRules(t, first.Bridge); len(rules) != 3 {
		t.Fatalf("after another root removed its network %s, the first's has %d rules, want 3", name, len(rules))
	}
}

func mustAttachments(t *testing.T, m *Manager, network string) []*Attachment {
	t.Helper()
	as, err := m.AttachmentsOf(network)
	if err != nil {
		t.Fatal(err)
	}
	return as
}
