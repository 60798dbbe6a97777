package network

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		in   string
		want []PortMapping
	}{
		{"8080:80", []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"127.0.0.1:8080:80", []PortMapping{{HostIP: lo, HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"80", []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}},
		{"127.0.0.1::80/udp", []PortMapping{{HostIP: lo, ContainerPort: 80, Protocol: "udp"}}},
		{"0.0.0.0:53:53/UDP", []PortMapping{{HostPort: 53, ContainerPort: 53, Protocol: "udp"}}},
		{"8000-8002:80-82", []PortMapping{
			{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"},
			{HostPort: 8001, ContainerPort: 81, Protocol: "tcp"},
			{HostPort: 8002, ContainerPort: 82, Protocol: "tcp"}}},
		{"8000-8010:80", []PortMapping{{HostPort: 8000, HostPortEnd: 8010, ContainerPort: 80, Protocol: "tcp"}}},
		{"80-81/tcp", []PortMapping{{ContainerPort: 80, Protocol: "tcp"}, {ContainerPort: 81, Protocol: "tcp"}}},
		{"[::ffff:127.0.0.1]:8080:80", []PortMapping{{HostIP: lo, HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"[2001:db8::1]:8080:80/udp", []PortMapping{{HostIP: netip.MustParseAddr("2001:db8::1"), HostPort: 8080, ContainerPort: 80, Protocol: "udp"}}},
	} {
		got, err := ParsePorts([]string{c.in})
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"80/sctp", `protocol "sctp": use tcp or udp`},
		{"0", `container port "0" is not a number from 1 to 65535`},
		{"70000:80", `host port "70000" is not a number`},
		{"x:80", `host port "x"`},
		{"300.0.0.1:80:80", `host address "300.0.0.1" is not an IP address`},
		{"8000-8002:80-81", "host range 8000-8002 has 3 ports, container range 80-81 has 2"},
		{"90-80", "container port range 90-80 ends before it starts"},
		{":80", "empty host port"},
		{"1:2:3:4", "too many ':'"},
		{"[::1]:80:80", "::1 cannot be published"},
	} {
		_, err := ParsePorts([]string{c.in})
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), `invalid -p "`+c.in+`"`) {
			t.Errorf("ParsePorts(%q) error %v; want one containing %q", c.in, err, c.msg)
		}
	}
	if s := (PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}).String(); s != "0.0.0.0:8080->80/tcp" {
		t.Errorf("String() = %q", s)
	}
}

func TestResolvConf(t *testing.T) {
	host := "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\nnameserver 2001:db8::53\nsearch example.com corp\noptions edns0 trust-ad\n"
	got, _, warn, err := ResolvConf([]byte(host), DNSOptions{})
	want := "nameserver 192.0.2.53\nsearch example.com corp\noptions edns0 trust-ad\n"
	if err != nil || string(got) != want || len(warn) != 0 {
		t.Errorf("host's, filtered: %q %v %v; want %q", got, warn, err, want)
	}
	got, _, _, _ = ResolvConf([]byte(host), DNSOptions{IPv6: true})
	if !strings.Contains(string(got), "nameserver 2001:db8::53") || strings.Contains(string(got), "::1\n") {
		t.Errorf("with IPv6: %q", got)
	}
	// Only loopback servers: none, a warning, and never a public fallback.
	got, _, warn, err = ResolvConf([]byte("nameserver 127.0.0.53\noptions edns0\n"), DNSOptions{})
	if err != nil || strings.Contains(string(got), "nameserver") || len(warn) != 1 || !strings.Contains(warn[0], "127.0.0.53") {
		t.Errorf("loopback only: %q %v %v", got, warn, err)
	}
	got, _, warn, err = ResolvConf([]byte(host), DNSOptions{Servers: []string{"192.0.2.1"}, Search: []string{"."}, Options: []string{"ndots:2"}})
	if err != nil || string(got) != "nameserver 192.0.2.1\noptions ndots:2\n" || len(warn) != 0 {
		t.Errorf("--dns, --dns-search ., --dns-option: %q %v %v", got, warn, err)
	}
	if _, _, _, err := ResolvConf(nil, DNSOptions{Servers: []string{"dns.example"}}); err == nil {
		t.Error("--dns dns.example accepted")
	}
	got, up, _, _ := ResolvConf([]byte(host), DNSOptions{Resolver: netip.MustParseAddr("127.0.0.11")})
	// The resolver runs on the host: it forwards to all of the host's
	// servers, loopback ones too, and nothing is missing.
	if string(got) != "nameserver 127.0.0.11\nsearch example.com corp\noptions edns0 trust-ad ndots:0\n" || fmt.Sprint(up) != "[127.0.0.53 192.0.2.53 ::1 2001:db8::53]" {
		t.Errorf("embedded resolver: %q upstream %v", got, up)
	}
	got, up, warn, _ = ResolvConf([]byte("nameserver 127.0.0.53\n"), DNSOptions{Resolver: netip.MustParseAddr("10.200.0.1"), Servers: []string{"127.0.0.1"}, Options: []string{"ndots:3"}})
	if string(got) != "nameserver 10.200.0.1\noptions ndots:3\n" || fmt.Sprint(up) != "[127.0.0.1]" || len(warn) != 0 {
		t.Errorf("embedded resolver, --dns, --dns-option ndots: %q upstream %v %v", got, up, warn)
	}
}

func TestHosts(t *testing.T) {
	gw := netip.MustParseAddr("10.88.0.1")
	got, err := Hosts(HostsOptions{
		Hostname: "abc", Addresses: []netip.Addr{netip.MustParseAddr("10.88.0.2")},
		ExtraHosts: []string{"db:192.0.2.7", "host.docker.internal:host-gateway", "v6=2001:db8::1"}, HostGateway: gw,
	})
	want := defaultHosts + "192.0.2.7\tdb\n10.88.0.1\thost.docker.internal\n2001:db8::1\tv6\n10.88.0.2\tabc\n"
	if err != nil || string(got) != want {
		t.Errorf("Hosts = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"db", "db:notanip", ":1.2.3.4", "gw:host-gateway"} {
		hg := gw
		if bad == "gw:host-gateway" {
			hg = netip.Addr{}
		}
		if _, err := Hosts(HostsOptions{ExtraHosts: []string{bad}, HostGateway: hg}); err == nil {
			t.Errorf("--add-host %q accepted", bad)
		}
	}
}
