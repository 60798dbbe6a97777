package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
)

// TestAttachPublishDetach: a container on a bridge network gets eth0
// with an address and a default route; the host reaches it directly and
// through its published port on 127.0.0.1 and on the host's own address;
// another container reaches it through the published port; Detach leaves
// nothing.
func TestAttachPublishDetach(t *testing.T) {
	for _, plugins := range []bool{false, true} {
		t.Run(map[bool]string{false: "native", true: "plugins"}[plugins], func(t *testing.T) {
			m := newManager(t, Options{UsePlugins: plugins})
			n := testNetwork(t, m, fmt.Sprintf("10.231.%d.0/24", 10+map[bool]int{false: 0, true: 1}[plugins]))
			if n.Native == plugins {
				t.Fatalf("network Native = %v with UsePlugins %v", n.Native, plugins)
			}
			ctx := context.Background()
			ns, nsPath := newNetNS(t)
			ports, err := ParsePorts([]string{"80", "127.0.0.1::80"})
			if err != nil {
				t.Fatal(err)
			}
			id := containerID()
			a := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: nsPath, Network: n.Name, Ports: ports})
			ip, gw := a.IPv4()
			if want := netip.MustParsePrefix(n.Subnets[0].Subnet.String()); !want.Contains(ip.Addr()) || ip.Bits() != 24 {
				t.Fatalf("address %s is not in %s", ip, want)
			}
			if gw != n.Subnets[0].Gateway || a.MAC == "" || len(a.Ports) != 2 {
				t.Fatalf("attachment %+v: want gateway %s, a MAC, 2 ports", a, n.Subnets[0].Gateway)
			}
			for _, p := range a.Ports {
				if p.HostPort == 0 {
					t.Fatalf("port %v got no host port", p)
				}
			}
			out := run(t, "ip", "-n", ns, "-4", "addr", "show", "eth0")
			if !strings.Contains(out, ip.String()) || !strings.Contains(out, "state UP") {
				t.Fatalf("eth0 in the container:\n%s", out)
			}
			if out := run(t, "ip", "-n", ns, "route"); !strings.Contains(out, "default via "+gw.String()+" dev eth0") {
				t.Fatalf("routes in the container:\n%s", out)
			}
			if out := run(t, "ip", "-n", ns, "link", "show", "lo"); !strings.Contains(out, "UP") {
				t.Fatalf("lo in the container is down:\n%s", out)
			}
			// The host side is the bridge plugin's: the veth on the bridge,
			// the gateway on the bridge.
			br, err := netlink.LinkByName(n.Bridge)
			if err != nil {
				t.Fatal(err)
			}
			if out := run(t, "ip", "-4", "addr", "show", n.Bridge); !strings.Contains(out, gw.String()+"/24") {
				t.Fatalf("bridge %s:\n%s", n.Bridge, out)
			}
			links, _ := netlink.LinkList()
			onBridge := 0
			for _, l := range links {
				if l.Attrs().MasterIndex == br.Attrs().Index && l.Type() == "veth" {
					onBridge++
				}
			}
			if onBridge != 1 {
				t.Fatalf("%d veths on bridge %s, want 1", onBridge, n.Bridge)
			}
			run(t, "busybox", "ping", "-c", "1", "-W", "2", ip.Addr().String())

			serve(t, ns, ip.Addr())
			if got, err := fetch(net.JoinHostPort(ip.Addr().String(), "80")); got != "hi" {
				t.Fatalf("direct to %s:80: %q, %v", ip.Addr(), got, err)
			}
			all, local := a.Ports[0], a.Ports[1]
			for _, target := range []string{
				fmt.Sprintf("127.0.0.1:%d", all.HostPort),
				fmt.Sprintf("%s:%d", hostAddress(t), all.HostPort),
				fmt.Sprintf("127.0.0.1:%d", local.HostPort),
			} {
				if got, err := fetch(target); got != "hi" {
					t.Errorf("published port %s: %q, %v", target, got, err)
				}
			}
			// 127.0.0.1::80 is on loopback only.
			if got, err := fetch(fmt.Sprintf("%s:%d", hostAddress(t), local.HostPort)); err == nil && got == "hi" {
				t.Errorf("port %v published on 127.0.0.1 answers on %s", local, hostAddress(t))
			}

			// The container reaches itself through its published port
			// (hairpin: out and back in on its own bridge port).
			if got, err := fetchFrom(ns, hostAddress(t).String(), all.HostPort); got != "hi" {
				t.Errorf("hairpin to %s:%d: %q, %v", hostAddress(t), all.HostPort, got, err)
			}
			// A second container reaches the first through the published
			// port, on the host's address and the gateway's.
			ns2, ns2Path := newNetNS(t)
			id2 := containerID()
			attach(t, m, AttachRequest{ContainerID: id2, NetNSPath: ns2Path, Network: n.Name})
			for _, host := range []string{hostAddress(t).String(), gw.String()} {
				if got, err := fetchFrom(ns2, host, all.HostPort); got != "hi" {
					t.Errorf("from a second container to %s:%d: %q, %v", host, all.HostPort, got, err)
				}
			}

			if err := m.Detach(ctx, id, n.Name, nsPath); err != nil {
				t.Fatal(err)
			}
			if err := m.Detach(ctx, id, n.Name, nsPath); err != nil {
				t.Fatalf("second detach: %v", err)
			}
			if out := run(t, "ip", "-n", ns, "link"); strings.Contains(out, "eth0") {
				t.Fatalf("eth0 outlived Detach:\n%s", out)
			}
			if _, err := fetch(fmt.Sprintf("127.0.0.1:%d", all.HostPort)); err == nil {
				t.Errorf("published port %d still answers after Detach", all.HostPort)
			}
			checkClean(t, m, id, n)
			if err := m.Detach(ctx, id2, n.Name, ""); err != nil {
				t.Fatal(err)
			}
			checkClean(t, m, id2, n)
		})
	}
}

