package spec

import (
	"math"
	"reflect"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// pin sets a package variable for one test.
func pin[T any](t *testing.T, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func TestResources(t *testing.T) {
	pin(t, &swapAccounting, func() bool { return true })
	pin(t, &onlineCPUs, func() string { return "0-3,6" })
	ncpu := int64(goruntime.NumCPU())
	for _, tc := range []struct {
		name    string
		o       Options
		check   func(r *specs.LinuxResources) bool
		wantErr string
	}{
		{name: "nothing", check: func(r *specs.LinuxResources) bool { return r.Memory == nil && r.CPU == nil && r.Pids == nil }},
		{name: "memory doubles as swap", o: Options{Memory: 32 << 20}, check: func(r *specs.LinuxResources) bool {
			return reflect.DeepEqual(r.Memory, &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(64 << 20)})
		}},
		{name: "memory swap", o: Options{Memory: 32 << 20, MemorySwap: 48 << 20, MemoryReservation: 16 << 20}, check: func(r *specs.LinuxResources) bool {
			return reflect.DeepEqual(r.Memory, &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(48 << 20), Reservation: i64(16 << 20)})
		}},
		{name: "unlimited swap", o: Options{Memory: 32 << 20, MemorySwap: -1}, check: func(r *specs.LinuxResources) bool {
			return *r.Memory.Swap == -1
		}},
		{name: "reservation alone", o: Options{MemoryReservation: 16 << 20}, check: func(r *specs.LinuxResources) bool {
			return reflect.DeepEqual(r.Memory, &specs.LinuxMemory{Reservation: i64(16 << 20)})
		}},
		{name: "memory too small", o: Options{Memory: 1 << 20}, wantErr: "--memory 1m is too small: the minimum is 6MB"},
		{name: "swap below memory", o: Options{Memory: 64 << 20, MemorySwap: 32 << 20}, wantErr: "--memory-swap 32m is below --memory 64m"},
		{name: "swap without memory", o: Options{MemorySwap: 32 << 20}, wantErr: "--memory-swap needs --memory"},
		{name: "bad swap", o: Options{Memory: 32 << 20, MemorySwap: -2}, wantErr: "invalid --memory-swap"},
		{name: "reservation above memory", o: Options{Memory: 32 << 20, MemoryReservation: 64 << 20}, wantErr: "--memory-reservation 64m is above --memory 32m"},
		{name: "negative memory", o: Options{Memory: -5}, wantErr: "invalid --memory"},
		{name: "cpus", o: Options{NanoCPUs: 5e8}, check: func(r *specs.LinuxResources) bool {
			return *r.CPU.Quota == 50000 && *r.CPU.Period == 100000
		}},
		{name: "all cpus", o: Options{NanoCPUs: ncpu * 1e9}, check: func(r *specs.LinuxResources) bool {
			return *r.CPU.Quota == ncpu*100000
		}},
		{name: "too many cpus", o: Options{NanoCPUs: ncpu*1e9 + 1e8}, wantErr: "the range is 0.01 to"},
		{name: "too few cpus", o: Options{NanoCPUs: 1e6}, wantErr: "the range is 0.01 to"},
		{name: "shares", o: Options{CPUShares: 512}, check: func(r *specs.LinuxResources) bool {
			return reflect.DeepEqual(r.CPU, &specs.LinuxCPU{Shares: u64(512)})
		}},
		{name: "negative shares", o: Options{CPUShares: -1}, wantErr: "invalid --cpu-shares"},
		{name: "cpuset", o: Options{CpusetCpus: "0-2,6"}, check: func(r *specs.LinuxResources) bool { return r.CPU.Cpus == "0-2,6" }},
		{name: "cpuset unavailable", o: Options{CpusetCpus: "4-5"}, wantErr: "CPU 4 is not available (online: 0-3,6)"},
		{name: "cpuset syntax", o: Options{CpusetCpus: "0-"}, wantErr: "invalid --cpuset-cpus"},
		{name: "cpuset backwards", o: Options{CpusetCpus: "3-1"}, wantErr: "invalid --cpuset-cpus"},
		{name: "pids", o: Options{PidsLimit: 100}, check: func(r *specs.LinuxResources) bool { return *r.Pids.Limit == 100 }},
		{name: "pids unlimited", o: Options{PidsLimit: -1}, check: func(r *specs.LinuxResources) bool { return *r.Pids.Limit == -1 }},
		{name: "bad pids", o: Options{PidsLimit: -7}, wantErr: "invalid --pids-limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.ID = testID
			s, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), tc.o)
			if checkErr(t, err, tc.wantErr) {
				return
			}
			if !tc.check(s.Linux.Resources) {
				t.Errorf("resources: memory %+v cpu %+v pids %+v", s.Linux.Resources.Memory, s.Linux.Resources.CPU, s.Linux.Resources.Pids)
			}
		})
	}
}

