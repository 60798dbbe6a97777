package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// AttachRequest asks for a container's interface on a network.
type AttachRequest struct {
	ContainerID string
	// NetNSPath is the container's network namespace (a bind-mounted
	// nsfs file or /proc/PID/ns/net); it must exist for Attach.
	NetNSPath string
	Network   string // DefaultNetwork if empty
	IfName    string // eth0 if empty
	// IP asks for this address (docker's --ip, --ip6) instead of the
	// next free one.
	IP []netip.Addr
	// MAC sets the interface's hardware address (--mac-address).
	MAC     string
	Aliases []string
	Ports   []PortMapping
}

// Attachment is a container's interface on a network: what Attach set up
// and what Detach and Reclaim undo. It is also the record kept under
// <runRoot>/networks/attachments/CONTAINER/NETWORK.json.
type Attachment struct {
	ContainerID string `json:"containerID"`
	Network     string `json:"network"`
	IfName      string `json:"ifName"`
	NetNSPath   string `json:"netns"`
	// Native says hull set it up itself (else libcni did).
	Native bool `json:"native"`
	// Bridge and HostVeth are the host's side of a native attachment.
	Bridge   string `json:"bridge,omitempty"`
	HostVeth string `json:"hostVeth,omitempty"`
	// Addresses are the interface's, with their subnet's length.
	Addresses []netip.Prefix `json:"addresses,omitempty"`
	Gateways  []netip.Addr   `json:"gateways,omitempty"`
	MAC       string         `json:"mac,omitempty"`
	Aliases   []string       `json:"aliases,omitempty"`
	// Ports are the published ports with the host ports actually bound.
	Ports []PortMapping `json:"ports,omitempty"`
}

// IPv4 returns the attachment's IPv4 address and gateway, if any.
func (a *Attachment) IPv4() (netip.Prefix, netip.Addr) {
	return a.address(false)
}

// IPv6 returns the attachment's IPv6 address and gateway, if any.
func (a *Attachment) IPv6() (netip.Prefix, netip.Addr) {
	return a.address(true)
}

func (a *Attachment) address(v6 bool) (netip.Prefix, netip.Addr) {
	var p netip.Prefix
	var gw netip.Addr
	for _, addr := range a.Addresses {
		if addr.Addr().Is6() == v6 {
			p = addr
			break
		}
	}
	for _, g := range a.Gateways {
		if g.Is6() == v6 {
			gw = g
			break
		}
	}
	return p, gw
}

// Attach connects the container to a network: reserves its host ports
// (failing if one is bound or published already), writes its record, and
// sets up the interface, natively or through the network's plugins. On
// error nothing of it is left behind.
func (m *Manager) Attach(ctx context.Context, r AttachRequest) (*Attachment, error) {
	if r.Network == "" {
		r.Network = DefaultNetwork
	}
	if r.IfName == "" {
		r.IfName = "eth0"
	}
	if !validName.MatchString(r.ContainerID) {
		return nil, fmt.Errorf("attach to network %s: invalid container ID %q", r.Network, r.ContainerID)
	}
	n, err := m.Inspect(ctx, r.Network)
	if err != nil {
		return nil, err
	}
	if _, err := m.readRecord(r.ContainerID, n.Name); err == nil {
		return nil, fmt.Errorf("container %.12s: %w: it is already attached to network %s", r.ContainerID, os.ErrExist, n.Name)
	}
	if _, err := os.Stat(r.NetNSPath); err != nil {
		return nil, fmt.Errorf("container %.12s: network namespace: %w", r.ContainerID, err)
	}
	if !n.Native {
		if err := m.checkPlugins(n); err != nil {
			return nil, err
		}
	}
	ports, err := m.reservePorts(r.ContainerID, r.Ports)
	if err != nil {
		return nil, fmt.Errorf("container %.12s: %w", r.ContainerID, err)
	}
	a := &Attachment{
		ContainerID: r.ContainerID, Network: n.Name, IfName: r.IfName, NetNSPath: r.NetNSPath,
		Native: n.Native, Aliases: r.Aliases, Ports: ports,
	}
	if n.Native {
		a.Bridge, a.HostVeth = n.Bridge, vethName(r.ContainerID, n.Name, r.IfName)
	}
	// The record comes before any kernel state: whatever a crash leaves
	// is named by it, for Reclaim.
	if err := m.writeRecord(a); err != nil {
		m.releasePorts(r.ContainerID, ports)
		return nil, err
	}
	if n.Native {
		err = m.attachNative(ctx, n, a, r)
	} else {
		err = m.attachPlugins(ctx, n, a, r)
	}
	if err == nil {
		err = m.writeRecord(a)
	}
	if err != nil {
		if derr := m.undo(ctx, a); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return nil, fmt.Errorf("container %.12s: network %s: %w", r.ContainerID, n.Name, err)
	}
	return a, nil
}