// TestTwoContainersReachEachOther: two namespaces on one bridge talk
// directly, address to address.
func TestTwoContainersReachEachOther(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.20.0/24")
	nsA, pathA := newNetNS(t)
	nsB, pathB := newNetNS(t)
	a := attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: pathA, Network: n.Name})
	b := attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: pathB, Network: n.Name, IP: []netip.Addr{netip.MustParseAddr("10.231.20.200")}, MAC: "02:42:0a:e7:14:c8"})
	ipA, _ := a.IPv4()
	ipB, _ := b.IPv4()
	if ipB.Addr() != netip.MustParseAddr("10.231.20.200") || b.MAC != "02:42:0a:e7:14:c8" {
		t.Fatalf("static address and MAC: got %s %s", ipB, b.MAC)
	}
	if ipA == ipB {
		t.Fatalf("both got %s", ipA)
	}
	serve(t, nsB, ipB.Addr())
	if got, err := fetchFrom(nsA, ipB.Addr().String(), 80); got != "hi" {
		t.Fatalf("A to B: %q, %v", got, err)
	}
	run(t, "ip", "netns", "exec", nsB, "busybox", "ping", "-c", "1", "-W", "2", ipA.Addr().String())
	// The static address is taken now.
	_, pathC := newNetNS(t)
	_, err := m.Attach(context.Background(), AttachRequest{ContainerID: containerID(), NetNSPath: pathC, Network: n.Name, IP: []netip.Addr{ipB.Addr()}})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second container on %s: %v", ipB.Addr(), err)
	}
}

// TestPoolExhausted: a full network says so, and the refused container
// leaves nothing.
func TestPoolExhausted(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.21.0/30") // .1 gateway, .2 the only address
	_, p1 := newNetNS(t)
	_, p2 := newNetNS(t)
	attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: p1, Network: n.Name})
	id := containerID()
	_, err := m.Attach(context.Background(), AttachRequest{ContainerID: id, NetNSPath: p2, Network: n.Name})
	if err == nil || !strings.Contains(err.Error(), "no free address in 10.231.21.0/30") {
		t.Fatalf("attach to a full network: %v", err)
	}
	checkClean(t, m, id, n)
}