func TestNoSwapAccounting(t *testing.T) {
	pin(t, &swapAccounting, func() bool { return false })
	s := generate(t, image(nil, []string{"sh"}), Options{Memory: 32 << 20})
	if m := s.Linux.Resources.Memory; m.Swap != nil {
		t.Errorf("swap %d set without swap accounting", *m.Swap)
	}
}

func TestDevices(t *testing.T) {
	s := generate(t, image(nil, []string{"sh"}), Options{})
	d := s.Linux.Resources.Devices
	if len(d) == 0 || d[0].Allow || d[0].Access != "rwm" || d[0].Type != "" {
		t.Fatalf("first rule is not deny-all: %+v", d)
	}
	allowed := map[[2]int64]bool{}
	for _, r := range d[1:] {
		if r.Allow && r.Type == "c" && r.Access == "rwm" {
			allowed[[2]int64{*r.Major, *r.Minor}] = true
		}
	}
	for name, dev := range map[string][2]int64{"null": {1, 3}, "zero": {1, 5}, "full": {1, 7}, "random": {1, 8}, "urandom": {1, 9},
		"tty": {5, 0}, "console": {5, 1}, "ptmx": {5, 2}, "pts": {136, -1}} {
		if !allowed[dev] {
			t.Errorf("%s (%d:%d) not allowed", name, dev[0], dev[1])
		}
	}
	if len(allowed) != 9 {
		t.Errorf("allowed %v, want exactly docker's 9", allowed)
	}
	if len(s.Linux.Devices) != 0 {
		t.Errorf("unprivileged container gets devices %v", s.Linux.Devices)
	}

	p := generate(t, image(nil, []string{"sh"}), Options{Privileged: true})
	if d := p.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Major != nil {
		t.Errorf("privileged device rules: %+v", d)
	}
	if !slices.ContainsFunc(p.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Errorf("privileged devices lack /dev/null: %v", p.Linux.Devices)
	}
}

func TestRlimits(t *testing.T) {
	s := generate(t, image(nil, []string{"sh"}), Options{Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "CORE", Soft: -1, Hard: -1}, {Name: "nproc", Soft: 10, Hard: -1}}})
	want := []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048},
		{Type: "RLIMIT_CORE", Soft: math.MaxUint64, Hard: math.MaxUint64},
		{Type: "RLIMIT_NPROC", Soft: 10, Hard: math.MaxUint64},
	}
	if !reflect.DeepEqual(s.Process.Rlimits, want) {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	if s := generate(t, image(nil, []string{"sh"}), Options{}); len(s.Process.Rlimits) != 0 {
		t.Errorf("rlimits without --ulimit: %v", s.Process.Rlimits)
	}
	for _, tc := range []struct {
		u       []Ulimit
		wantErr string
	}{
		{[]Ulimit{{Name: "files", Soft: 1, Hard: 1}}, `invalid ulimit type "files"`},
		{[]Ulimit{{Name: "nofile", Soft: 2, Hard: 1}}, "soft limit 2 is above the hard limit 1"},
		{[]Ulimit{{Name: "nofile", Soft: -1, Hard: 10}}, "soft limit -1 is above the hard limit 10"},
		{[]Ulimit{{Name: "nofile", Soft: -3, Hard: 10}}, "limits must be positive"},
		{[]Ulimit{{Name: "nofile", Soft: 1, Hard: 1}, {Name: "NOFILE", Soft: 1, Hard: 1}}, "given twice"},
	} {
		_, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), Options{ID: testID, Ulimits: tc.u})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: err = %v, want %q", tc.u, err, tc.wantErr)
		}
	}
}
