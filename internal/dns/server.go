// Package dns is the name server of a user-defined network: containers on
// the network reach each other by container name, short ID and
// --network-alias, as with docker's embedded DNS and podman's aardvark-dns.
//
// # Where it runs
//
// As aardvark-dns: one process per network on the host (`hull dns
// NETWORK`), listening on the network's gateway address, port 53, UDP and
// TCP. Containers find it as the only nameserver of their
// /etc/resolv.conf. Nothing runs in a container's namespace and nothing
// is added per container: docker's way (a server per container behind
// 127.0.0.11, iptables rules in its namespace) would cost every start.
//
// # What it answers
//
// A, AAAA and PTR for the names of the network's attachments (and of the
// other networks of the container asking, as docker does), read from the
// attachment records afresh for every query (see Zone): a record written
// by an Attach is answered by the next query, with no notification to
// miss. Names match case-insensitively, with or without the trailing dot.
// Other queries are forwarded to the asker's upstream servers (its --dns,
// else the host's nameservers, loopback ones included: the server runs in
// the host's namespace); with none, the answer is NXDOMAIN.
//
// # Lifecycle
//
// See process.go: the engine starts the server when a container attaches
// to the network and none runs (Ensure), handing it its sockets, bound
// already; the server exits by itself a few seconds after the network's
// last attachment is gone (Run).
package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TTL is the time to live of the answers for the network's names:
// short, as a name may be given to a new container at any time.
const TTL = 10

// Record is one container's entry on a network.
type Record struct {
	// Names are what it answers to: its name, short ID, aliases.
	Names []string
	// Addrs are its addresses on the network.
	Addrs []netip.Addr
	// Alive, if set, says whether the record still holds: asked only
	// of the records a query matches.
	Alive func() bool
}

// holds says whether record r answers.
func (r *Record) holds() bool { return r.Alive == nil || r.Alive() }

// View is what one asker sees: the records of its networks and the
// servers its other queries are forwarded to.
type View struct {
	Records []Record
	// Upstream are the servers to forward to, as IP or IP:PORT (port 53
	// if none), tried in order.
	Upstream []string
}

// Zone gives the server the view of the container asking, by its
// address. It is called for every query, so that what an Attach or a
// Detach changed is seen at once.
type Zone interface {
	View(asker netip.Addr) (View, error)
}

// ZoneFunc is a Zone of a function.
type ZoneFunc func(asker netip.Addr) (View, error)

// View calls f.
func (f ZoneFunc) View(asker netip.Addr) (View, error) { return f(asker) }

// Server answers the queries of one network's containers.
type Server struct {
	zone Zone
	// forwardTimeout is how long an upstream server gets to answer.
	forwardTimeout time.Duration

	mu      sync.Mutex
	servers []*dns.Server
}

// NewServer returns a server answering from zone.
func NewServer(zone Zone) *Server {
	return &Server{zone: zone, forwardTimeout: 2 * time.Second}
}

// Serve answers the queries arriving on udp and tcp (either may be nil)
// until Shutdown. It closes both.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	s.mu.Lock()
	if udp != nil {
		s.servers = append(s.servers, &dns.Server{PacketConn: udp, Handler: s})
	}
	if tcp != nil {
		s.servers = append(s.servers, &dns.Server{Listener: tcp, Handler: s, ReadTimeout: 5 * time.Second})
	}
	servers := s.servers
	s.mu.Unlock()
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- srv.ActivateAndServe()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !strings.Contains(err.Error(), "server not started") {
			return err
		}
	}
	return nil
}

// Shutdown stops Serve and closes its sockets.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.ShutdownContext(ctx)
		cancel()
	}
}

// ServeDNS answers one query: from the asker's view if the name is one of
// its networks', else from its upstream servers.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	asker := addrOf(w.RemoteAddr())
	r := s.answer(asker, q, w.RemoteAddr().Network())
	if r == nil {
		return
	}
	w.WriteMsg(r)
}