// TestCreateRefusesOverlaps: a subnet overlapping another network's or a
// host route is refused, naming what it overlaps.
func TestCreateRefusesOverlaps(t *testing.T) {
	m := newManager(t, Options{})
	ctx := context.Background()
	n := testNetwork(t, m, "10.231.22.0/24")
	_, err := m.Create(ctx, CreateOptions{Name: "overlap", Subnet: "10.231.22.128/25"})
	if err == nil || !strings.Contains(err.Error(), "overlaps network "+n.Name) {
		t.Fatalf("overlapping network: %v", err)
	}
	// The default network's subnet is taken by it too.
	_, err = m.Create(ctx, CreateOptions{Name: "overlap", Subnet: "10.88.1.0/24"})
	if err == nil || !strings.Contains(err.Error(), "overlaps network bridge") {
		t.Fatalf("overlapping the default network: %v", err)
	}
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsLoopback() || r.Dst.IP.IsLinkLocalUnicast() {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err != nil || l.Type() == "bridge" {
			continue
		}
		_, err = m.Create(ctx, CreateOptions{Name: "overlap", Subnet: r.Dst.String()})
		if err == nil || !strings.Contains(err.Error(), "overlaps the host's route") {
			t.Fatalf("subnet of host route %s: %v", r.Dst, err)
		}
		break
	}
	if _, err := os.Stat(m.confPath("overlap")); err == nil {
		t.Fatal("a refused network left its conflist")
	}
	if _, err := m.Create(ctx, CreateOptions{Name: n.Name}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create %s twice: %v", n.Name, err)
	}
	if _, err := m.Inspect(ctx, "nonesuch"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inspect nonesuch: %v", err)
	}
}

// TestPortInUse: a host port bound by anything (tcp or udp), or published
// by another container, fails Attach before anything is set up.
func TestPortInUse(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.23.0/24")
	ctx := context.Background()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	tcpPort := l.Addr().(*net.TCPAddr).Port
	udpPort := u.LocalAddr().(*net.UDPAddr).Port
	for _, spec := range []string{fmt.Sprintf("%d:80", tcpPort), fmt.Sprintf("%d:53/udp", udpPort)} {
		_, path := newNetNS(t)
		ports, err := ParsePorts([]string{"81", spec}) // the first is reserved, then given back
		if err != nil {
			t.Fatal(err)
		}
		id := containerID()
		_, err = m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: n.Name, Ports: ports})
		if err == nil || !strings.Contains(err.Error(), "already in use") {
			t.Fatalf("publish %s: %v", spec, err)
		}
		checkClean(t, m, id, n)
	}
	// Published by another container.
	_, p1 := newNetNS(t)
	a := attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: p1, Network: n.Name, Ports: []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}})
	_, p2 := newNetNS(t)
	id := containerID()
	_, err = m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: p2, Network: n.Name, Ports: []PortMapping{{HostPort: a.Ports[0].HostPort, ContainerPort: 80, Protocol: "tcp"}}})
	if err == nil || !strings.Contains(err.Error(), "already published by container "+a.ContainerID[:12]) {
		t.Fatalf("publish a published port: %v", err)
	}
	checkClean(t, m, id, n)
	// A range gives the first free port of it.
	first := a.Ports[0].HostPort
	b := attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: p2, Network: n.Name,
		Ports: []PortMapping{{HostPort: first, HostPortEnd: first + 20, ContainerPort: 80, Protocol: "tcp"}}})
	if got := b.Ports[0].HostPort; got <= first || got > first+20 {
		t.Fatalf("range %d-%d gave port %d", first, first+20, got)
	}
}

