package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// validID is what a container ID may be: it names files and nftables
// chains (ctr-ID-NETWORK, split at the first '-').
var validID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.]*$`)

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
	// DNS are the servers the network's name server forwards the
	// container's other queries to (its --dns; the host's if empty).
	DNS []string
}

// Attachment is a container's interface on a network: what Attach set up
// and what Detach and Reclaim undo. It is also the record kept under
// <runRoot>/networks/attachments/CONTAINER/NETWORK.json.
type Attachment struct {
	ContainerID string `json:"containerID"`
	Network     string `json:"network"`
	IfName      string `json:"ifName"`
	NetNSPath   string `json:"netns"`
	// NetNSInode identifies the namespace (its nsfs inode): a path such
	// as /proc/PID/ns/net may name another one later.
	NetNSInode uint64 `json:"netnsInode,omitempty"`
	// Released says that only the host's veth is left to remove: the
	// namespace was gone at Detach, and the kernel removes the pair
	// with it, in its own time (see Detach).
	Released bool `json:"released,omitempty"`
	// ReleasedAt is when: for releaseGrace after it, Reclaim leaves the
	// veth to its namespace's end (see Reclaim).
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
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
	DNS       []string       `json:"dns,omitempty"`
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
	if !validID.MatchString(r.ContainerID) {
		return nil, fmt.Errorf("attach to network %s: invalid container ID %q", r.Network, r.ContainerID)
	}
	n, err := m.Inspect(ctx, r.Network)
	if err != nil {
		return nil, err
	}
	if old, err := m.readRecord(r.ContainerID, n.Name); err == nil {
		switch {
		case old.Released:
			// A restart: the last run's veth (same name) must be gone.
			err = m.finishRelease(old)
		case nsIs(old.NetNSPath, old.NetNSInode):
			return nil, fmt.Errorf("container %.12s: %w: it is already attached to network %s", r.ContainerID, os.ErrExist, n.Name)
		default:
			// A run whose monitor was killed: its namespace is gone.
			err = m.undo(ctx, old)
			if err == nil {
				if old, rerr := m.readRecord(r.ContainerID, n.Name); rerr == nil && old.Released {
					err = m.finishRelease(old)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("container %.12s: network %s: %w", r.ContainerID, n.Name, err)
		}
	}
	if r.NetNSPath == "" {
		return nil, fmt.Errorf("container %.12s: attach to network %s: no network namespace given", r.ContainerID, n.Name)
	}
	ino, err := nsInode(r.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("container %.12s: network namespace: %w", r.ContainerID, err)
	}
	if r.MAC != "" {
		if mac, err := net.ParseMAC(r.MAC); err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("container %.12s: mac address %q is not an Ethernet address", r.ContainerID, r.MAC)
		}
	}
	if !n.Native {
		if err := m.checkPlugins(n); err != nil {
			return nil, err
		}
	}
	a := &Attachment{
		ContainerID: r.ContainerID, Network: n.Name, IfName: r.IfName, NetNSPath: r.NetNSPath, NetNSInode: ino,
		Native: n.Native, Aliases: r.Aliases, Ports: r.Ports, DNS: r.DNS,
	}
	if n.Native {
		a.Bridge, a.HostVeth = n.Bridge, vethName(r.ContainerID, n.Name, r.IfName)
	}
	// The record comes before anything else: whatever a crash leaves is
	// named by it, for Reclaim (host ports not known yet, random ones,
	// are found by their owner).
	if err := m.writeRecord(a); err != nil {
		return nil, err
	}
	ports, err := m.reservePorts(r.ContainerID, r.Ports, n.IPv6)
	if err != nil { // nothing is set up yet, and reservePorts undid itself
		return nil, errors.Join(fmt.Errorf("container %.12s: %w", r.ContainerID, err), m.removeRecord(a))
	}
	a.Ports = ports
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
//
// Deleting a veth costs 10-20 ms of kernel time (unregistering a device
// waits for RCU grace periods), more than the rest of a container's
// networking together. So when the namespace is gone, which takes the
// veth pair with it in a kernel worker, Detach does not delete the veth
// itself: it frees addresses, ports and rules at once and, if the veth
// still shows, keeps a Released record that Reclaim (or the container's
// next Attach) finishes. The engine should therefore let go of the
// namespace (the container's process gone, its pin unmounted) before it
// calls Detach on a container's stop; with the namespace alive (network
// disconnect) the veth is deleted here.
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
	if a.Released {
		return nil // Reclaim's
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

// AttachmentsOf returns the attachments to network (Released ones
// aside): whether `network rm` may go ahead, and `network inspect`'s
// containers.
func (m *Manager) AttachmentsOf(network string) ([]*Attachment, error) {
	entries, err := os.ReadDir(m.attachDir)
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	var out []*Attachment
	for _, e := range entries {
		if a, err := m.readRecord(e.Name(), network); err == nil && !a.Released {
			out = append(out, a)
		}
	}
	return out, nil
}

// Reclaim undoes the attachments of containers that are gone, as a killed
// hull or monitor (or a reboot) leaves them: interfaces, rules, addresses,
// host ports. alive reports whether a container still needs its network:
// it exists and is running or being started (an Attach in flight must
// count as alive; see InUse). It reads one directory and the records of the dead,
// so it is cheap enough for every command that may find leftovers,
// before handing out addresses or ports.
func (m *Manager) Reclaim(ctx context.Context, alive func(containerID string) bool) error {
	var errs []error
	entries, err := os.ReadDir(m.attachDir)
	if err != nil {
		return fmt.Errorf("networks: %w", err)
	}
	m.removeStaleTemps()
	for _, e := range entries {
		id := e.Name()
		// The records are listed before alive is asked: a record written
		// after the question is not in the list, so never undone here, and
		// alive (InUse) sees every record in the list.
		recs, err := os.ReadDir(filepath.Join(m.attachDir, id))
		if err != nil || alive(id) {
			continue
		}
		for _, r := range recs {
			network, ok := strings.CutSuffix(r.Name(), ".json")
			if !ok {
				os.Remove(filepath.Join(m.attachDir, id, r.Name())) // a temporary file of a killed write
				continue
			}
			a, err := m.readRecord(id, network)
			if err == nil {
				if a.Released {
					err = m.reclaimReleased(a)
				} else {
					err = m.undo(ctx, a)
				}
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("container %.12s: network %s: %w", id, network, err))
			}
		}
		os.Remove(filepath.Join(m.attachDir, id))
	}
	return errors.Join(errs...)
}

// removeStaleTemps removes the temporary record files a killed write left
// (older than a minute: a write under way takes microseconds).
func (m *Manager) removeStaleTemps() {
	entries, _ := os.ReadDir(m.tmpDir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
			os.Remove(filepath.Join(m.tmpDir, e.Name()))
		}
	}
}

// InUse says whether a container's attachments are in use whatever its
// record says: one of them is in a network namespace that still exists
// (a start under way, attached before the container is claimed; or a
// container whose monitor died, not stopped yet). Reclaim's alive should
// count such a container as alive.
func (m *Manager) InUse(containerID string) bool {
	as, _ := m.Attachments(containerID)
	for _, a := range as {
		if !a.Released && nsIs(a.NetNSPath, a.NetNSInode) {
			return true
		}
	}
	return false
}

// Sweep frees what no record names, of containers that are gone:
// reserved addresses in every network's store, host port reservations,
// port chains in nftables, veths on the bridges of hull's native networks. Records come before all of these, so only a
// record lost (deleted by hand, a damaged disk) leaves such things; Sweep
// reads every reservation, so it is for occasional use (a prune, a
// check), where Reclaim is for every command.
func (m *Manager) Sweep(ctx context.Context, alive func(containerID string) bool) error {
	if err := m.Reclaim(ctx, alive); err != nil {
		return err
	}
	// Only chains of containers this root handed ports or addresses to:
	// those of other roots' containers (tests' roots, say) are theirs.
	owned := m.ownerIDs()
	return errors.Join(m.sweepVeths(ctx), m.sweepPorts(alive), m.sweepAddresses(alive),
		sweepRules(func(id string) bool { return !owned[id] || alive(id) }))
}

// sweepVeths deletes the veths on native networks' bridges that no record
// names. The devices are listed before the records are read: a record is
// written before its veth is made, so an Attach under way is never
// taken for a leftover.
func (m *Manager) sweepVeths(ctx context.Context) error {
	nets, err := m.networks()
	if err != nil {
		return err
	}
	bridges := map[int]bool{}
	for _, n := range nets {
		if !n.Native {
			continue
		}
		if br, err := netlink.LinkByName(n.Bridge); err == nil {
			bridges[br.Attrs().Index] = true
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	known := map[string]bool{}
	ids, _ := os.ReadDir(m.attachDir)
	for _, id := range ids {
		recs, _ := os.ReadDir(filepath.Join(m.attachDir, id.Name()))
		for _, r := range recs {
			if network, ok := strings.CutSuffix(r.Name(), ".json"); ok {
				if a, err := m.readRecord(id.Name(), network); err == nil {
					known[a.HostVeth] = true
				}
			}
		}
	}
	var errs []error
	for _, l := range links {
		if l.Type() == "veth" && bridges[l.Attrs().MasterIndex] && !known[l.Attrs().Name] {
			if err := deleteLink(l.Attrs().Name); err != nil {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", l.Attrs().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// undo removes what attachment a set up, in the reverse order, and its
// record last; every step tolerates a missing object.
func (m *Manager) undo(ctx context.Context, a *Attachment) error {
	var err error
	nsAlive := nsIs(a.NetNSPath, a.NetNSInode)
	if a.Native {
		err = m.detachNative(a, nsAlive)
	} else {
		err = m.detachPlugins(ctx, a, nsAlive)
	}
	if err != nil {
		return err
	}
	m.releasePorts(a.ContainerID, a.Ports)
	if !nsAlive && a.HostVeth != "" && linkExists(a.HostVeth) {
		released := *a
		released.Released, released.ReleasedAt, released.Addresses, released.Ports = true, time.Now(), nil, nil
		return m.writeRecord(&released)
	}
	return m.removeRecord(a)
}

// releaseGrace is how long a Released record's veth is left to the
// kernel: its namespace ends once the last process in it has (a pod's
// spare ends while the pod stops), and the kernel's cleanup deletes the
// pair then, batched and off every call's path. Deleting it here instead
// would cost the next attach (Reclaim runs first) the 15-30 ms the
// detach saved. A veth still there after the grace has a namespace that
// outlived it (a process leaked into it): Reclaim deletes it.
const releaseGrace = 10 * time.Second

// DeferReleasedVeths makes Reclaim leave a Released record's veth to its
// namespace's end for releaseGrace (reclaimReleased): for a long-lived
// caller, whose next attach would otherwise pay for the veth that a
// stopped pod's namespace is about to take with it; such a caller drops
// a pod's records in the background (SettleReleased). Off (a command),
// Reclaim deletes a Released veth at once, as the next command would
// otherwise find the record.
func (m *Manager) DeferReleasedVeths(on bool) { m.deferRelease = on }

// FinishReleased deletes the veths of container id's Released records,
// and the records (finishRelease), for a command that ends soon.
func (m *Manager) FinishReleased(id string) error {
	as, err := m.Attachments(id)
	var errs []error
	for _, a := range as {
		if a.Released {
			errs = append(errs, m.finishRelease(a))
		}
	}
	return errors.Join(append(errs, err)...)
}

// SettleReleased waits, up to releaseGrace, for the veths of container
// id's Released records to go with their namespaces, dropping each
// record then; what is left after the grace is Reclaim's. It is for an ID
// that is not attached again (a pod's: the engine runs it in the
// background once the pod is down), so that a stopped pod's records do not
// wait for the next attach's Reclaim.
func (m *Manager) SettleReleased(id string) {
	deadline := time.Now().Add(releaseGrace)
	for {
		as, _ := m.Attachments(id)
		pending := 0
		for _, a := range as {
			switch {
			case !a.Released:
			case vethGone(a.HostVeth):
				m.removeRecord(a)
			default:
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vethGone reports whether the host has no device name (sysfs: no
// netlink request, which would wait for the RTNL lock a namespace's
// cleanup holds).
func vethGone(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return name == "" || errors.Is(err, os.ErrNotExist)
}

// reclaimReleased is Reclaim's finishRelease: a record whose veth is gone
// goes; with DeferReleasedVeths, one released less than releaseGrace ago
// whose veth is still there stays for a later Reclaim.
func (m *Manager) reclaimReleased(a *Attachment) error {
	if vethGone(a.HostVeth) {
		return m.removeRecord(a)
	}
	if m.deferRelease && !a.ReleasedAt.IsZero() && time.Since(a.ReleasedAt) < releaseGrace {
		return nil
	}
	return m.finishRelease(a)
}

// finishRelease deletes the veth of a Released record, and the record.
func (m *Manager) finishRelease(a *Attachment) error {
	if err := deleteLink(a.HostVeth); err != nil {
		return fmt.Errorf("delete veth %s: %w", a.HostVeth, err)
	}
	return m.removeRecord(a)
}

// removeRecord removes a's record, and the container's directory if it
// was the last.
func (m *Manager) removeRecord(a *Attachment) error {
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
	// The temporary file is written outside the container's directory, and
	// the rename retried if the directory went: another process's Reclaim
	// removes a directory it finds without records (this container's, before
	// its first record is in place, looks like a killed attach's).
	f, err := os.CreateTemp(m.tmpDir, a.ContainerID+"-*")
	if err != nil {
		return fmt.Errorf("attachment record: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	for try := 0; err == nil; try++ {
		if err = os.Rename(tmp, path); err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || try == 10 {
			break
		}
		err = os.MkdirAll(filepath.Dir(path), 0o700)
	}
	os.Remove(tmp)
	return fmt.Errorf("attachment record: %w", err)
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

// nsInode is the inode of the namespace file at path.
func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// nsIs says whether path still names the namespace with inode ino (any
// namespace if ino is 0).
func nsIs(path string, ino uint64) bool {
	if path == "" {
		return false
	}
	got, err := nsInode(path)
	return err == nil && (ino == 0 || got == ino)
}

// vethName is the host end of a container's interface: "veth" and 8 hex
// digits, the bridge plugin's shape, derived so that the record names it
// before it exists.
func vethName(id, network, ifname string) string {
	sum := sha256.Sum256([]byte(id + "/" + network + "/" + ifname))
	return "veth" + hex.EncodeToString(sum[:4])
}

// ownerIDs are the containers that hold host ports or addresses of this
// run root's.
func (m *Manager) ownerIDs() map[string]bool {
	ids := map[string]bool{}
	entries, _ := os.ReadDir(m.portDir)
	for _, e := range entries {
		if owner, err := os.ReadFile(filepath.Join(m.portDir, e.Name())); err == nil && len(owner) > 0 {
			ids[string(owner)] = true
		}
	}
	nets, _ := os.ReadDir(m.ipamDir)
	for _, n := range nets {
		s, err := m.lockIPAM(n.Name())
		if err != nil {
			continue
		}
		owners, _ := s.owners()
		s.unlock()
		for _, owner := range owners {
			id, _, _ := strings.Cut(owner, "\r\n")
			ids[id] = true
		}
	}
	return ids
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
		tmps, _ := filepath.Glob(filepath.Join(s.dir, ".tmp-*"))
		for _, t := range tmps {
			if id, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(t), ".tmp-"), "-"); ok && !alive(id) {
				os.Remove(t)
			}
		}
		s.unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
