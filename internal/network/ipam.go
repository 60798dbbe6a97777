package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The address store is host-local's, file for file, so that the plugin and
// hull's native path hand out addresses from one pool and release each
// other's: <dataDir>/NETWORK/<ip> holds "CONTAINERID\r\nIFNAME",
// last_reserved_ip.N the last address given from range set N, and every
// change happens under flock(<dataDir>/NETWORK/lock).

// ipamStore is one network's address store, locked.
type ipamStore struct {
	dir  string
	lock *os.File
}

// lockIPAM opens and locks network name's address store. The same lock
// serializes setting up the network's bridge.
func (m *Manager) lockIPAM(name string) (*ipamStore, error) {
	dir := filepath.Join(m.ipamDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("network %s: address store: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("network %s: address store: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("network %s: lock the address store: %w", name, err)
	}
	return &ipamStore{dir: dir, lock: f}, nil
}

// unlock releases the store (closing the file drops the flock).
func (s *ipamStore) unlock() { s.lock.Close() }

// ipamOwner is what an address file holds.
func ipamOwner(id, ifname string) string { return id + "\r\n" + ifname }

// allocate reserves one address of each range for container id's
// interface ifname, as host-local does: the next free one after the last
// reserved, wrapping around, the gateway skipped. A static address is
// taken if free and in its range.
func (s *ipamStore) allocate(network, id, ifname string, ranges []ipRange, static []netip.Addr) ([]netip.Prefix, error) {
	var got []netip.Prefix
	for i, r := range ranges {
		var want netip.Addr
		for _, a := range static {
			if r.subnet.Contains(a) {
				want = a
			}
		}
		var a netip.Addr
		var err error
		if want.IsValid() {
			a, err = s.reserveStatic(network, id, ifname, r, want, i)
		} else {
			a, err = s.reserveNext(network, id, ifname, r, i)
		}
		if err != nil {
			s.releaseAddrs(id, ifname, got)
			return nil, err
		}
		got = append(got, netip.PrefixFrom(a, r.subnet.Bits()))
	}
	for _, a := range static {
		if !containsAddr(got, a) {
			s.releaseAddrs(id, ifname, got)
			return nil, fmt.Errorf("network %s: address %s is in none of its subnets", network, a)
		}
	}
	return got, nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func (s *ipamStore) reserveStatic(network, id, ifname string, r ipRange, a netip.Addr, set int) (netip.Addr, error) {
	if a.Less(r.first) || r.last.Less(a) || a == r.gateway {
		return a, fmt.Errorf("network %s: address %s is outside its range %s-%s or the gateway", network, a, r.first, r.last)
	}
	ok, err := s.reserve(id, ifname, a, set)
	if err != nil {
		return a, fmt.Errorf("network %s: reserve %s: %w", network, a, err)
	}
	if !ok {
		return a, fmt.Errorf("network %s: address %s is already in use", network, a)
	}
	return a, nil
}

func (s *ipamStore) reserveNext(network, id, ifname string, r ipRange, set int) (netip.Addr, error) {
	start := r.first
	if data, err := os.ReadFile(filepath.Join(s.dir, "last_reserved_ip."+strconv.Itoa(set))); err == nil {
		if last, err := netip.ParseAddr(strings.TrimSpace(string(data))); err == nil && !last.Less(r.first) && last.Less(r.last) {
			start = last.Next()
		}
	}
	a := start
	for {
		if a != r.gateway {
			ok, err := s.reserve(id, ifname, a, set)
			if err != nil {
				return a, fmt.Errorf("network %s: reserve %s: %w", network, a, err)
			}
			if ok {
				return a, nil
			}
		}
		if a == r.last {
			a = r.first
		} else {
			a = a.Next()
		}
		if a == start {
			return a, fmt.Errorf("network %s: no free address in %s (range %s-%s): every address is in use", network, r.subnet, r.first, r.last)
		}
	}
}

// reserve takes address a if no one has it (exclusive create, as
// host-local's O_EXCL), and notes it as the last reserved of range set
// set.
func (s *ipamStore) reserve(id, ifname string, a netip.Addr, set int) (bool, error) {
	err := createExclusive(filepath.Join(s.dir, a.String()), ipamOwner(id, ifname), id)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(filepath.Join(s.dir, "last_reserved_ip."+strconv.Itoa(set)), []byte(a.String()), 0o644)
}

// releaseAddrs frees addresses of id's interface ifname, each only if it
// is still id's.
func (s *ipamStore) releaseAddrs(id, ifname string, addrs []netip.Prefix) {
	for _, p := range addrs {
		path := filepath.Join(s.dir, p.Addr().String())
		if data, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(data)) == ipamOwner(id, ifname) {
			os.Remove(path)
		}
	}
}

// releaseID frees every address of container id's interface ifname (all
// of id's if ifname is empty), reading each file as host-local does: for
// records that do not know their addresses.
func (s *ipamStore) releaseID(id, ifname string) error {
	owners, err := s.owners()
	if err != nil {
		return err
	}
	for addr, owner := range owners {
		oid, oif, _ := strings.Cut(owner, "\r\n")
		if oid == id && (ifname == "" || oif == ifname || oif == "") {
			if err := os.Remove(filepath.Join(s.dir, addr)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(s.dir, tmpPrefix(id)+"*")) // a reservation killed midway
	for _, t := range tmps {
		os.Remove(t)
	}
	return nil
}

// owners maps each reserved address to its owner line.
func (s *ipamStore) owners() (map[string]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	owners := map[string]string{}
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue // lock, last_reserved_ip.N
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue
		}
		owners[e.Name()] = strings.TrimSpace(string(data))
	}
	return owners, nil
}
