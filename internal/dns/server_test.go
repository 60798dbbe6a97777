package dns

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve starts a server on loopback answering from zone and returns its
// address (UDP and TCP on the same port).
func serve(t *testing.T, zone Zone) string {
	t.Helper()
	var udp net.PacketConn
	var tcp net.Listener
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenPacket("udp", l.Addr().String())
		if err != nil {
			l.Close()
			continue
		}
		udp, tcp = u, l
		break
	}
	if udp == nil {
		t.Fatal("no free port on 127.0.0.1 for UDP and TCP")
	}
	s := NewServer(zone)
	s.forwardTimeout = 500 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- s.Serve(udp, tcp) }()
	t.Cleanup(func() {
		s.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return tcp.Addr().String()
}

func query(t *testing.T, proto, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s %s: %v", proto, name, dns.TypeToString[qtype], err)
	}
	return r
}

// answers are a response's records' data, "A 10.200.0.2" and so on.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[3]+" "+f[4])
	}
	return out
}

var testRecords = []Record{
	{Names: []string{"web", "0123456789ab", "www"}, Addrs: []netip.Addr{netip.MustParseAddr("10.200.0.2"), netip.MustParseAddr("fd00::2")}},
	{Names: []string{"db"}, Addrs: []netip.Addr{netip.MustParseAddr("10.200.0.3")}},
	// A record left by a container that is gone.
	{Names: []string{"gone"}, Addrs: []netip.Addr{netip.MustParseAddr("10.200.0.4")}, Alive: func() bool { return false }},
}