// TestDetachAfterNetNSGone: the namespace deleted first takes the veth
// pair; Detach still frees the address, port and rules.
func TestDetachAfterNetNSGone(t *testing.T) {
	for _, plugins := range []bool{false, true} {
		t.Run(map[bool]string{false: "native", true: "plugins"}[plugins], func(t *testing.T) {
			m := newManager(t, Options{UsePlugins: plugins})
			n := testNetwork(t, m, fmt.Sprintf("10.231.%d.0/24", 24+map[bool]int{false: 0, true: 1}[plugins]))
			ns, path := newNetNS(t)
			id := containerID()
			attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: n.Name, Ports: []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}})
			run(t, "ip", "netns", "del", ns)
			if err := m.Detach(context.Background(), id, n.Name, ""); err != nil {
				t.Fatal(err)
			}
			// Addresses, ports and rules are free at once; the veth goes
			// with the namespace, in the kernel's time, and a Released
			// record stays for Reclaim if it had not gone yet.
			as, _ := m.Attachments(id)
			if len(as) > 0 && (!as[0].Released || len(as[0].Addresses) > 0 || len(as[0].Ports) > 0) {
				t.Fatalf("after Detach: %+v", as[0])
			}
			if rules := containerRules(t, id); len(rules) > 0 {
				t.Fatalf("rules after Detach: %v", rules)
			}
			// Reclaim leaves the veth to the namespace's end (releaseGrace),
			// which the kernel gets to soon; then it drops the record.
			veth := vethName(id, n.Name, "eth0")
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if _, err := netlink.LinkByName(veth); err != nil {
					break
				}
			}
			if err := m.Reclaim(context.Background(), func(string) bool { return false }); err != nil {
				t.Fatal(err)
			}
			checkClean(t, m, id, n)
		})
	}
}

// TestReclaimLeavesAReleasedVethItsGrace: for a long-lived caller
// (DeferReleasedVeths), a veth whose namespace is ending is not deleted by
// the next Reclaim (that is 15-30 ms of kernel time on the next attach's
// path, and the namespace's end deletes it anyway); once releaseGrace has
// passed with the namespace still there (a process leaked into it),
// Reclaim deletes it.
func TestReclaimLeavesAReleasedVethItsGrace(t *testing.T) {
	m := newManager(t, Options{})
	m.DeferReleasedVeths(true)
	n := testNetwork(t, m, "10.231.27.0/24")
	ns, path := newNetNS(t)
	id := containerID()
	attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: n.Name})
	// The namespace outlives its pin: a descriptor holds it.
	hold, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	run(t, "ip", "netns", "del", ns)
	ctx := context.Background()
	if err := m.Detach(ctx, id, n.Name, ""); err != nil {
		t.Fatal(err)
	}
	as, _ := m.Attachments(id)
	if len(as) != 1 || !as[0].Released || as[0].ReleasedAt.IsZero() {
		t.Fatalf("after Detach with the namespace held: %+v, want a Released record with its time", as)
	}
	veth := vethName(id, n.Name, "eth0")
	if err := m.Reclaim(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(veth); err != nil {
		t.Fatalf("Reclaim within the grace deleted the veth: %v", err)
	}
	if as, _ := m.Attachments(id); len(as) != 1 {
		t.Fatalf("Reclaim within the grace dropped the record: %+v", as)
	}
	as[0].ReleasedAt = time.Now().Add(-releaseGrace - time.Second)
	if err := m.writeRecord(as[0]); err != nil {
		t.Fatal(err)
	}
	if err := m.Reclaim(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, id, n)
}

