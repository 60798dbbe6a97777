package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"hull/internal/config"
	"hull/internal/dns"
	"hull/internal/network"
	"hull/internal/testenv"
)

// dnsTestNetwork creates a user-defined network under root (a test subnet
// in 10.200-10.239, a bridge of its own) through the network package, as
// `hull network create` would, and removes it, after root's containers,
// when the test ends. It returns the network's name and gateway.
func dnsTestNetwork(t *testing.T, root string) (string, netip.Addr) {
	t.Helper()
	cfg, err := config.Load(testenv.NetworkConfig(t, root))
	if err != nil {
		t.Fatal(err)
	}
	m, err := network.Open(root, filepath.Join(root, "run"), network.Options{
		DefaultBridge: cfg.Network.DefaultBridge, DefaultSubnet: cfg.Network.DefaultSubnet,
	})
	if err != nil {
		t.Fatal(err)
	}
	var b [3]byte
	rand.Read(b[:])
	name := "dnsnet" + hex.EncodeToString(b[:])
	var nw *network.Network
	for i := range 20 {
		k := (int(b[0])<<8 | int(b[1]) + i*97) % (40 * 256)
		nw, err = m.Create(context.Background(), network.CreateOptions{
			Name: name, BridgeName: "hd" + hex.EncodeToString(b[:]), Subnet: fmt.Sprintf("10.%d.%d.0/24", 200+k/256, k%256),
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("create a test network: %v", err)
	}
	t.Cleanup(func() {
		out, _, _ := hull(t, root, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			hull(t, root, "rm", "-f", "-v", id)
		}
		if err := m.Remove(context.Background(), name); err != nil {
			t.Errorf("remove network %s: %v", name, err)
		}
	})
	return name, nw.Subnets[0].Gateway
}

// fakeUpstream runs a name server on the host's loopback, port 53, that
// knows outside.test (10.201.0.99): what a container's --dns names, for
// the network's server to forward to, so that no query leaves the
// machine. It returns its address.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	var pc net.PacketConn
	var addr string
	var err error
	for i := 150; i < 170; i++ {
		addr = "127.0.0." + strconv.Itoa(i)
		if pc, err = net.ListenPacket("udp", addr+":53"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no loopback address with port 53 free: %v", err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		r := new(mdns.Msg)
		r.SetReply(q)
		if strings.EqualFold(q.Question[0].Name, "outside.test.") && q.Question[0].Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR("outside.test. 60 IN A 10.201.0.99")
			r.Answer = append(r.Answer, rr)
		} else if !strings.EqualFold(q.Question[0].Name, "outside.test.") {
			r.Rcode = mdns.RcodeNameError
		}
		w.WriteMsg(r)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return addr
}

// TestUserNetworkNames: on a user-defined network containers resolve each
// other by name, short ID and --network-alias through the network's name
// server on its gateway, other names through their --dns servers; on the
// default network no name resolves and no server runs; a killed server
// is started again by the next container attaching; none is left once
// the network's containers are gone.
func TestUserNetworkNames(t *testing.T) {
	root, fx := containerEnv(t)
	name, gw := dnsTestNetwork(t, root)
	upstream := fakeUpstream(t)
	dnsDir := filepath.Join(root, "run", "networks", "dns")

	run := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(mustHull(t, root, append([]string{"run", "-d", "--network", name, "--dns", upstream}, args...)...))
	}
	run("--name", "a", fx.Busybox.Ref, "sleep", "300")
	bID := run("--name", "b", "--network-alias", "web", "--network-alias", "Cache", fx.Busybox.Ref, "sleep", "300")
	addrOf := func(c string) string {
		t.Helper()
		ip := strings.TrimSpace(mustHull(t, root, "exec", c, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"))
		if _, err := netip.ParseAddr(ip); err != nil {
			t.Fatalf("%s's address: %q", c, ip)
		}
		return ip
	}
	aIP, bIP := addrOf("a"), addrOf("b")

	resolv := mustHull(t, root, "exec", "a", "cat", "/etc/resolv.conf")
	if !strings.HasPrefix(resolv, "nameserver "+gw.String()+"\n") || strings.Count(resolv, "nameserver") != 1 || !strings.Contains(resolv, "ndots:0") {
		t.Errorf("a's resolv.conf:\n%s\nwant the network's gateway %s alone", resolv, gw)
	}
	resolves := func(who, what, want string) {
		t.Helper()
		out, errOut, err := hull(t, root, "exec", who, "busybox", "nslookup", what)
		if err != nil || !strings.Contains(out, "Address: "+want) {
			t.Errorf("%s: nslookup %s: %v\n%s%s\nwant %s", who, what, err, out, errOut, want)
		}
	}
	for _, n := range []string{"b", "B", "b.", "web", "cache", bID[:12], "b." + name} {
		resolves("a", n, bIP)
	}
	if out, errOut, err := hull(t, root, "exec", "a", "ping", "-c1", "-W3", "web"); err != nil {
		t.Errorf("ping -c1 web: %v\n%s%s", err, out, errOut)
	}
	// Other names go to a's --dns server.
	resolves("a", "outside.test", "10.201.0.99")
	if out, _, err := hull(t, root, "exec", "a", "busybox", "nslookup", "nowhere.test"); err == nil {
		t.Errorf("nslookup nowhere.test succeeded:\n%s", out)
	}
	pid := dns.Running(dnsDir, name)
	if pid == 0 {
		t.Fatal("no name server runs for the network")
	}
	// A foreground run on the network, and a restarted container.
	out, errOut, err := hull(t, root, "run", "--rm", "--network", name, "--dns", upstream, fx.Busybox.Ref, "busybox", "nslookup", "a")
	if err != nil || !strings.Contains(out, "Address: "+aIP) {
		t.Errorf("run --rm --network %s nslookup a: %v\n%s%s", name, err, out, errOut)
	}
	mustHull(t, root, "restart", "-t", "0", "b")
	resolves("a", "web", addrOf("b"))
	if p := dns.Running(dnsDir, name); p != pid {
		t.Errorf("name server pid %d after the restart, was %d", p, pid)
	}

	// The default network: no names, no server, the host's (or --dns)
	// servers in resolv.conf.
	out, _, err = hull(t, root, "run", "--rm", "--dns", "127.0.0.1", fx.Busybox.Ref, "sh", "-c", "cat /etc/resolv.conf; busybox nslookup a")
	if err == nil || strings.Contains(out, gw.String()) || !strings.Contains(out, "nameserver 127.0.0.1") {
		t.Errorf("on the default network: %v\n%s", err, out)
	}
	if p := dns.Running(dnsDir, network.DefaultNetwork); p != 0 {
		t.Errorf("a name server (pid %d) runs for the default network", p)
	}

	// Killed, the server is missed until the next container attaches.
	syscall.Kill(pid, syscall.SIGKILL)
	if !waitGone(t, pid) {
		t.Fatalf("the killed name server (pid %d) is still there", pid)
	}
	if _, _, err := hull(t, root, "exec", "a", "busybox", "nslookup", "b"); err == nil {
		t.Error("b resolved with the server killed")
	}
	// Two containers attaching at once start one server.
	var starts []<-chan error
	for _, c := range []string{"c", "d"} {
		_, done := startHull(t, root, "run", "-d", "--network", name, "--dns", upstream, "--name", c, fx.Busybox.Ref, "sleep", "300")
		starts = append(starts, done)
	}
	for _, done := range starts {
		if err := <-done; err != nil {
			t.Fatalf("run -d on the network: %v", err)
		}
	}
	resolves("a", "b", addrOf("b"))
	resolves("c", "a", aIP)
	resolves("d", "c", addrOf("c"))
	pid = dns.Running(dnsDir, name)
	if servers := nameServers(t, root); len(servers) != 1 || servers[0] != pid {
		t.Errorf("name servers %v, want one, pid %d", servers, pid)
	}

	// The network's last container gone, its server exits.
	mustHull(t, root, "rm", "-f", "a", "b", "c", "d")
	if !waitGone(t, pid) {
		log, _ := os.ReadFile(filepath.Join(dnsDir, name+".log"))
		recs, _ := filepath.Glob(filepath.Join(root, "run", "networks", "attachments", "*", "*"))
		for _, r := range recs {
			data, _ := os.ReadFile(r)
			t.Logf("%s", data)
		}
		t.Fatalf("the name server (pid %d) runs on with no container on the network; attachments: %v; log:\n%s", pid, recs, log)
	}
	if p := dns.Running(dnsDir, name); p != 0 {
		t.Errorf("a name server (pid %d) is left", p)
	}
	if servers := nameServers(t, root); len(servers) != 0 {
		t.Errorf("name server processes left: %v", servers)
	}
}

// waitGone waits a while for process pid to end (a zombie has), and says
// whether it has.
func waitGone(t *testing.T, pid int) bool {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return true
		}
		if s := string(stat); err == nil && strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nameServers lists the live `hull dns` processes of root.
func nameServers(t *testing.T, root string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if st := string(stat); strings.HasPrefix(strings.TrimSpace(st[strings.LastIndexByte(st, ')')+1:]), "Z") {
			continue // a zombie: ended
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), "\x00"+root+"\x00") && strings.Contains(string(cmdline), "\x00dns\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}