func TestLocalNames(t *testing.T) {
	srv := serve(t, ZoneFunc(func(netip.Addr) (View, error) { return View{Records: testRecords}, nil }))
	for _, tc := range []struct {
		proto, name string
		qtype       uint16
		rcode       int
		want        string
	}{
		{"udp", "web.", dns.TypeA, dns.RcodeSuccess, "A 10.200.0.2"},
		{"udp", "WeB.", dns.TypeA, dns.RcodeSuccess, "A 10.200.0.2"},
		{"udp", "www.", dns.TypeA, dns.RcodeSuccess, "A 10.200.0.2"},
		{"udp", "0123456789ab.", dns.TypeA, dns.RcodeSuccess, "A 10.200.0.2"},
		{"tcp", "web.", dns.TypeAAAA, dns.RcodeSuccess, "AAAA fd00::2"},
		{"udp", "db.", dns.TypeA, dns.RcodeSuccess, "A 10.200.0.3"},
		// A name of the network without an address of the type: no
		// data, not forwarded.
		{"udp", "db.", dns.TypeAAAA, dns.RcodeSuccess, ""},
		{"udp", "3.0.200.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "PTR db."},
		{"udp", "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, dns.RcodeSuccess, "PTR web."},
		// Not a name of the network, and no upstream.
		{"udp", "other.", dns.TypeA, dns.RcodeNameError, ""},
		{"tcp", "web.example.", dns.TypeA, dns.RcodeNameError, ""},
		{"udp", "9.0.200.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, ""},
		{"udp", "gone.", dns.TypeA, dns.RcodeNameError, ""},
		{"udp", "4.0.200.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, ""},
	} {
		r := query(t, tc.proto, srv, tc.name, tc.qtype)
		if r.Rcode != tc.rcode || strings.Join(answers(r), ",") != tc.want {
			t.Errorf("%s %s %s: %s %q, want %s %q", tc.proto, tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], answers(r), dns.RcodeToString[tc.rcode], tc.want)
		}
	}
}

// TestViewPerQuery: records are read for every query, by the asker's
// address, so that an attachment is answered at once.
func TestViewPerQuery(t *testing.T) {
	var mu sync.Mutex
	var records []Record
	var askers []netip.Addr
	srv := serve(t, ZoneFunc(func(asker netip.Addr) (View, error) {
		mu.Lock()
		defer mu.Unlock()
		askers = append(askers, asker)
		return View{Records: records}, nil
	}))
	if r := query(t, "udp", srv, "db.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before the record: %s", dns.RcodeToString[r.Rcode])
	}
	mu.Lock()
	records = testRecords
	mu.Unlock()
	if r := query(t, "udp", srv, "db.", dns.TypeA); strings.Join(answers(r), ",") != "A 10.200.0.3" {
		t.Fatalf("after the record: %s %q", dns.RcodeToString[r.Rcode], answers(r))
	}
	if askers[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("asker %s, want 127.0.0.1", askers[0])
	}
}

// TestForward: other names go to the asker's upstream (a server the test
// runs on loopback), over the protocol the query came by; an upstream
// that does not answer is skipped.
func TestForward(t *testing.T) {
	upstream := serve(t, ZoneFunc(func(netip.Addr) (View, error) {
		return View{Records: []Record{{Names: []string{"outside.test"}, Addrs: []netip.Addr{netip.MustParseAddr("10.201.0.99")}}}}, nil
	}))
	// A port nothing answers on: a UDP socket that never reads.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	srv := serve(t, ZoneFunc(func(netip.Addr) (View, error) {
		return View{Records: testRecords, Upstream: []string{dead.LocalAddr().String(), upstream}}, nil
	}))
	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, proto, srv, "outside.test.", dns.TypeA)
		if strings.Join(answers(r), ",") != "A 10.201.0.99" {
			t.Errorf("%s: forwarded: %s %q", proto, dns.RcodeToString[r.Rcode], answers(r))
		}
		r = query(t, proto, srv, "nowhere.test.", dns.TypeA)
		if r.Rcode != dns.RcodeNameError {
			t.Errorf("%s: upstream's NXDOMAIN: %s", proto, dns.RcodeToString[r.Rcode])
		}
		// Local names are never forwarded.
		if r := query(t, proto, srv, "web.", dns.TypeA); strings.Join(answers(r), ",") != "A 10.200.0.2" {
			t.Errorf("%s: local: %q", proto, answers(r))
		}
	}
	// No upstream answers: SERVFAIL.
	srv = serve(t, ZoneFunc(func(netip.Addr) (View, error) {
		return View{Upstream: []string{dead.LocalAddr().String()}}, nil
	}))
	if r := query(t, "udp", srv, "outside.test.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("dead upstream: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func TestServerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "10.0.0.1:53", "10.0.0.1:5353": "10.0.0.1:5353", "fd00::1": "[fd00::1]:53",
		"[fd00::1]:54": "[fd00::1]:54",
	} {
		if got := serverAddr(in); got != want {
			t.Errorf("serverAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChanges(t *testing.T) {
	dir := t.TempDir()
	c, err := WatchChanges(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step := func(what string, want bool, do func() error) {
		t.Helper()
		if err := do(); err != nil {
			t.Fatal(err)
		}
		if got := c.Changed(); got != want {
			t.Errorf("%s: Changed() = %v, want %v", what, got, want)
		}
	}
	nothing := func() error { return nil }
	sub := filepath.Join(dir, "ctr")
	step("the first call", true, nothing)
	step("nothing", false, nothing)
	step("a container's directory", true, func() error { return os.Mkdir(sub, 0o700) })
	step("nothing", false, nothing)
	step("a record renamed in", true, func() error {
		if err := os.WriteFile(filepath.Join(dir, ".tmp"), []byte("{}"), 0o600); err != nil {
			return err
		}
		return os.Rename(filepath.Join(dir, ".tmp"), filepath.Join(sub, "net.json"))
	})
	step("a record rewritten", true, func() error { return os.WriteFile(filepath.Join(sub, "net.json"), []byte("{ }"), 0o600) })
	step("a record removed", true, func() error { return os.Remove(filepath.Join(sub, "net.json")) })
	step("the directory removed and made again", true, func() error {
		if err := os.Remove(sub); err != nil {
			return err
		}
		return os.Mkdir(sub, 0o700)
	})
	step("a record in the new directory", true, func() error { return os.WriteFile(filepath.Join(sub, "net.json"), nil, 0o600) })
	step("nothing", false, nothing)
}
