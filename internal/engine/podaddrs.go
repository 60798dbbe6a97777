package engine

import (
	"net/netip"

	"hull/internal/network"
)

// podAttachments are a running pod's live network attachments (none for
// a pod that is not running or has no network of its own).
func (e *Engine) podAttachments(p *Pod) []*network.Attachment {
	if p.State != PodRunning || len(p.Config.Net.Networks) == 0 {
		return nil
	}
	m, err := e.networks()
	if err != nil {
		return nil
	}
	as, _ := m.Attachments(p.ID)
	var out []*network.Attachment
	for _, a := range as {
		if !a.Released {
			out = append(out, a)
		}
	}
	return out
}

// PodIPs are the addresses of a running pod's interfaces, first network
// first (what a CRI sandbox's status reports as its IPs).
func (e *Engine) PodIPs(p *Pod) []netip.Addr {
	byNet := map[string][]netip.Addr{}
	for _, a := range e.podAttachments(p) {
		for _, pfx := range a.Addresses {
			byNet[a.Network] = append(byNet[a.Network], pfx.Addr())
		}
	}
	var out []netip.Addr
	for _, ep := range p.Config.Net.Networks {
		out = append(out, byNet[ep.Network]...)
	}
	return out
}
