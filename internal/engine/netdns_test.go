package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"hull/internal/config"
	"hull/internal/dns"
	"hull/internal/network"
)

// zoneFixture is a root with networks net1 and net2 (conflists only:
// nothing on the host) and attachment records written as Attach writes
// them, for networkZone.
type zoneFixture struct {
	cfg  config.Config
	m    *network.Manager
	nets map[string]*network.Network
	// the namespace of a live container (this process's)
	netns string
	ino   uint64
}

func newZoneFixture(t testing.TB) *zoneFixture {
	root := t.TempDir()
	cfg := config.Default()
	cfg.Root, cfg.RunRoot = root, filepath.Join(root, "run")
	cfg.Network.DefaultBridge, cfg.Network.DefaultSubnet = "htzone0", "10.239.250.0/24"
	m, err := openNetworks(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &zoneFixture{cfg: cfg, m: m, nets: map[string]*network.Network{}, netns: "/proc/self/ns/net"}
	var st unix.Stat_t
	if err := unix.Stat(f.netns, &st); err != nil {
		t.Fatal(err)
	}
	f.ino = st.Ino
	for i, name := range []string{"net1", "net2"} {
		nw, err := m.Create(context.Background(), network.CreateOptions{
			Name: name, BridgeName: fmt.Sprintf("htzone%d", i+1), Subnet: fmt.Sprintf("10.239.%d.0/24", 251+i),
		})
		if err != nil {
			t.Fatal(err)
		}
		f.nets[name] = nw
	}
	return f
}

// attach writes the record of container id on network: its address
// (host part), names, --dns; dead: its namespace is gone.
func (f *zoneFixture) attach(t testing.TB, id, network string, host int, names, dnsServers []string, dead bool) {
	subnet := f.nets[network].Subnets[0].Subnet
	addr := subnet.Addr()
	for range host {
		addr = addr.Next()
	}
	a := map[string]any{
		"containerID": id, "network": network, "ifName": "eth0", "netns": f.netns, "netnsInode": f.ino,
		"native": true, "addresses": []string{netip.PrefixFrom(addr, subnet.Bits()).String()}, "aliases": names, "dns": dnsServers,
	}
	if dead {
		a["netns"] = "/proc/2147483647/ns/net"
	}
	data, _ := json.Marshal(a)
	dir := filepath.Join(f.cfg.RunRoot, "networks", "attachments", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, network+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func names(v dns.View) string {
	var out []string
	for _, r := range v.Records {
		if r.Alive != nil && !r.Alive() {
			continue // d, whose namespace is gone
		}
		out = append(out, fmt.Sprintf("%s %v", r.Names[0], r.Addrs))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestNetworkZone: the server of net1 answers the asker with the names
// of all of its networks, forwards to its --dns servers, else the
// host's; strangers get names alone; a record whose namespace is gone is
// neither answered nor keeps the network busy.
func TestNetworkZone(t *testing.T) {
	f := newZoneFixture(t)
	f.attach(t, "aaaa", "net1", 2, []string{"a", "aaaa"}, []string{"127.0.0.150"}, false)
	f.attach(t, "aaaa", "net2", 2, []string{"a", "aaaa"}, []string{"127.0.0.150"}, false)
	f.attach(t, "bbbb", "net1", 3, []string{"b", "bbbb", "web"}, nil, false)
	f.attach(t, "cccc", "net2", 4, []string{"c", "cccc"}, nil, false)
	f.attach(t, "dddd", "net1", 5, []string{"d", "dddd"}, nil, true)
	z := newAttachmentCache(f.m, f.cfg)
	zone := networkZone(z, f.nets["net1"])

	v, err := zone.View(netip.MustParseAddr("10.239.251.2")) // a: on net1 and net2
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(v), "a [10.239.251.2] a [10.239.252.2] b [10.239.251.3] c [10.239.252.4]"; got != want {
		t.Errorf("a's view: %s, want %s", got, want)
	}
	if i := slices.IndexFunc(v.Records, func(r dns.Record) bool { return r.Names[0] == "c" }); i < 0 || !slices.Contains(v.Records[i].Names, "c.net2") || !slices.Contains(v.Records[i].Names, "cccc.net2") {
		t.Errorf("c's names: %v, want them qualified by net2 too", v.Records)
	}
	if fmt.Sprint(v.Upstream) != "[127.0.0.150]" {
		t.Errorf("a's upstream: %v, want its --dns", v.Upstream)
	}
	v, _ = zone.View(netip.MustParseAddr("10.239.251.3")) // b: net1 only, no --dns
	if got, want := names(v), "a [10.239.251.2] b [10.239.251.3]"; got != want {
		t.Errorf("b's view: %s, want %s", got, want)
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	_, hostServers, _, _ := network.ResolvConf(host, network.DNSOptions{Resolver: netip.MustParseAddr("10.239.251.1")})
	if fmt.Sprint(v.Upstream) != fmt.Sprint(hostServers) {
		t.Errorf("b's upstream: %v, want the host's %v", v.Upstream, hostServers)
	}
	v, _ = zone.View(netip.MustParseAddr("192.0.2.1"))
	if len(v.Upstream) != 0 || names(v) != "a [10.239.251.2] b [10.239.251.3]" {
		t.Errorf("a stranger's view: %s, upstream %v", names(v), v.Upstream)
	}

	idle := func(name string) bool {
		as, _, err := z.of(name)
		return err == nil && len(as) == 0
	}
	if idle("net1") {
		t.Error("net1 idle with a and b on it")
	}
	os.RemoveAll(filepath.Join(f.cfg.RunRoot, "networks", "attachments", "aaaa"))
	os.RemoveAll(filepath.Join(f.cfg.RunRoot, "networks", "attachments", "bbbb"))
	if !idle("net1") {
		t.Error("net1 busy with only a dead container's record on it")
	}
	os.RemoveAll(f.cfg.RunRoot)
	if _, _, err := z.of("net1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the run root removed: %v, want ErrNotExist (the server's Idle takes it for idle)", err)
	}
}

// BenchmarkNetworkZone is the cost of a query's view with 100 containers
// under the run root, 50 of them on the network: when the records have
// not changed since the last query (cached), and when every query
// follows a change (reread: what a server without the cache pays for
// every query).
func BenchmarkNetworkZone(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchmarkNetworkZone(b, false) })
	b.Run("reread", func(b *testing.B) { benchmarkNetworkZone(b, true) })
}

func benchmarkNetworkZone(b *testing.B, reread bool) {
	f := newZoneFixture(b)
	for i := range 100 {
		id := fmt.Sprintf("c%063d", i)
		net := "net1"
		if i%2 == 1 {
			net = "net2"
		}
		f.attach(b, id, net, 2+i, []string{fmt.Sprintf("name%d", i), id[:12]}, nil, false)
	}
	zone := networkZone(newAttachmentCache(f.m, f.cfg), f.nets["net1"])
	asker := netip.MustParseAddr("10.239.251.2")
	b.ResetTimer()
	for b.Loop() {
		if _, err := zone.View(asker); err != nil {
			b.Fatal(err)
		}
		if reread {
			f.attach(b, "c"+strings.Repeat("0", 63), "net1", 2, []string{"name0"}, nil, false)
		}
	}
}
