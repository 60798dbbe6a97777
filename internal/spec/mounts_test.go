package spec

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func findMount(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func destinations(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func TestDefaultMounts(t *testing.T) {
	s := generate(t, image(nil, []string{"sh"}), Options{})
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}
	if got := destinations(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("mounts = %v, want %v", got, want)
	}
	for _, tc := range []struct{ dest, typ, opt string }{
		{"/proc", "proc", "noexec"}, {"/dev/pts", "devpts", "newinstance"}, {"/dev/shm", "tmpfs", "size=65536k"},
		{"/sys", "sysfs", "ro"}, {"/sys/fs/cgroup", "cgroup", "ro"}, {"/dev/mqueue", "mqueue", "nodev"},
	} {
		m := findMount(s, tc.dest)
		if m.Type != tc.typ || !slices.Contains(m.Options, tc.opt) {
			t.Errorf("%s = %+v, want type %s with %s", tc.dest, m, tc.typ, tc.opt)
		}
	}
	if len(s.Linux.MaskedPaths) == 0 || !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}

	p := generate(t, image(nil, []string{"sh"}), Options{Privileged: true})
	for _, dest := range []string{"/sys", "/sys/fs/cgroup"} {
		if m := findMount(p, dest); slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rw") {
			t.Errorf("privileged %s = %v, want rw", dest, m.Options)
		}
	}
	if len(p.Linux.MaskedPaths) != 0 || len(p.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged has masked %v readonly %v", p.Linux.MaskedPaths, p.Linux.ReadonlyPaths)
	}
}

func TestUserMounts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       Options
		dest    string
		want    specs.Mount
		wantErr string
	}{
		{name: "bind rw", o: Options{Mounts: []Mount{{Type: "bind", Source: "/srv/data/", Destination: "/data/"}}}, dest: "/data",
			want: specs.Mount{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "rw", "rprivate"}}},
		{name: "bind ro", o: Options{Mounts: []Mount{{Type: "bind", Source: "/srv", Destination: "/data", ReadOnly: true}}}, dest: "/data",
			want: specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro", "rprivate"}}},
		{name: "volume with propagation and ro option", o: Options{Mounts: []Mount{{Type: "volume", Source: "/var/lib/hull/volumes/v/_data", Destination: "/v", Options: []string{"rslave", "ro", "nocopy", "nosuid"}}}}, dest: "/v",
			want: specs.Mount{Destination: "/v", Type: "bind", Source: "/var/lib/hull/volumes/v/_data", Options: []string{"rbind", "ro", "rslave", "nosuid"}}},
		{name: "non-recursive bind", o: Options{Mounts: []Mount{{Type: "bind", Source: "/srv", Destination: "/data", Options: []string{"bind"}}}}, dest: "/data",
			want: specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"bind", "rw", "rprivate"}}},
		{name: "tmpfs defaults", o: Options{Tmpfs: map[string]string{"/run": ""}}, dest: "/run",
			want: specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev"}}},
		{name: "tmpfs options override", o: Options{Tmpfs: map[string]string{"/run": "exec,size=64m,size=32m"}}, dest: "/run",
			want: specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "exec", "size=32m"}}},
		{name: "tmpfs mount read-only", o: Options{Mounts: []Mount{{Type: "tmpfs", Destination: "/t", ReadOnly: true, Options: []string{"rw"}}}}, dest: "/t",
			want: specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "ro"}}},
		{name: "relative source", o: Options{Mounts: []Mount{{Type: "bind", Source: "data", Destination: "/data"}}}, wantErr: "not an absolute host path"},
		{name: "relative destination", o: Options{Mounts: []Mount{{Type: "bind", Source: "/d", Destination: "data"}}}, wantErr: "not an absolute path"},
		{name: "root destination", o: Options{Mounts: []Mount{{Type: "bind", Source: "/d", Destination: "/"}}}, wantErr: "can't be '/'"},
		{name: "unknown type", o: Options{Mounts: []Mount{{Type: "nfs", Source: "/d", Destination: "/d"}}}, wantErr: "unknown type"},
		{name: "duplicate", o: Options{Mounts: []Mount{{Type: "bind", Source: "/a", Destination: "/d"}}, Tmpfs: map[string]string{"/d/": ""}}, wantErr: "duplicate mount point: /d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.ID = testID
			s, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), tc.o)
			if checkErr(t, err, tc.wantErr) {
				return
			}
			if m := findMount(s, tc.dest); m == nil || !reflect.DeepEqual(*m, tc.want) {
				t.Errorf("mount = %+v\nwant %+v", m, tc.want)
			}
		})
	}
}

func TestMountOrder(t *testing.T) {
	s := generate(t, image(nil, []string{"sh"}), Options{
		Mounts: []Mount{
			{Type: "bind", Source: "/a/b", Destination: "/x/y/z"},
			{Type: "bind", Source: "/shm", Destination: "/dev/shm"},
			{Type: "bind", Source: "/a", Destination: "/x"},
			{Type: "bind", Source: "/hosts", Destination: "/etc/hosts"},
		},
		Tmpfs: map[string]string{"/x/y": ""},
		ExtraMounts: []specs.Mount{
			{Destination: "/etc/hosts", Type: "bind", Source: "/engine/hosts"},
			{Destination: "/etc/hostname", Type: "bind", Source: "/engine/hostname"},
		},
	})
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
		"/x", "/dev/shm", "/etc/hosts", "/x/y", "/x/y/z", "/etc/hostname"}
	if got := destinations(s); !reflect.DeepEqual(got, want) {
		t.Errorf("mounts = %v\nwant %v", got, want)
	}
	if m := findMount(s, "/etc/hosts"); m.Source != "/hosts" {
		t.Errorf("the engine's /etc/hosts replaced the user's: %+v", m)
	}
	// A user's /dev replaces every default under it.
	s = generate(t, image(nil, []string{"sh"}), Options{Mounts: []Mount{{Type: "bind", Source: "/dev", Destination: "/dev"}}})
	if got := destinations(s); !reflect.DeepEqual(got, []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"}) {
		t.Errorf("with -v /dev:/dev: %v", got)
	}
}

func TestHostDevices(t *testing.T) {
	devs, err := hostDevices("/dev")
	if err != nil {
		t.Fatal(err)
	}
	var null *specs.LinuxDevice
	for i, d := range devs {
		if d.Path == "/dev/null" {
			null = &devs[i]
		}
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("%s listed", d.Path)
		}
	}
	if null == nil || null.Type != "c" || null.Major != 1 || null.Minor != 3 || *null.FileMode != 0o666 {
		t.Errorf("/dev/null = %+v", null)
	}
	if _, err := hostDevices("/nonexistent"); err == nil {
		t.Error("a missing directory gave no error")
	}
}