// TestReclaim: a killed hull leaves records, addresses, veths, rules and
// port reservations; Reclaim undoes those of dead containers and keeps
// those of live ones; Sweep frees what a lost record leaves.
func TestReclaim(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.26.0/24")
	ctx := context.Background()
	_, pDead := newNetNS(t)
	_, pHalf := newNetNS(t)
	_, pLive := newNetNS(t)
	dead, half, live := containerID(), containerID(), containerID()
	ports := []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}
	// "Crash": attached, never detached (no t.Cleanup detach).
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: dead, NetNSPath: pDead, Network: n.Name, Ports: ports}); err != nil {
		t.Fatal(err)
	}
	// Killed between the address and the record's update: the record
	// does not know its address.
	ah, err := m.Attach(ctx, AttachRequest{ContainerID: half, NetNSPath: pHalf, Network: n.Name, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	ah.Addresses, ah.MAC = nil, ""
	if err := m.writeRecord(ah); err != nil {
		t.Fatal(err)
	}
	al := attach(t, m, AttachRequest{ContainerID: live, NetNSPath: pLive, Network: n.Name, Ports: ports})

	// A fresh manager, as the next hull process.
	m2, err := Open(filepath.Dir(m.confDir), filepath.Dir(m.runDir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Reclaim(ctx, func(id string) bool { return id == live }); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, dead, n)
	checkClean(t, m, half, n)
	if _, err := netlink.LinkByName(al.HostVeth); err != nil {
		t.Fatalf("Reclaim took a live container's veth: %v", err)
	}
	if rules := containerRules(t, live); len(rules) != 2 { // its chain and its port's element
		t.Fatalf("live container's rules after Reclaim: %v", rules)
	}
	if as, _ := m.Attachments(live); len(as) != 1 {
		t.Fatalf("live container's attachments after Reclaim: %v", as)
	}

	// A record lost: the address, port and rules stay until Sweep.
	_, pLost := newNetNS(t)
	lost := containerID()
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: lost, NetNSPath: pLost, Network: n.Name, Ports: ports}); err != nil {
		t.Fatal(err)
	}
	as, _ := m.Attachments(lost)
	if err := os.RemoveAll(filepath.Join(m.attachDir, lost)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(as[0].HostVeth) }) // should Sweep miss it
	if err := m2.Sweep(ctx, func(id string) bool { return id == live }); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, lost, n)
}

