package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNamespaceModes(t *testing.T) {
	img := image(nil, []string{"sh"})
	types := func(s *specs.Spec) map[specs.LinuxNamespaceType]string {
		out := map[specs.LinuxNamespaceType]string{}
		for _, ns := range s.Linux.Namespaces {
			out[ns.Type] = ns.Path
		}
		return out
	}
	s := generate(t, img, Options{PidMode: "host", IpcMode: "host", UTSMode: "host", CgroupnsMode: "host"})
	got := types(s)
	for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace} {
		if _, ok := got[typ]; ok {
			t.Errorf("host mode: a %s namespace of its own", typ)
		}
	}
	if s.Hostname != "" {
		t.Errorf("--uts host: hostname %q set", s.Hostname)
	}
	s = generate(t, img, Options{PidMode: "container:a", IpcMode: "container:a", JoinNamespaces: map[string]string{"pid": "/proc/7/ns/pid", "ipc": "/proc/7/ns/ipc"}})
	if got := types(s); got[specs.PIDNamespace] != "/proc/7/ns/pid" || got[specs.IPCNamespace] != "/proc/7/ns/ipc" {
		t.Errorf("container:a: namespaces %v", got)
	}
	for _, o := range []Options{
		{PidMode: "bogus"}, {IpcMode: "container:"}, {UTSMode: "private"}, {CgroupnsMode: "x"},
		{UTSMode: "host", Hostname: "h"}, {PidMode: "container:a"}, {ShmSize: -1},
	} {
		o.ID = testID
		if _, err := Generate(img, fakeRootfs(t, testPasswd, testGroup), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestShm(t *testing.T) {
	img := image(nil, []string{"sh"})
	shm := func(o Options) *specs.Mount {
		for _, m := range generate(t, img, o).Mounts {
			if m.Destination == "/dev/shm" {
				return &m
			}
		}
		return nil
	}
	if m := shm(Options{}); m == nil || !slices.Contains(m.Options, "size=65536k") {
		t.Errorf("default /dev/shm: %+v", m)
	}
	if m := shm(Options{ShmSize: 128 << 20}); m == nil || !slices.Contains(m.Options, "size=134217728") {
		t.Errorf("--shm-size 128m: %+v", m)
	}
	if m := shm(Options{IpcMode: "none"}); m != nil {
		t.Errorf("--ipc none: %+v", m)
	}
	if m := shm(Options{IpcMode: "host", ShmSource: "/dev/shm"}); m == nil || m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("--ipc host: %+v", m)
	}
}

func TestSysctls(t *testing.T) {
	for in, ok := range map[string]bool{
		"kernel.shmmax=1": true, "net.ipv4.ip_forward=1": true, "fs.mqueue.msg_max=10": true, "kernel.sem=1 2 3 4": true,
		"vm.swappiness=10": false, "kernel.hostname=x": false, "net.ipv4.ip_forward": false, "=1": false,
	} {
		_, _, err := ParseSysctl(in)
		if (err == nil) != ok {
			t.Errorf("ParseSysctl(%q): %v", in, err)
		}
		if err != nil && !strings.Contains(err.Error(), "sysctl '"+in+"' is not allowed") {
			t.Errorf("ParseSysctl(%q): %v, want docker's message", in, err)
		}
	}
	img := image(nil, []string{"sh"})
	s := generate(t, img, Options{Sysctls: map[string]string{"net.core.somaxconn": "1024", "kernel.msgmax": "9"}})
	if s.Linux.Sysctl["net.core.somaxconn"] != "1024" || s.Linux.Sysctl["kernel.msgmax"] != "9" {
		t.Errorf("sysctls: %v", s.Linux.Sysctl)
	}
	for _, o := range []Options{
		{Network: "host", Sysctls: map[string]string{"net.core.somaxconn": "1"}},
		{IpcMode: "host", Sysctls: map[string]string{"kernel.msgmax": "1"}},
	} {
		o.ID = testID
		if _, err := Generate(img, fakeRootfs(t, testPasswd, testGroup), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]Device{
		"/dev/fuse":           {"/dev/fuse", "/dev/fuse", "rwm"},
		"/dev/fuse:r":         {"/dev/fuse", "/dev/fuse", "r"},
		"/dev/fuse:/dev/f":    {"/dev/fuse", "/dev/f", "rwm"},
		"/dev/fuse:/dev/f:rw": {"/dev/fuse", "/dev/f", "rw"},
	} {
		got, err := ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"fuse", "/dev/fuse:dev/f", "/dev/fuse:/dev/f:x", "/a:/b:r:w"} {
		if _, err := ParseDevice(in); err == nil {
			t.Errorf("ParseDevice(%q): no error", in)
		}
	}
	for in, ok := range map[string]bool{"c 1:3 mr": true, "b *:* rwm": true, "a *:* rwm": true, "c 1:3": false, "x 1:3 r": false, "c 1:3 rx": false} {
		if _, err := ParseDeviceCgroupRule(in); (err == nil) != ok {
			t.Errorf("ParseDeviceCgroupRule(%q): %v", in, err)
		}
	}
	s := generate(t, image(nil, []string{"sh"}), Options{Devices: []Device{{"/dev/null", "/dev/mynull", "r"}}, DeviceCgroupRules: []string{"c 10:200 rw"}})
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/mynull" || s.Linux.Devices[0].Major != 1 || s.Linux.Devices[0].Minor != 3 {
		t.Errorf("devices: %+v", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	if r := rules[len(rules)-1]; r.Access != "r" || *r.Major != 1 || *r.Minor != 3 {
		t.Errorf("--device rule: %+v", r)
	}
	if r := rules[len(rules)-2]; r.Access != "rw" || *r.Major != 10 || *r.Minor != 200 {
		t.Errorf("--device-cgroup-rule: %+v", r)
	}
}

func TestParseThrottleDevice(t *testing.T) {
	if d, err := ParseThrottleDevice("/dev/sda:1mb", false); err != nil || d.Rate != 1<<20 {
		t.Errorf("bps: %+v %v", d, err)
	}
	if d, err := ParseThrottleDevice("/dev/sda:1000", true); err != nil || d.Rate != 1000 {
		t.Errorf("iops: %+v %v", d, err)
	}
	for _, in := range []string{"/dev/sda", "sda:1", "/dev/sda:x"} {
		if _, err := ParseThrottleDevice(in, true); err == nil {
			t.Errorf("ParseThrottleDevice(%q): no error", in)
		}
	}
}

func TestApplySecurityOpt(t *testing.T) {
	for in, want := range map[string]bool{"no-new-privileges": true, "no-new-privileges=false": false, "no-new-privileges:false": false, "no-new-privileges:true": true} {
		var o Options
		if err := ApplySecurityOpt(&o, in); err != nil || o.NoNewPrivileges == nil || *o.NoNewPrivileges != want {
			t.Errorf("%s: %v %v", in, o.NoNewPrivileges, err)
		}
	}
	var o Options
	for _, ok := range []string{"label=disable", "label:user:x", "apparmor=unconfined", "seccomp:unconfined"} {
		if err := ApplySecurityOpt(&o, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	saved := apparmorEnabled
	defer func() { apparmorEnabled = saved }()
	apparmorEnabled = func() bool { return false }
	if err := ApplySecurityOpt(&o, "apparmor=docker-default"); err == nil || !strings.Contains(err.Error(), "AppArmor is not enabled") {
		t.Errorf("apparmor profile without AppArmor: %v", err)
	}
	for _, bad := range []string{"no-new-privileges=maybe", "bogus", "label", "seccomp"} {
		if err := ApplySecurityOpt(&o, bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseLabelFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	os.WriteFile(p, []byte("\xef\xbb\xbf# c\n\n  a=1\nb\nc=x=y\r\n"), 0o644)
	got, err := ParseLabelFile(p)
	if want := []string{"a=1", "b", "c=x=y"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseLabelFile = %q, %v; want %q", got, err, want)
	}
	os.WriteFile(p, []byte("a b=1\n"), 0o644)
	if _, err := ParseLabelFile(p); err == nil {
		t.Error("a key with a space: no error")
	}
}

func TestCPUAndMemoryKnobs(t *testing.T) {
	img := image(nil, []string{"sh"})
	s := generate(t, img, Options{CPUPeriod: 50000, CPUQuota: 25000, CpusetMems: "0"})
	c := s.Linux.Resources.CPU
	if c == nil || *c.Period != 50000 || *c.Quota != 25000 || c.Mems != "0" {
		t.Errorf("cpu: %+v", c)
	}
	for _, o := range []Options{
		{NanoCPUs: 1e9, CPUQuota: 50000}, {CPUPeriod: 10}, {CPUQuota: 5}, {CpusetMems: "99"},
		{BlkioWeight: 5}, {CPURealtimePeriod: 1000, CPURealtimeRuntime: 2000},
	} {
		o.ID = testID
		if _, err := Generate(img, fakeRootfs(t, testPasswd, testGroup), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if w := Warnings(Options{KernelMemory: 1 << 20}); len(w) != 1 || !strings.Contains(w[0], "kernel-memory") {
		t.Errorf("--kernel-memory warnings: %q", w)
	}
}
