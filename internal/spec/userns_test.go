package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUserNamespaceSpec(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	o := Options{UIDMap: m, GIDMap: m,
		Mounts:      []Mount{{Type: "bind", Source: "/h", Destination: "/plain"}, {Type: "bind", Source: "/h2", Destination: "/mapped", Options: []string{"idmap"}}, {Type: "volume", Source: "/v", Destination: "/vol"}},
		ExtraMounts: []specs.Mount{{Destination: "/etc/hosts", Type: "bind", Source: "/x/hosts", Options: []string{"rbind"}}},
	}
	s, err := Generate(nil, "/rootfs", withCmd(o))
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Namespaces[0].Type != specs.UserNamespace || s.Linux.Namespaces[0].Path != "" || !slices.Equal(s.Linux.UIDMappings, m) {
		t.Errorf("namespaces %v, uid mappings %v: want a new user namespace first with %v", s.Linux.Namespaces, s.Linux.UIDMappings, m)
	}
	var got []string
	for _, i := range IDMapped(s, o) {
		got = append(got, s.Mounts[i].Destination)
	}
	if want := []string{"/mapped", "/vol", "/etc/hosts"}; !slices.Equal(got, want) {
		t.Errorf("idmapped mounts %v, want %v (not the plain bind)", got, want)
	}
	o.IDMapBinds = true
	if n := len(IDMapped(s, o)); n != 4 {
		t.Errorf("with IDMapBinds: %d idmapped mounts, want 4", n)
	}
	o.UsernsMode = "ns:/run/p/ns/user"
	if s, err = Generate(nil, "/rootfs", withCmd(o)); err != nil || s.Linux.Namespaces[0].Path != "/run/p/ns/user" {
		t.Errorf("joined user namespace: %v, %v", s.Linux.Namespaces, err)
	}
	o.GIDMap = nil
	if _, err := Generate(nil, "/rootfs", withCmd(o)); err == nil {
		t.Error("a uid mapping without a gid mapping was taken")
	}
	for _, bad := range []string{"0:1", "a:1:1", "0:1:0", "1:4294967295:2"} {
		if _, err := ParseIDMap("--uidmap", bad); err == nil {
			t.Errorf("ParseIDMap(%q) took it", bad)
		}
	}
	if err := CheckIDMaps("--uidmap", []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100, Size: 10}, {ContainerID: 5, HostID: 200, Size: 10}}); err == nil {
		t.Error("overlapping container ranges were taken")
	}
}

func withCmd(o Options) Options {
	o.Cmd, o.Hostname = []string{"true"}, "h"
	return o
}