// answer returns the response to q from asker, which came over network
// proto ("udp" or "tcp").
func (s *Server) answer(asker netip.Addr, q *dns.Msg, proto string) *dns.Msg {
	r := new(dns.Msg)
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		r.SetRcode(q, dns.RcodeNotImplemented)
		return r
	}
	v, err := s.zone.View(asker)
	if err != nil {
		r.SetRcode(q, dns.RcodeServerFailure)
		return r
	}
	question := q.Question[0]
	if rrs, ok := local(v.Records, question); ok {
		r.SetReply(q)
		r.Authoritative, r.RecursionAvailable = true, true
		r.Answer = rrs
		return r
	}
	if len(v.Upstream) == 0 {
		r.SetRcode(q, dns.RcodeNameError)
		r.RecursionAvailable = true
		return r
	}
	return s.forward(q, v.Upstream, proto)
}

// local answers question from records: ok says the name is one of
// theirs (with no record of the type asked, the answer is empty:
// NOERROR, no data, never forwarded).
func local(records []Record, question dns.Question) (rrs []dns.RR, ok bool) {
	name := strings.ToLower(strings.TrimSuffix(question.Name, "."))
	if question.Qclass != dns.ClassINET && question.Qclass != dns.ClassANY {
		return nil, false
	}
	if question.Qtype == dns.TypePTR {
		return reverse(records, question)
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: question.Name, Rrtype: t, Class: dns.ClassINET, Ttl: TTL}
	}
	for _, rec := range records {
		if !matches(rec.Names, name) || !rec.holds() {
			continue
		}
		ok = true
		for _, a := range rec.Addrs {
			switch {
			case a.Is4() && (question.Qtype == dns.TypeA || question.Qtype == dns.TypeANY):
				rrs = append(rrs, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
			case a.Is6() && (question.Qtype == dns.TypeAAAA || question.Qtype == dns.TypeANY):
				rrs = append(rrs, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
			}
		}
	}
	return rrs, ok
}

// matches says whether name (lower case, no trailing dot) is one of names.
func matches(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(strings.TrimSuffix(n, "."), name) {
			return true
		}
	}
	return false
}

// reverse answers a PTR question for an address of records with the
// record's first name.
func reverse(records []Record, question dns.Question) ([]dns.RR, bool) {
	ip := net.ParseIP(reverseAddr(question.Name))
	if ip == nil {
		return nil, false
	}
	a, _ := netip.AddrFromSlice(ip)
	a = a.Unmap()
	var rrs []dns.RR
	for _, rec := range records {
		if len(rec.Names) == 0 {
			continue
		}
		for _, ra := range rec.Addrs {
			if ra == a && rec.holds() {
				rrs = append(rrs, &dns.PTR{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL},
					Ptr: dns.Fqdn(rec.Names[0]),
				})
			}
		}
	}
	return rrs, len(rrs) > 0
}

// reverseAddr turns an in-addr.arpa or ip6.arpa name into the address's
// text ("" if it is not one).
func reverseAddr(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if p, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		f := strings.Split(p, ".")
		if len(f) != 4 {
			return ""
		}
		return f[3] + "." + f[2] + "." + f[1] + "." + f[0]
	}
	if p, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		f := strings.Split(p, ".")
		if len(f) != 32 {
			return ""
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(f[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		return b.String()
	}
	return ""
}

// forward asks the upstream servers in turn, over proto, and relays the
// first answer; SERVFAIL if none answers.
func (s *Server) forward(q *dns.Msg, upstream []string, proto string) *dns.Msg {
	c := &dns.Client{Net: proto, Timeout: s.forwardTimeout}
	for _, u := range upstream {
		r, _, err := c.Exchange(q, serverAddr(u))
		if err != nil || r == nil {
			continue
		}
		r.Id = q.Id
		return r
	}
	r := new(dns.Msg)
	r.SetRcode(q, dns.RcodeServerFailure)
	r.RecursionAvailable = true
	return r
}

// serverAddr is an upstream server's host:port (port 53 by default).
func serverAddr(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String()
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53")
}

// addrOf is a remote address's IP.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
