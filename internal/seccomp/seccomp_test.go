package seccomp

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultProfileCompiles(t *testing.T) {
	for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}} {
		p := Default(caps)
		f, err := Compile(p)
		if err != nil {
			t.Fatalf("caps %v: %v", caps, err)
		}
		f.Release()
	}
	// Without CAP_SYS_ADMIN, clone may not create namespaces and clone3
	// reports ENOSYS; with it, both are plain allows.
	hasClone3Errno := func(p *specs.LinuxSeccomp) bool {
		for _, r := range p.Syscalls {
			if len(r.Names) == 1 && r.Names[0] == "clone3" && r.Action == specs.ActErrno {
				return true
			}
		}
		return false
	}
	if !hasClone3Errno(Default(nil)) || hasClone3Errno(Default([]string{"CAP_SYS_ADMIN"})) {
		t.Fatal("clone3 handling does not follow CAP_SYS_ADMIN")
	}
}

func TestCompileFullSpec(t *testing.T) {
	errno := uint(38)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActAllow,
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Flags:           []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		DefaultErrnoRet: &errno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "no_such_syscall"}, Action: specs.ActErrno, ErrnoRet: &errno},
			// Two conditions on one argument: "any of", compiled as
			// separate rules.
			{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo},
			}},
			{Names: []string{"socket"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 40, Op: specs.OpEqualTo}, {Index: 1, Value: 0xf, ValueTwo: 1, Op: specs.OpMaskedEqual},
			}},
			{Names: []string{"getpid"}, Action: specs.ActAllow}, // same as default: skipped
		},
	}
	f, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
}

func TestCompileRejectsBadInput(t *testing.T) {
	for name, p := range map[string]*specs.LinuxSeccomp{
		"action":   {DefaultAction: "SCMP_ACT_NOPE"},
		"arch":     {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_NOPE"}},
		"flag":     {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"NOPE"}},
		"operator": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "NOPE"}}}}},
		"notify":   {DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"},
	} {
		if _, err := Compile(p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "seccomp") {
			t.Errorf("%s: error does not say seccomp: %v", name, err)
		}
	}
}