// TestThirdPartyConflist: a conflist hull does not implement itself (here
// the bridge plugin with an option hull does not know) runs through
// libcni; a missing plugin is named with where to get it.
func TestThirdPartyConflist(t *testing.T) {
	m := newManager(t, Options{})
	bridge := "hullt" + randHex(4)
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "third", "plugins": [
	  {"type": "bridge", "bridge": %q, "isGateway": true, "promiscMode": true,
	   "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.231.27.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
	  {"type": "tuning"}]}`, bridge, m.ipamDir)
	if err := os.WriteFile(m.confPath("third"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(bridge) })
	ctx := context.Background()
	n, err := m.Inspect(ctx, "third")
	if err != nil {
		t.Fatal(err)
	}
	if n.Native {
		t.Fatal("a conflist with promiscMode is taken as native")
	}
	ns, path := newNetNS(t)
	id := containerID()
	a := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: "third"})
	ip, gw := a.IPv4()
	if !netip.MustParsePrefix("10.231.27.0/24").Contains(ip.Addr()) || gw != netip.MustParseAddr("10.231.27.1") {
		t.Fatalf("attachment %+v", a)
	}
	serve(t, ns, ip.Addr())
	if got, err := fetch(net.JoinHostPort(ip.Addr().String(), "80")); got != "hi" {
		t.Fatalf("to %s: %q, %v", ip.Addr(), got, err)
	}
	if err := m.Detach(ctx, id, "third", ""); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, id, n)
	if err := m.Remove(ctx, "third"); err != nil {
		t.Fatal(err)
	}

	missing := strings.Replace(conf, `{"type": "tuning"}`, `{"type": "hull-no-such-plugin"}`, 1)
	os.WriteFile(m.confPath("third"), []byte(missing), 0o644)
	_, err = m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: "third"})
	if err == nil || !strings.Contains(err.Error(), `CNI plugin "hull-no-such-plugin" not found in /usr/lib/cni, /opt/cni/bin`) {
		t.Fatalf("missing plugin: %v", err)
	}
	m2 := newManager(t, Options{PluginDirs: []string{t.TempDir()}, UsePlugins: true})
	testNetwork(t, m2, "10.231.28.0/24")
	n2, _ := m2.List(ctx)
	for _, nn := range n2 {
		if nn.Name == DefaultNetwork {
			continue
		}
		_, err = m2.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: nn.Name})
		if err == nil || !strings.Contains(err.Error(), `CNI plugin "bridge" not found`) || !strings.Contains(err.Error(), "apt-get install containernetworking-plugins") {
			t.Fatalf("missing reference plugin: %v", err)
		}
	}
}

// TestDefaultNetwork: the default network exists on first use with
// docker's name and podman's layout, as a conflist others can read.
func TestDefaultNetwork(t *testing.T) {
	m := newManager(t, Options{})
	n, err := m.Inspect(context.Background(), DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	if n.Bridge != "hull0" || n.Subnets[0].Subnet.String() != "10.88.0.0/16" || n.Subnets[0].Gateway.String() != "10.88.0.1" || !n.Native || !n.Masquerade {
		t.Fatalf("default network %+v", n)
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(m.confDir), "networks", "bridge.conflist"))
	if err != nil || !strings.Contains(string(data), `"cniVersion": "1.0.0"`) || !strings.Contains(string(data), `"type": "portmap"`) {
		t.Fatalf("bridge.conflist: %v\n%s", err, data)
	}
}

// TestInternalIPv6: an internal network has no route out; an IPv6 one
// gives the container an address the host reaches over the bridge, and
// publishes its ports on IPv6 too.
func TestInternalIPv6(t *testing.T) {
	m := newManager(t, Options{})
	ctx := context.Background()
	name := "t" + randHex(4)
	n, err := m.Create(ctx, CreateOptions{Name: name, Subnet: "10.231.29.0/24", BridgeName: "hullt" + randHex(4), Internal: true, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(ctx, name) })
	if !n.Native || !n.Internal || !n.IPv6 || n.Masquerade || len(n.Subnets) != 2 || !n.Subnets[1].Subnet.Addr().Is6() {
		t.Fatalf("network %+v", n)
	}
	ns, path := newNetNS(t)
	id := containerID()
	a := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: name, Ports: []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}})
	v6, gw6 := a.IPv6()
	if !n.Subnets[1].Subnet.Contains(v6.Addr()) || gw6 != n.Subnets[1].Gateway {
		t.Fatalf("IPv6 address %s gateway %s, want in %s", v6, gw6, n.Subnets[1].Subnet)
	}
	if out := run(t, "ip", "-n", ns, "route") + run(t, "ip", "-n", ns, "-6", "route"); strings.Contains(out, "default") {
		t.Fatalf("an internal network's container has a default route:\n%s", out)
	}
	run(t, "busybox", "ping", "-6", "-c", "1", "-W", "2", v6.Addr().String())
	// Its published port answers on both families: on the gateway's
	// IPv6 address (on the bridge, so no forwarding is needed) and on
	// 127.0.0.1.
	serve(t, ns, v6.Addr())
	for _, target := range []string{
		fmt.Sprintf("[%s]:%d", gw6, a.Ports[0].HostPort),
		fmt.Sprintf("127.0.0.1:%d", a.Ports[0].HostPort),
	} {
		if got, err := fetch(target); got != "hi" {
			t.Errorf("published port %s: %q, %v", target, got, err)
		}
	}
	if as, err := m.AttachmentsOf(name); err != nil || len(as) != 1 || as[0].ContainerID != id {
		t.Fatalf("AttachmentsOf: %v %v", as, err)
	}
	if err := m.Detach(ctx, id, name, path); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, id, n)
}

// TestConcurrentAttach: hull processes attaching at once (managers of
// their own on the same roots) never hand out one address twice.
func TestConcurrentAttach(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.30.0/24")
	ctx := context.Background()
	const k = 12
	paths := make([]string, k)
	for i := range paths {
		_, paths[i] = newNetNS(t)
	}
	type result struct {
		a   *Attachment
		err error
	}
	results := make(chan result, k)
	for i := range k {
		go func() {
			mi, err := Open(filepath.Dir(m.confDir), filepath.Dir(m.runDir), Options{})
			if err != nil {
				results <- result{err: err}
				return
			}
			a, err := mi.Attach(ctx, AttachRequest{ContainerID: containerID(), NetNSPath: paths[i], Network: n.Name,
				Ports: []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}})
			results <- result{a, err}
		}()
	}
	seen := map[netip.Prefix]bool{}
	ports := map[uint16]bool{}
	for range k {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		t.Cleanup(func() { m.Detach(ctx, r.a.ContainerID, n.Name, "") })
		ip, _ := r.a.IPv4()
		if seen[ip] || ports[r.a.Ports[0].HostPort] {
			t.Errorf("address %s or host port %d handed out twice", ip, r.a.Ports[0].HostPort)
		}
		seen[ip], ports[r.a.Ports[0].HostPort] = true, true
	}
}

// TestTwoNetworks: a container on two networks has eth0 and eth1, and
// its default route is the first network's, as docker's.
func TestTwoNetworks(t *testing.T) {
	m := newManager(t, Options{})
	a := testNetwork(t, m, "10.231.31.0/24")
	b := testNetwork(t, m, "10.231.32.0/24")
	ns, path := newNetNS(t)
	id := containerID()
	attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: a.Name})
	eth1 := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: b.Name, IfName: "eth1"})
	if ip, _ := eth1.IPv4(); !b.Subnets[0].Subnet.Contains(ip.Addr()) {
		t.Fatalf("eth1: %s", ip)
	}
	if out := run(t, "ip", "-n", ns, "route"); !strings.Contains(out, "default via 10.231.31.1 dev eth0") || !strings.Contains(out, "10.231.32.0/24 dev eth1") {
		t.Fatalf("routes:\n%s", out)
	}
	if as, _ := m.Attachments(id); len(as) != 2 {
		t.Fatalf("attachments: %v", as)
	}
	ctx := context.Background()
	for _, n := range []*Network{b, a} {
		if err := m.Detach(ctx, id, n.Name, ""); err != nil {
			t.Fatal(err)
		}
	}
	checkClean(t, m, id, a)
	checkClean(t, m, id, b)
}

// TestDefaultNetworkOptions: the default network's bridge and subnet can
// be another's (hulls with run roots of their own, as tests).
func TestDefaultNetworkOptions(t *testing.T) {
	m := newManager(t, Options{DefaultBridge: "hullt" + randHex(4), DefaultSubnet: "10.231.33.0/24"})
	ctx := context.Background()
	n, err := m.Inspect(ctx, DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(ctx, DefaultNetwork) })
	if !strings.HasPrefix(n.Bridge, "hullt") || n.Subnets[0].Gateway.String() != "10.231.33.1" {
		t.Fatalf("default network %+v", n)
	}
	_, path := newNetNS(t)
	id := containerID()
	a := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path})
	if ip, _ := a.IPv4(); ip.String() != "10.231.33.2/24" || a.Network != DefaultNetwork {
		t.Fatalf("attachment %+v", a)
	}
	if err := m.Detach(ctx, id, "", ""); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, id, n)
}

// TestCreateInspectRemove: what Create is given comes back from the
// conflist; the network's bridge and rules exist while it is used and go
// with Remove. (The masquerade rule is only looked at: tests send
// nothing to the outside.)
func TestCreateInspectRemove(t *testing.T) {
	m := newManager(t, Options{})
	ctx := context.Background()
	name := "t" + randHex(4)
	br := "hullt" + randHex(4)
	n, err := m.Create(ctx, CreateOptions{Name: name, Subnet: "10.231.34.0/24", Gateway: "10.231.34.254", IPRange: "10.231.34.128/25",
		BridgeName: br, Labels: map[string]string{"app": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(ctx, name); deleteLink(br) })
	got, err := m.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Subnets[0]
	if got.ID != n.ID || len(got.ID) != 64 || got.Bridge != br || s.Gateway.String() != "10.231.34.254" || s.IPRange.String() != "10.231.34.128/25" ||
		got.Labels["app"] != "web" || !got.Masquerade || !got.Native || got.Driver != "bridge" {
		t.Fatalf("inspect: %+v", got)
	}
	data, _ := json.Marshal(got)
	for _, want := range []string{`"Name":"` + name + `"`, `"Driver":"bridge"`, `"Subnet":"10.231.34.0/24"`, `"IPRange":"10.231.34.128/25"`, `"com.docker.network.bridge.name":"` + br + `"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("inspect JSON lacks %s: %s", want, data)
		}
	}
	_, path := newNetNS(t)
	id := containerID()
	a := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path, Network: name})
	if ip, gw := a.IPv4(); ip.String() != "10.231.34.128/24" || gw.String() != "10.231.34.254" {
		t.Fatalf("address %s gateway %s: want the range's first, the given gateway", ip, gw)
	}
	if rules := networkRules(t, br); len(rules) != 3 {
		t.Fatalf("network rules: %d, want loopback and hairpin masquerade and ipMasq", len(rules))
	}
	if err := m.Detach(ctx, id, name, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if linkExists(br) || len(networkRules(t, br)) > 0 {
		t.Fatal("bridge or rules outlived Remove")
	}
	if _, err := m.Inspect(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inspect after remove: %v", err)
	}
}

