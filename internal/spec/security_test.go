package spec

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/runtime"
	"hull/internal/seccomp"
)

func TestCapabilities(t *testing.T) {
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(DefaultCapabilities), func(c string) bool { return slices.Contains(drop, c) })
	}
	all := allCapabilities()
	for _, tc := range []struct {
		name    string
		o       Options
		want    []string
		wantErr string
	}{
		{name: "docker's 14", want: DefaultCapabilities},
		{name: "add", o: Options{CapAdd: []string{"net_admin", "CAP_SYS_PTRACE", "chown"}}, want: append(slices.Clone(DefaultCapabilities), "CAP_NET_ADMIN", "CAP_SYS_PTRACE")},
		{name: "drop", o: Options{CapDrop: []string{"Chown", "CAP_NET_RAW"}}, want: without("CAP_CHOWN", "CAP_NET_RAW")},
		{name: "drop wins over add", o: Options{CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"NET_ADMIN", "KILL"}}, want: append(without("CAP_KILL"), "CAP_NET_ADMIN")},
		{name: "add all", o: Options{CapAdd: []string{"all"}, CapDrop: []string{"SYS_ADMIN"}}, want: slices.DeleteFunc(slices.Clone(all), func(c string) bool { return c == "CAP_SYS_ADMIN" })},
		{name: "drop all", o: Options{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop all only", o: Options{CapDrop: []string{"ALL"}}, want: []string{}},
		{name: "privileged", o: Options{Privileged: true, CapDrop: []string{"ALL"}}, want: all},
		{name: "unknown", o: Options{CapAdd: []string{"FLY"}}, wantErr: `unknown capability "FLY"`},
		{name: "unknown drop", o: Options{CapDrop: []string{"CAP_NOPE"}}, wantErr: `unknown capability "CAP_NOPE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.ID = testID
			s, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, testPasswd, testGroup), tc.o)
			if checkErr(t, err, tc.wantErr) {
				return
			}
			c := s.Process.Capabilities
			if !slices.Equal(c.Bounding, tc.want) || !slices.Equal(c.Effective, tc.want) || !slices.Equal(c.Permitted, tc.want) {
				t.Errorf("caps = %+v\nwant %v", c, tc.want)
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("inheritable %v ambient %v", c.Inheritable, c.Ambient)
			}
		})
	}
	if len(all) < 38 || all[0] != "CAP_CHOWN" {
		t.Errorf("all capabilities: %v", all)
	}
}

func TestCapabilitiesNonRoot(t *testing.T) {
	for _, user := range []string{"app", "1000:0", "4242"} {
		s := generate(t, image(nil, []string{"sh"}), Options{User: user, CapAdd: []string{"NET_ADMIN"}})
		c := s.Process.Capabilities
		if c.Effective == nil || len(c.Effective) != 0 || c.Permitted == nil || len(c.Permitted) != 0 {
			t.Errorf("user %s: effective %v permitted %v, want empty", user, c.Effective, c.Permitted)
		}
		if !slices.Contains(c.Bounding, "CAP_NET_ADMIN") || !slices.Contains(c.Bounding, "CAP_CHOWN") {
			t.Errorf("user %s: bounding %v", user, c.Bounding)
		}
	}
	// root by name or by the image's default keeps them
	if c := generate(t, image(nil, []string{"sh"}), Options{User: "root"}).Process.Capabilities; !slices.Equal(c.Effective, DefaultCapabilities) {
		t.Errorf("root: effective %v", c.Effective)
	}
}

func TestSeccompChoice(t *testing.T) {
	s := generate(t, image(nil, []string{"sh"}), Options{})
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("default profile: %+v", s.Linux.Seccomp)
	}
	// the default profile is built for the container's capabilities
	want := seccomp.Default(append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN"))
	got := generate(t, image(nil, []string{"sh"}), Options{CapAdd: []string{"SYS_ADMIN"}}).Linux.Seccomp
	if len(got.Syscalls) != len(want.Syscalls) {
		t.Errorf("profile with SYS_ADMIN has %d rules, seccomp.Default %d", len(got.Syscalls), len(want.Syscalls))
	}
	if s := generate(t, image(nil, []string{"sh"}), Options{Seccomp: "unconfined"}); s.Linux.Seccomp != nil {
		t.Error("unconfined has a profile")
	}
	if s := generate(t, image(nil, []string{"sh"}), Options{Privileged: true}); s.Linux.Seccomp != nil {
		t.Error("privileged has a profile")
	}
	missing := filepath.Join(t.TempDir(), "nope.json")
	if _, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), Options{ID: testID, Seccomp: missing}); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("missing profile: %v", err)
	}
}

const testProfile = `{
	"defaultAction": "SCMP_ACT_ERRNO",
	"defaultErrnoRet": 1,
	"archMap": [
		{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
		{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
	],
	"syscalls": [
		{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW", "comment": "basics"},
		{"name": "getpid", "action": "SCMP_ACT_ALLOW"},
		{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
		{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT", "CAP_KILL"]}},
		{"names": ["arch_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["` + goruntime.GOARCH + `"]}},
		{"names": ["other_arch"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["sparc"]}},
		{"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
		{"names": ["old"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "3.2"}},
		{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["kill_me"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
	]
}`

func TestParseSeccompProfile(t *testing.T) {
	names := func(s *specs.LinuxSeccomp) []string {
		var out []string
		for _, sc := range s.Syscalls {
			out = append(out, sc.Names...)
		}
		return out
	}
	s, err := ParseSeccompProfile([]byte(testProfile), DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"read", "write", "exit_group", "getpid", "personality", "arch_only", "old", "clone", "kill_me"}
	if got := names(s); !slices.Equal(got, want) {
		t.Errorf("syscalls = %v\nwant %v", got, want)
	}
	if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != 1 {
		t.Errorf("default action %s %v", s.DefaultAction, s.DefaultErrnoRet)
	}
	if p := s.Syscalls[2]; len(p.Args) != 1 || p.Args[0].Value != 8 || p.Args[0].Op != specs.OpEqualTo {
		t.Errorf("personality args: %+v", p.Args)
	}
	if e := s.Syscalls[len(s.Syscalls)-1]; e.ErrnoRet == nil || *e.ErrnoRet != 38 {
		t.Errorf("errnoRet: %+v", e)
	}
	switch goruntime.GOARCH {
	case "amd64":
		if !slices.Equal(s.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
			t.Errorf("architectures = %v", s.Architectures)
		}
	case "arm64":
		if !slices.Equal(s.Architectures, []specs.Arch{specs.ArchAARCH64, specs.ArchARM}) {
			t.Errorf("architectures = %v", s.Architectures)
		}
	}

	withAdmin, err := ParseSeccompProfile([]byte(testProfile), append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN", "CAP_SYS_BOOT"))
	if err != nil {
		t.Fatal(err)
	}
	got := names(withAdmin)
	if !slices.Contains(got, "mount") || !slices.Contains(got, "reboot") || slices.Contains(got, "clone") {
		t.Errorf("with SYS_ADMIN and SYS_BOOT: %v", got)
	}

	// The profile compiles with hull's seccomp package (what the runtime loads).
	prof := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := generate(t, image(nil, []string{"sh"}), Options{Seccomp: prof})
	if f, err := seccomp.Compile(gen.Linux.Seccomp); err != nil {
		t.Errorf("compile: %v", err)
	} else {
		f.Release()
	}
}

func TestParseSeccompProfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, wantErr string }{
		{"bad json", `{"defaultAction": `, "decoding JSON"},
		{"not an object", `[]`, "decoding JSON"},
		{"no default", `{"syscalls": []}`, "defaultAction is missing"},
		{"bad default", `{"defaultAction": "SCMP_ACT_MAYBE"}`, `unknown defaultAction "SCMP_ACT_MAYBE"`},
		{"bad action", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}`, `syscalls[0] (read): unknown action "ALLOW"`},
		{"bad op", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}`, `unknown operator "EQ"`},
		{"name and names", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}`, "both name and names"},
		{"no names", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`, "names no syscall"},
		{"arch and archMap", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{"bad arch", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}`, `unknown architecture "x86_64"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSeccompProfile([]byte(tc.json), DefaultCapabilities); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	// Through Generate the error names the file.
	prof := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(prof, []byte("{nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), Options{ID: testID, Seccomp: prof})
	if err == nil || !strings.Contains(err.Error(), "seccomp profile "+prof+": decoding JSON") {
		t.Errorf("err = %v", err)
	}
}

func TestParseKernel(t *testing.T) {
	for in, want := range map[string][2]int{"5.10.0-23-amd64": {5, 10}, "6.1": {6, 1}, "4.19.0+": {4, 19}} {
		if got, ok := parseKernel(in); !ok || got != want {
			t.Errorf("parseKernel(%q) = %v %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "6", "x.y"} {
		if _, ok := parseKernel(in); ok {
			t.Errorf("parseKernel(%q) accepted", in)
		}
	}
}

// TestCapAddUnavailable: a capability hull itself lacks (a sandboxed host)
// is refused with a reason instead of failing later in capset.
func TestCapAddUnavailable(t *testing.T) {
	var missing string
	for i, c := range runtime.CapabilityNames() {
		if !available(i) {
			missing = c
			break
		}
	}
	if missing == "" {
		t.Skip("this host grants hull every capability")
	}
	_, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), Options{ID: testID, CapAdd: []string{missing}})
	if err == nil || !strings.Contains(err.Error(), "--cap-add "+missing+": this host does not let hull grant it") {
		t.Errorf("err = %v", err)
	}
	if s := generate(t, image(nil, []string{"sh"}), Options{Privileged: true}); slices.Contains(s.Process.Capabilities.Bounding, missing) {
		t.Errorf("privileged includes %s, which hull cannot grant", missing)
	}
}
