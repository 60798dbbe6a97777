package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// The tests make real namespaces (ip netns add), real bridges, veths and
// nftables rules in subnets 10.231.X.0/24 the host does not route, and
// send traffic only between the host and those namespaces or on
// loopback. Every test removes what it made, failed or not.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces, bridges and nftables rules")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newManager opens a manager in private roots.
func newManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	m, err := Open(filepath.Join(dir, "root"), filepath.Join(dir, "run"), opts)
	if err != nil {
		t.Fatal(err)
	}
	keepHostRules(t)
	return m
}

// keepHostRules removes, when the test ends, the host-wide rules the
// test's networks made if there were none before: hull's nftables tables
// (once their chains are empty) and the scaffolding chains the portmap
// and firewall plugins leave in iptables.
func keepHostRules(t *testing.T) {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	had := map[*family]bool{}
	for _, f := range families {
		_, err = c.ListTableOfFamily(tableName, f.table.Family)
		had[f] = err == nil
	}
	before, _ := exec.Command("iptables-save").Output()
	t.Cleanup(func() {
		c, _ := nftables.New()
		for _, f := range families {
			if had[f] {
				continue
			}
			busy := false
			if rules, err := c.GetRules(f.table, f.chainPostroute); err == nil && len(rules) > 0 {
				busy = true
			}
			chains, _ := c.ListChainsOfTableFamily(f.table.Family)
			for _, ch := range chains {
				if ch.Table.Name == tableName && strings.HasPrefix(ch.Name, ctrChainPrefix) {
					busy = true
				}
			}
			if !busy {
				c.DelTable(f.table)
				c.Flush()
			}
		}
		if !strings.Contains(string(before), ":CNI-") {
			undoCNIChains(t)
		}
	})
}

// undoCNIChains deletes the CNI plugins' iptables chains and the jumps
// to them.
func undoCNIChains(t *testing.T) {
	out, _ := exec.Command("iptables-save").Output()
	tbl := ""
	var chains [][2]string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			tbl = line[1:]
		case strings.HasPrefix(line, ":CNI-"):
			chains = append(chains, [2]string{tbl, strings.Fields(line[1:])[0]})
		case strings.HasPrefix(line, "-A ") && strings.Contains(line, "-j CNI-") && !strings.HasPrefix(line, "-A CNI-"):
			args := append([]string{"-t", tbl, "-D"}, strings.Fields(strings.ReplaceAll(line[3:], `"`, ""))...)
			exec.Command("iptables", fixComment(args)...).Run()
		}
	}
	for _, c := range chains {
		exec.Command("iptables", "-t", c[0], "-F", c[1]).Run()
	}
	for _, c := range chains {
		exec.Command("iptables", "-t", c[0], "-X", c[1]).Run()
	}
	if after, _ := exec.Command("iptables-save").Output(); strings.Contains(string(after), "CNI-") {
		t.Logf("CNI plugin chains remain:\n%s", after)
	}
}

// fixComment rejoins a --comment value that iptables-save quoted and
// strings.Fields split.
func fixComment(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--comment" && i+1 < len(args) {
			j := i + 1
			for j+1 < len(args) && !strings.HasPrefix(args[j+1], "-") {
				j++
			}
			out = append(out, "--comment", strings.Join(args[i+1:j+1], " "))
			i = j
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// testNetwork creates a network on subnet 10.231.x.0/24 (or subnet) with
// a bridge of its own, removed with its rules when the test ends.
func testNetwork(t *testing.T, m *Manager, subnet string) *Network {
	t.Helper()
	name := "t" + randHex(4)
	n, err := m.Create(context.Background(), CreateOptions{Name: name, Subnet: subnet, BridgeName: "hullt" + randHex(4), NoMasquerade: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Remove(context.Background(), name); err != nil {
			t.Errorf("remove network %s: %v", name, err)
		}
		if _, err := netlink.LinkByName(n.Bridge); err == nil {
			t.Errorf("bridge %s outlived its network", n.Bridge)
		}
	})
	return n
}

// newNetNS makes a network namespace, deleted when the test ends.
func newNetNS(t *testing.T) (name, path string) {
	t.Helper()
	name = "hullt-" + randHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name, "/run/netns/" + name
}

func containerID() string { return randHex(32) }

// attach attaches a container and detaches it when the test ends (a
// no-op if the test did).
func attach(t *testing.T, m *Manager, r AttachRequest) *Attachment {
	t.Helper()
	a, err := m.Attach(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Detach(context.Background(), r.ContainerID, a.Network, ""); err != nil {
			t.Errorf("detach: %v", err)
		}
	})
	return a
}