// networkRules are network name's postrouting rules, in both tables.
func networkRules(t *testing.T, bridge string) []*nftables.Rule {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	var out []*nftables.Rule
	for _, f := range families {
		rules, _ := c.GetRules(f.table, f.chainPostroute)
		for _, r := range rules {
			if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && s == netComment(bridge) {
				out = append(out, r)
			}
		}
	}
	return out
}

// TestPluginsAndNativeShareThePool: the host-local plugin and the native
// path hand out addresses from one store, file for file.
func TestPluginsAndNativeShareThePool(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.36.0/24")
	mp, err := Open(filepath.Dir(m.confDir), filepath.Dir(m.runDir), Options{UsePlugins: true})
	if err != nil {
		t.Fatal(err)
	}
	_, p1 := newNetNS(t)
	_, p2 := newNetNS(t)
	_, p3 := newNetNS(t)
	a := attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: p1, Network: n.Name})
	b := attach(t, mp, AttachRequest{ContainerID: containerID(), NetNSPath: p2, Network: n.Name})
	c := attach(t, m, AttachRequest{ContainerID: containerID(), NetNSPath: p3, Network: n.Name})
	ipA, _ := a.IPv4()
	ipB, _ := b.IPv4()
	ipC, _ := c.IPv4()
	if ipA.Addr().Next() != ipB.Addr() || ipB.Addr().Next() != ipC.Addr() || !a.Native || b.Native {
		t.Fatalf("native %s, plugins %s, native %s: want consecutive addresses from one pool", ipA, ipB, ipC)
	}
}

// TestAttachOverAKilledRun: a container whose monitor was killed left its
// attachment; while its namespace lives the attachment is in use (InUse)
// and a second Attach is refused; once the namespace is gone, the
// container's next run attaches over it.
func TestAttachOverAKilledRun(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.41.0/24")
	ctx := context.Background()
	name, path := newNetNS(t)
	id := containerID()
	ports := []PortMapping{{HostPort: 0, ContainerPort: 80, Protocol: "tcp"}}
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: n.Name, Ports: ports}); err != nil {
		t.Fatal(err)
	}
	if !m.InUse(id) {
		t.Fatal("InUse is false while the namespace lives")
	}
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: n.Name}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Attach while in use: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del: %v: %s", err, out)
	}
	if m.InUse(id) {
		t.Fatal("InUse is true after the namespace is gone")
	}
	_, path2 := newNetNS(t)
	a := attach(t, m, AttachRequest{ContainerID: id, NetNSPath: path2, Network: n.Name, Ports: ports})
	if p, _ := a.IPv4(); !p.IsValid() || len(a.Ports) != 1 {
		t.Fatalf("the next run's attachment: %+v", a)
	}
}
