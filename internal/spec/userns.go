package spec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ParseIDMap reads podman's --uidmap/--gidmap value CONTAINER:HOST:SIZE
// (a container id range mapped to host ids); flag names it in errors.
func ParseIDMap(flag, s string) (specs.LinuxIDMapping, error) {
	f := strings.Split(s, ":")
	bad := func(why string) (specs.LinuxIDMapping, error) {
		return specs.LinuxIDMapping{}, fmt.Errorf("invalid %s %q: %s (use CONTAINER_ID:HOST_ID:SIZE, e.g. 0:100000:65536)", flag, s, why)
	}
	if len(f) != 3 {
		return bad("three numbers separated by colons are needed")
	}
	var n [3]uint32
	for i, v := range f {
		x, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad(fmt.Sprintf("%q is not a number", v))
		}
		n[i] = uint32(x)
	}
	if n[2] == 0 {
		return bad("the size must be at least 1")
	}
	if uint64(n[0])+uint64(n[2]) > 1<<32 || uint64(n[1])+uint64(n[2]) > 1<<32 {
		return bad("the range goes past the last id 4294967295")
	}
	return specs.LinuxIDMapping{ContainerID: n[0], HostID: n[1], Size: n[2]}, nil
}

// CheckIDMaps checks a set of mappings as the kernel would take them (at
// most 340 lines, no two container or host ranges overlapping), so a
// bad one fails at create with a message instead of the runtime's EINVAL.
func CheckIDMaps(flag string, ms []specs.LinuxIDMapping) error {
	if len(ms) > 340 {
		return fmt.Errorf("%s: %d mappings, the kernel takes at most 340", flag, len(ms))
	}
	overlap := func(a, b, n, m uint32) bool {
		return uint64(a) < uint64(b)+uint64(m) && uint64(b) < uint64(a)+uint64(n)
	}
	for i, a := range ms {
		for _, b := range ms[:i] {
			if overlap(a.ContainerID, b.ContainerID, a.Size, b.Size) {
				return fmt.Errorf("%s: container ids %d-%d are mapped twice", flag, a.ContainerID, a.ContainerID+a.Size-1)
			}
			if overlap(a.HostID, b.HostID, a.Size, b.Size) {
				return fmt.Errorf("%s: host ids %d-%d are mapped twice", flag, a.HostID, a.HostID+a.Size-1)
			}
		}
	}
	return nil
}

// HostID is the host id container id maps to in ms, and whether it is
// mapped.
func HostID(ms []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, m := range ms {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return 0, false
}

// userNamespace puts the container in its user namespace: a new one with
// o's mappings, or the one UsernsMode names (the mappings then tell the
// runtime who the container's root is). Nothing without UIDMap.
func userNamespace(s *specs.Spec, o Options) error {
	if len(o.UIDMap) == 0 && len(o.GIDMap) == 0 {
		if o.UsernsMode != "" && o.UsernsMode != "host" {
			return fmt.Errorf("user namespace mode %q needs --uidmap and --gidmap", o.UsernsMode)
		}
		return nil
	}
	if len(o.UIDMap) == 0 || len(o.GIDMap) == 0 {
		return fmt.Errorf("a user namespace needs both --uidmap and --gidmap")
	}
	if err := CheckIDMaps("--uidmap", o.UIDMap); err != nil {
		return err
	}
	if err := CheckIDMaps("--gidmap", o.GIDMap); err != nil {
		return err
	}
	ns := specs.LinuxNamespace{Type: specs.UserNamespace}
	switch p := nsPath(o.UsernsMode); {
	case p != "":
		ns.Path = p
	case o.UsernsMode == "" || o.UsernsMode == "private":
	default:
		return fmt.Errorf("user namespace mode %q: use private (with --uidmap) or host", o.UsernsMode)
	}
	// The user namespace first: the others are made in (or must be owned
	// by) it.
	s.Linux.Namespaces = append([]specs.LinuxNamespace{ns}, s.Linux.Namespaces...)
	s.Linux.UIDMappings = slices.Clone(o.UIDMap)
	s.Linux.GIDMappings = slices.Clone(o.GIDMap)
	return nil
}

// IDMapped lists the indexes of s's mounts the engine idmaps for a
// container in a user namespace: binds of named volumes, of the engine's
// own files (o.ExtraMounts: /etc/hosts, resolv.conf, hostname) and of
// mounts given the "idmap" option (podman's), or every bind with
// IDMapBinds; never the init binary (read and run only).
func IDMapped(s *specs.Spec, o Options) []int {
	if len(o.UIDMap) == 0 {
		return nil
	}
	plain := map[string]bool{} // host binds without idmap
	for _, m := range o.Mounts {
		if (m.Type == "bind" || m.Type == "") && !o.IDMapBinds && !slices.Contains(m.Options, "idmap") {
			plain[filepath.Clean(m.Destination)] = true
		}
	}
	var out []int
	for i, m := range s.Mounts {
		if m.Type != "bind" || m.Destination == InitTarget || plain[m.Destination] {
			continue
		}
		if m.Destination == "/dev/shm" && o.ShmSource == "" {
			continue
		}
		out = append(out, i)
	}
	return out
}