// serve runs busybox nc in namespace ns answering "hi" on port 80 to
// every connection, until the test ends, and waits until it listens.
func serve(t *testing.T, ns string, addr netip.Addr) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hi")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/tcp", "/proc/net/tcp6").Output()
		if err == nil && listening80.Match(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nc in %s is not listening on port 80", ns)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listening80 matches a socket listening on port 80 in /proc/net/tcp{,6}.
var listening80 = regexp.MustCompile(`:0050 0+:0000 0A`)

// fetch connects to addr from the host and returns what it answers.
func fetch(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// fetchFrom connects to addr from namespace ns.
func fetchFrom(ns, host string, port uint16) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-w", "2", host, fmt.Sprint(port)).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// hostAddress is one of the host's non-loopback IPv4 addresses, not of a
// bridge of hull's tests.
func hostAddress(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || a.Scope != int(netlink.SCOPE_UNIVERSE) {
			continue
		}
		if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil && (l.Type() == "bridge" || l.Type() == "veth") {
			continue
		}
		return ip
	}
	t.Skip("the host has no non-loopback IPv4 address")
	return netip.Addr{}
}

// checkClean fails the test if anything of container id remains: its
// records, addresses, host ports, veth or rules.
func checkClean(t *testing.T, m *Manager, id string, n *Network) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(m.attachDir, id)); err == nil {
		t.Errorf("container %.12s: attachment records remain", id)
	}
	if s, err := m.lockIPAM(n.Name); err == nil {
		owners, _ := s.owners()
		s.unlock()
		for addr, owner := range owners {
			if strings.HasPrefix(owner, id) {
				t.Errorf("container %.12s: address %s still reserved", id, addr)
			}
		}
	}
	ports, _ := os.ReadDir(m.portDir)
	for _, p := range ports {
		if owner, _ := os.ReadFile(filepath.Join(m.portDir, p.Name())); string(owner) == id {
			t.Errorf("container %.12s: host port %s still reserved", id, p.Name())
		}
	}
	for _, ifname := range []string{"eth0", "eth1"} {
		if _, err := netlink.LinkByName(vethName(id, n.Name, ifname)); err == nil {
			t.Errorf("container %.12s: veth %s remains", id, vethName(id, n.Name, ifname))
		}
	}
	if rules := containerRules(t, id); len(rules) > 0 {
		t.Errorf("container %.12s: nftables rules remain: %v", id, rules)
	}
}

// containerRules names what of container id's port publishing is in
// nftables: its chains and the map elements pointing to them.
func containerRules(t *testing.T, id string) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		chains, _ := c.ListChainsOfTableFamily(f.table.Family)
		for _, ch := range chains {
			if ch.Table.Name == tableName && strings.HasPrefix(ch.Name, ctrChainPrefix+id+"-") {
				out = append(out, fmt.Sprintf("%s chain %s", f, ch.Name))
			}
		}
		for _, proto := range []string{"tcp", "udp"} {
			elems, _ := c.GetSetElements(f.portMap(proto))
			for _, e := range elems {
				if strings.HasPrefix(elemChain(e), ctrChainPrefix+id+"-") {
					out = append(out, fmt.Sprintf("%s %s element %x", f, proto, e.Key))
				}
			}
		}
	}
	return out
}

// run runs a command and returns its output, failing the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