// Detach takes the container off the network: its interface, rules,
// addresses and host ports. netnsPath is the container's namespace, if it
// still exists (the record's if empty). Detaching a container that is not
// attached does nothing.
func (m *Manager) Detach(ctx context.Context, containerID, network, netnsPath string) error {
	if network == "" {
		network = DefaultNetwork
	}
	a, err := m.readRecord(containerID, network)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if netnsPath != "" {
		a.NetNSPath = netnsPath
	}
	if err := m.undo(ctx, a); err != nil {
		return fmt.Errorf("container %.12s: detach from network %s: %w", containerID, network, err)
	}
	return nil
}

// Attachments returns container id's attachments, by network.
func (m *Manager) Attachments(containerID string) ([]*Attachment, error) {
	entries, err := os.ReadDir(filepath.Join(m.attachDir, containerID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Attachment
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		a, err := m.readRecord(containerID, name)
		if err != nil {
			continue // removed meanwhile, or half written: Reclaim's
		}
		out = append(out, a)
	}
	return out, nil
}

// Reclaim undoes the attachments of containers that are gone, as a killed
// hull or monitor leaves them: interfaces, rules, addresses, host ports.
// alive reports whether a container still needs its network: it exists
// and is running or being started (an Attach in flight must count as
// alive). Call it once per command that may find leftovers, before
// handing out addresses or ports.
func (m *Manager) Reclaim(ctx context.Context, alive func(containerID string) bool) error {
	var errs []error
	entries, err := os.ReadDir(m.attachDir)
	if err != nil {
		return fmt.Errorf("networks: %w", err)
	}
	for _, e := range entries {
		id := e.Name()
		if alive(id) {
			continue
		}
		recs, err := os.ReadDir(filepath.Join(m.attachDir, id))
		if err != nil {
			continue
		}
		for _, r := range recs {
			network, ok := strings.CutSuffix(r.Name(), ".json")
			if !ok {
				os.Remove(filepath.Join(m.attachDir, id, r.Name())) // a temporary file of a killed write
				continue
			}
			if err := m.Detach(ctx, id, network, ""); err != nil {
				errs = append(errs, err)
			}
		}
		os.Remove(filepath.Join(m.attachDir, id))
	}
	// What no record names (a record written but a crash before its
	// first rename cannot own anything: the record comes first), swept
	// anyway so that a lost record cannot leak the pool.
	errs = append(errs, m.sweepPorts(alive), m.sweepAddresses(alive), sweepRules(alive))
	return errors.Join(errs...)
}

// undo removes what attachment a set up, in the reverse order, and its
// record last; every step tolerates a missing object.
func (m *Manager) undo(ctx context.Context, a *Attachment) error {
	var err error
	if a.Native {
		err = m.detachNative(a)
	} else {
		err = m.detachPlugins(ctx, a)
	}
	if err != nil {
		return err
	}
	m.releasePorts(a.ContainerID, a.Ports)
	if err := os.Remove(m.recordPath(a.ContainerID, a.Network)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	os.Remove(filepath.Join(m.attachDir, a.ContainerID)) // if empty
	return nil
}

func (m *Manager) recordPath(id, network string) string {
	return filepath.Join(m.attachDir, id, network+".json")
}

// writeRecord writes a's record: a temporary file renamed over the old,
// so a reader sees either whole.
func (m *Manager) writeRecord(a *Attachment) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	path := m.recordPath(a.ContainerID, a.Network)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("attachment record: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("attachment record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("attachment record: %w", err)
	}
	return nil
}

func (m *Manager) readRecord(id, network string) (*Attachment, error) {
	data, err := os.ReadFile(m.recordPath(id, network))
	if err != nil {
		return nil, err
	}
	a := &Attachment{}
	if err := json.Unmarshal(data, a); err != nil {
		return nil, fmt.Errorf("attachment record %s: %w", m.recordPath(id, network), err)
	}
	return a, nil
}

// vethName is the host end of a container's interface: "veth" and 8 hex
// digits, the bridge plugin's shape, derived so that the record names it
// before it exists.
func vethName(id, network, ifname string) string {
	sum := sha256.Sum256([]byte(id + "/" + network + "/" + ifname))
	return "veth" + hex.EncodeToString(sum[:4])
}

// sweepPorts frees host ports of containers that are gone.
func (m *Manager) sweepPorts(alive func(string) bool) error {
	entries, err := os.ReadDir(m.portDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		owner, err := os.ReadFile(filepath.Join(m.portDir, e.Name()))
		if err == nil && len(owner) > 0 && !alive(string(owner)) {
			os.Remove(filepath.Join(m.portDir, e.Name()))
		}
	}
	return nil
}

// sweepAddresses frees addresses of containers that are gone, in every
// network's store.
func (m *Manager) sweepAddresses(alive func(string) bool) error {
	nets, err := os.ReadDir(m.ipamDir)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if !n.IsDir() {
			continue
		}
		s, err := m.lockIPAM(n.Name())
		if err != nil {
			return err
		}
		owners, err := s.owners()
		for addr, owner := range owners {
			id, _, _ := strings.Cut(owner, "\r\n")
			if !alive(id) {
				os.Remove(filepath.Join(s.dir, addr))
			}
		}
		s.unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
