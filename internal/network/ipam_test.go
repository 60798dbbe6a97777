package network

import (
	"net/netip"
	"strings"
	"testing"
)

// TestAllocateWraps: addresses go round the range as host-local's do,
// after the last reserved, skipping the gateway, never the broadcast.
func TestAllocateWraps(t *testing.T) {
	m := newManager(t, Options{})
	r, err := parseRange(rangeConf{Subnet: "10.231.35.0/29", Gateway: "10.231.35.1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.lockIPAM("wrap")
	if err != nil {
		t.Fatal(err)
	}
	defer s.unlock()
	var got []string
	for _, id := range []string{"a", "b", "c", "d", "e"} { // .2 to .6
		p, err := s.allocate("wrap", id, "eth0", []ipRange{r}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p[0].Addr().String())
	}
	if strings.Join(got, " ") != "10.231.35.2 10.231.35.3 10.231.35.4 10.231.35.5 10.231.35.6" {
		t.Fatalf("allocated %v", got)
	}
	if _, err := s.allocate("wrap", "f", "eth0", []ipRange{r}, nil); err == nil || !strings.Contains(err.Error(), "no free address") {
		t.Fatalf("a full range: %v", err)
	}
	s.releaseAddrs("b", "eth0", []netip.Prefix{netip.MustParsePrefix("10.231.35.3/29")})
	if err := s.releaseID("d", ""); err != nil {
		t.Fatal(err)
	}
	// After .6 (the last reserved) the search wraps to .2 and finds .3.
	p, err := s.allocate("wrap", "g", "eth0", []ipRange{r}, nil)
	if err != nil || p[0].Addr().String() != "10.231.35.3" {
		t.Fatalf("after wrapping: %v %v", p, err)
	}
	if _, err := s.allocate("wrap", "h", "eth0", []ipRange{r}, []netip.Addr{netip.MustParseAddr("10.231.35.1")}); err == nil {
		t.Fatal("the gateway was handed out")
	}
	p, err = s.allocate("wrap", "h", "eth0", []ipRange{r}, []netip.Addr{netip.MustParseAddr("10.231.35.5")})
	if err != nil || p[0].Addr().String() != "10.231.35.5" {
		t.Fatalf("static .5 (free since d left): %v %v", p, err)
	}
}
