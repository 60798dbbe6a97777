package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"hull/internal/network"
)

// NetworkSettings is docker's NetworkSettings block of a container's
// inspect: the addresses and ports of its running interfaces. The
// top-level addresses are those on the default network, as docker's.
type NetworkSettings struct {
	Bridge              string                       `json:"Bridge"`
	SandboxID           string                       `json:"SandboxID"`
	SandboxKey          string                       `json:"SandboxKey"`
	Ports               map[string][]PortBinding     `json:"Ports"`
	Gateway             string                       `json:"Gateway"`
	IPAddress           string                       `json:"IPAddress"`
	IPPrefixLen         int                          `json:"IPPrefixLen"`
	IPv6Gateway         string                       `json:"IPv6Gateway"`
	GlobalIPv6Address   string                       `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int                          `json:"GlobalIPv6PrefixLen"`
	MacAddress          string                       `json:"MacAddress"`
	Networks            map[string]*EndpointSettings `json:"Networks"`
}

// PortBinding is one host address and port a container port is
// published on (docker's nat.PortBinding).
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// EndpointSettings is a container's interface on one network, docker's.
type EndpointSettings struct {
	IPAMConfig          *EndpointIPAM `json:"IPAMConfig"`
	Links               []string      `json:"Links"`
	Aliases             []string      `json:"Aliases"`
	MacAddress          string        `json:"MacAddress"`
	NetworkID           string        `json:"NetworkID"`
	EndpointID          string        `json:"EndpointID"`
	Gateway             string        `json:"Gateway"`
	IPAddress           string        `json:"IPAddress"`
	IPPrefixLen         int           `json:"IPPrefixLen"`
	IPv6Gateway         string        `json:"IPv6Gateway"`
	GlobalIPv6Address   string        `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int           `json:"GlobalIPv6PrefixLen"`
	DNSNames            []string      `json:"DNSNames"`
}

// EndpointIPAM is the address asked for with --ip/--ip6.
type EndpointIPAM struct {
	IPv4Address string `json:"IPv4Address,omitempty"`
	IPv6Address string `json:"IPv6Address,omitempty"`
}

// attachmentsOf returns the network attachments of a running container
// (nil for others, and when the networks cannot be read).
func (e *Engine) attachmentsOf(c *Container) []*network.Attachment {
	if !c.IsRunning() || len(c.Config.Net.Networks) == 0 {
		return nil
	}
	m, err := e.networks()
	if err != nil {
		return nil
	}
	as, _ := m.Attachments(c.ID)
	return slices.DeleteFunc(as, func(a *network.Attachment) bool { return a.Released })
}

// PublishedPorts returns the ports a running container publishes, with
// the host ports bound (docker's ps PORTS and `port`), in the order
// they were asked for.
func (e *Engine) PublishedPorts(c *Container) []PortMapping {
	var out []PortMapping
	for _, a := range e.attachmentsOf(c) {
		out = append(out, a.Ports...)
	}
	return out
}

// networkSettings builds a container's NetworkSettings.
func (e *Engine) networkSettings(ctx context.Context, c *Container) NetworkSettings {
	s := NetworkSettings{Ports: map[string][]PortBinding{}, Networks: map[string]*EndpointSettings{}}
	n := c.Config.Net
	if c.IsRunning() && c.Pid > 0 {
		s.SandboxKey = "/proc/" + strconv.Itoa(c.Pid) + "/ns/net"
	}
	if c.IsRunning() {
		if eff := c.Config.Effective; eff != nil {
			for p := range eff.ExposedPorts {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				s.Ports[p] = nil
			}
		}
	}
	attached := map[string]*network.Attachment{}
	for _, a := range e.attachmentsOf(c) {
		attached[a.Network] = a
		for _, p := range a.Ports {
			key := strconv.Itoa(int(p.ContainerPort)) + "/" + p.Protocol
			ip := "0.0.0.0"
			if p.HostIP.IsValid() {
				ip = p.HostIP.String()
			}
			s.Ports[key] = append(s.Ports[key], PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	var m *network.Manager
	if len(n.Networks) > 0 {
		m, _ = e.networks()
	}
	for _, ep := range n.Networks {
		es := &EndpointSettings{Aliases: ep.Aliases, MacAddress: ep.MAC}
		if len(ep.IP) > 0 {
			es.IPAMConfig = &EndpointIPAM{}
			for _, ip := range ep.IP {
				if ip.Is4() {
					es.IPAMConfig.IPv4Address = ip.String()
				} else {
					es.IPAMConfig.IPv6Address = ip.String()
				}
			}
		}
		if m != nil {
			if nw, err := m.Inspect(ctx, ep.Network); err == nil {
				es.NetworkID = nw.ID
			}
		}
		if a := attached[ep.Network]; a != nil {
			es.EndpointID = endpointID(c.ID, ep.Network)
			es.MacAddress = a.MAC
			es.DNSNames = a.Aliases
			if p, gw := a.IPv4(); p.IsValid() {
				es.IPAddress, es.IPPrefixLen = p.Addr().String(), p.Bits()
				es.Gateway = addrString(gw)
			}
			if p, gw := a.IPv6(); p.IsValid() {
				es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = p.Addr().String(), p.Bits()
				es.IPv6Gateway = addrString(gw)
			}
		}
		s.Networks[ep.Network] = es
		if ep.Network == NetworkBridge {
			s.IPAddress, s.IPPrefixLen, s.Gateway, s.MacAddress = es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress
			s.GlobalIPv6Address, s.GlobalIPv6PrefixLen, s.IPv6Gateway = es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway
			s.SandboxID = c.ID
		}
	}
	if mode := netMode(c.Config.Spec); !joinsNetworks(mode) && c.Config.Spec.Network != "" {
		// docker lists the mode itself as the one network (none, host).
		if mode == NetworkNone || mode == NetworkHost {
			s.Networks[mode] = &EndpointSettings{}
		}
	}
	return s
}

// endpointID names a container's interface on a network (docker's
// 64-hex EndpointID), stable for the attachment.
func endpointID(containerID, network string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + network))
	return hex.EncodeToString(sum[:])
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
