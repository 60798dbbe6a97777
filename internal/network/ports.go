package network

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PortMapping publishes a container port on the host, as `-p`: traffic to
// HostIP:HostPort (any of the host's addresses if HostIP is unset,
// 127.0.0.1 included) reaches the container's ContainerPort.
type PortMapping struct {
	HostIP netip.Addr `json:"hostIP,omitzero"`
	// HostPort 0 asks for a free random port (see reserveRandomPort). With
	// HostPortEnd, the first free port of HostPort..HostPortEnd.
	HostPort      uint16 `json:"hostPort"`
	HostPortEnd   uint16 `json:"hostPortEnd,omitempty"`
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp or udp
}

// String is the mapping as docker's ps shows it: 0.0.0.0:8080->80/tcp.
func (p PortMapping) String() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))), p.ContainerPort, p.Protocol)
}

// ParsePorts parses docker's -p values: [IP:][HOSTPORT[-END]:]PORT[-END][/PROTO],
// e.g. 8080:80, 127.0.0.1:8080:80, 80 (a random host port), 127.0.0.1::80,
// 8000-8010:80-90, 8000-8010:80 (one free port of the range), 53:53/udp.
func ParsePorts(values []string) ([]PortMapping, error) {
	var out []PortMapping
	for _, v := range values {
		ms, err := parsePort(v)
		if err != nil {
			return nil, fmt.Errorf("invalid -p %q: %w", v, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func parsePort(v string) ([]PortMapping, error) {
	rest, proto, hasProto := strings.Cut(v, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("protocol %q: use tcp or udp", proto)
	}
	var ipPart, hostPart, contPart string
	if strings.HasPrefix(rest, "[") { // [IPv6]:HOSTPORT:PORT
		end := strings.Index(rest, "]:")
		if end < 0 {
			return nil, errors.New("an IPv6 address in brackets must be followed by :HOSTPORT:PORT")
		}
		ipPart, rest = rest[1:end], rest[end+2:]
		var ok bool
		if hostPart, contPart, ok = strings.Cut(rest, ":"); !ok {
			return nil, errors.New("expected [IP]:HOSTPORT:PORT")
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			contPart = parts[0]
		case 2:
			hostPart, contPart = parts[0], parts[1]
			if hostPart == "" {
				return nil, errors.New("empty host port before ':' (leave out the ':' for a random one)")
			}
		case 3:
			ipPart, hostPart, contPart = parts[0], parts[1], parts[2]
		default:
			return nil, errors.New("too many ':' (expected [IP:][HOSTPORT:]PORT[/PROTO])")
		}
	}
	var hostIP netip.Addr
	if ipPart != "" {
		var err error
		if hostIP, err = netip.ParseAddr(ipPart); err != nil {
			return nil, fmt.Errorf("host address %q is not an IP address", ipPart)
		}
		hostIP = hostIP.Unmap()
		if hostIP.Is6() && hostIP.IsLoopback() {
			return nil, errors.New("host address ::1 cannot be published: the kernel does not route ::1 to a container; use 127.0.0.1")
		}
		if hostIP.IsUnspecified() {
			hostIP = netip.Addr{}
		}
	}
	cFirst, cLast, err := parsePortRange(contPart, "container port")
	if err != nil {
		return nil, err
	}
	if hostPart == "" { // each container port on a random host port
		var out []PortMapping
		for p := cFirst; ; p++ {
			out = append(out, PortMapping{HostIP: hostIP, ContainerPort: p, Protocol: proto})
			if p == cLast {
				return out, nil
			}
		}
	}
	hFirst, hLast, err := parsePortRange(hostPart, "host port")
	if err != nil {
		return nil, err
	}
	if cFirst == cLast {
		m := PortMapping{HostIP: hostIP, HostPort: hFirst, ContainerPort: cFirst, Protocol: proto}
		if hLast != hFirst {
			m.HostPortEnd = hLast
		}
		return []PortMapping{m}, nil
	}
	if hLast-hFirst != cLast-cFirst {
		return nil, fmt.Errorf("host range %s has %d ports, container range %s has %d", hostPart, hLast-hFirst+1, contPart, cLast-cFirst+1)
	}
	var out []PortMapping
	for i := uint16(0); ; i++ {
		out = append(out, PortMapping{HostIP: hostIP, HostPort: hFirst + i, ContainerPort: cFirst + i, Protocol: proto})
		if cFirst+i == cLast {
			return out, nil
		}
	}
}

// parsePortRange parses PORT or FIRST-LAST, ports 1-65535.
func parsePortRange(s, what string) (uint16, uint16, error) {
	if s == "" {
		return 0, 0, fmt.Errorf("missing %s", what)
	}
	a, b, isRange := strings.Cut(s, "-")
	first, err := parsePortNumber(a, what)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return first, first, nil
	}
	last, err := parsePortNumber(b, what)
	if err != nil {
		return 0, 0, err
	}
	if last < first {
		return 0, 0, fmt.Errorf("%s range %s ends before it starts", what, s)
	}
	return first, last, nil
}

func parsePortNumber(s, what string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s %q is not a number from 1 to 65535", what, s)
	}
	return uint16(n), nil
}

// Host ports are reserved with a file <runRoot>/networks/ports/PROTO-PORT
// holding the container's ID, made with exclusive create: of two hull
// processes publishing one port, one wins, and a port a container
// publishes is never published twice (a DNAT rule binds no socket, so only
// this file says that the port is taken). The host address is not part of
// the name: one host port is one container's on all addresses.

// reservePorts resolves and reserves the host ports of container id's
// mappings: each must be free of other containers and of the host's own
// sockets (bound briefly, tcp or udp). On error nothing stays reserved.
//
// With v6 (the network has IPv6) a port without a host address is checked
// on [::] too.
func (m *Manager) reservePorts(id string, maps []PortMapping, v6 bool) ([]PortMapping, error) {
	var done []PortMapping
	fail := func(err error) ([]PortMapping, error) {
		m.releasePorts(id, done)
		return nil, err
	}
	for _, p := range maps {
		if p.HostIP.Is6() && !v6 {
			return fail(fmt.Errorf("publish %s: the network has no IPv6", p))
		}
		switch {
		case p.HostPort == 0:
			got, err := m.reserveRandomPort(id, p, v6)
			if err != nil {
				return fail(err)
			}
			p = got
		case p.HostPortEnd > p.HostPort:
			var err error
			first, last := p.HostPort, p.HostPortEnd
			for port := first; ; port++ {
				p.HostPort, p.HostPortEnd = port, 0
				if err = m.reservePort(id, p, v6); err == nil || port == last {
					break
				}
			}
			if err != nil {
				return fail(fmt.Errorf("publish %d-%d/%s: no free host port in the range (last: %w)", first, last, p.Protocol, err))
			}
		default:
			if err := m.reservePort(id, p, v6); err != nil {
				return fail(err)
			}
		}
		done = append(done, p)
	}
	return done, nil
}

// reserveRandomPort reserves a random free port above the kernel's
// ephemeral range (ip_local_port_range), or, if there is no room above
// it, one the kernel picks from that range by binding port 0. A published
// port holds no socket (a DNAT rule binds nothing), so the kernel would
// hand a port of its range to a program that listens on port 0 later, whose
// connections the rule would then take: ports outside that range are
// never handed out so.
func (m *Manager) reserveRandomPort(id string, p PortMapping, v6 bool) (PortMapping, error) {
	var err error
	if lo, hi := publishRange(); lo != 0 {
		for range 64 {
			p.HostPort = lo + uint16(mrand.IntN(int(hi-lo)+1))
			if err = m.reservePort(id, p, v6); err == nil {
				return p, nil
			}
		}
	}
	for range 20 {
		p.HostPort, err = bindFree(p.HostIP, 0, p.Protocol, false)
		if err != nil {
			return p, fmt.Errorf("publish %d/%s on a random host port: %w", p.ContainerPort, p.Protocol, err)
		}
		if err = m.reservePort(id, p, v6); err == nil {
			return p, nil
		}
	}
	return p, fmt.Errorf("publish %d/%s on a random host port: %w", p.ContainerPort, p.Protocol, err)
}

// publishRange is where random host ports are picked: from just above
// the kernel's ephemeral range to 65535 (0, 0 if that leaves fewer than
// 1000 ports).
func publishRange() (lo, hi uint16) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, 0
	}
	end, err := strconv.Atoi(f[1])
	if err != nil || end+1000 > 65535 {
		return 0, 0
	}
	return uint16(end + 1), 65535
}

// reservePort reserves p's host port for container id if no container has
// it and no socket of the host's is bound to it (on [::] too with v6).
func (m *Manager) reservePort(id string, p PortMapping, v6 bool) error {
	path := m.portPath(p)
	err := createExclusive(path, id, id)
	if errors.Is(err, os.ErrExist) {
		owner, _ := os.ReadFile(path)
		return fmt.Errorf("publish %s: host port %d/%s is already published by container %.12s", p, p.HostPort, p.Protocol, owner)
	}
	if err != nil {
		return fmt.Errorf("publish %s: reserve the host port: %w", p, err)
	}
	if err == nil {
		_, err = bindFree(p.HostIP, p.HostPort, p.Protocol, v6)
		if err != nil {
			err = fmt.Errorf("publish %s: host port %d/%s is already in use: %w", p, p.HostPort, p.Protocol, err)
		}
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// bindFree binds ip:port (all addresses if ip is unset, IPv6's too with
// v6) with proto and closes it again, returning the port bound.
func bindFree(ip netip.Addr, port uint16, proto string, v6 bool) (uint16, error) {
	hosts := []string{"0.0.0.0"}
	if ip.IsValid() {
		hosts = []string{ip.String()}
	} else if v6 {
		hosts = append(hosts, "::")
	}
	for _, host := range hosts {
		addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
		network := proto + "4"
		if strings.Contains(host, ":") {
			network = proto + "6"
		}
		var got int
		if proto == "udp" {
			c, err := net.ListenPacket(network, addr)
			if err != nil {
				return 0, err
			}
			got = c.LocalAddr().(*net.UDPAddr).Port
			c.Close()
		} else {
			l, err := net.Listen(network, addr)
			if err != nil {
				return 0, err
			}
			got = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		port = uint16(got)
	}
	return port, nil
}

func (m *Manager) portPath(p PortMapping) string {
	return filepath.Join(m.portDir, p.Protocol+"-"+strconv.Itoa(int(p.HostPort)))
}

// releasePorts frees the host ports of maps that are container id's. A
// mapping whose host port was still to be chosen (random, or one of a
// range) when its record was written is found by its owner.
func (m *Manager) releasePorts(id string, maps []PortMapping) {
	scan := false
	for _, p := range maps {
		if p.HostPort == 0 || p.HostPortEnd != 0 {
			scan = true
			continue
		}
		path := m.portPath(p)
		if owner, err := os.ReadFile(path); err == nil && string(owner) == id {
			os.Remove(path)
		}
		os.Remove(filepath.Join(m.portDir, tmpPrefix(id)+filepath.Base(path))) // a reservation killed midway
	}
	if !scan {
		return
	}
	entries, _ := os.ReadDir(m.portDir)
	for _, e := range entries {
		path := filepath.Join(m.portDir, e.Name())
		if owner, err := os.ReadFile(path); err == nil && string(owner) == id || strings.HasPrefix(e.Name(), tmpPrefix(id)) {
			os.Remove(path)
		}
	}
}

// createExclusive makes file path with content data, failing with
// os.ErrExist if it exists, and never leaves it half written (an empty
// reservation would name no owner): the content goes to an unnamed file
// (O_TMPFILE) that is then linked into place, exclusively as O_EXCL. A
// crash before the link leaves nothing. Where O_TMPFILE is missing, a
// temporary file named after owner serves, for whoever undoes owner's
// attachment to find.
func createExclusive(path, data, owner string) error {
	dir := filepath.Dir(path)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err == nil {
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte(data)); err != nil {
			return err
		}
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.EEXIST) {
			return os.ErrExist
		}
		return err
	}
	tmp := filepath.Join(dir, tmpPrefix(owner)+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	err = os.Link(tmp, path)
	os.Remove(tmp)
	return err
}

// tmpPrefix starts the names of owner's temporary files.
func tmpPrefix(owner string) string { return ".tmp-" + owner + "-" }
