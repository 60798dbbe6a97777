// Package seccomp compiles the OCI seccomp section (actions, errnoRet,
// architectures, argument conditions, flags) into a BPF filter with
// libseccomp and loads it, and provides hull's default profile.
package seccomp

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Load compiles s and installs it on the calling thread (the runtime execs
// right after). It does not set no_new_privs; the runtime does that per
// the spec's process.noNewPrivileges.
func Load(s *specs.LinuxSeccomp) error {
	f, err := Compile(s)
	if err != nil {
		return err
	}
	defer f.Release()
	if err := f.Load(); err != nil {
		return fmt.Errorf("seccomp: load filter: %w", err)
	}
	return nil
}

// Compile builds the libseccomp filter for s without loading it.
func Compile(s *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, error) {
	if s.ListenerPath != "" {
		return nil, errors.New("seccomp: listenerPath (SCMP_ACT_NOTIFY) is not supported")
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	// A binary tree of syscall numbers instead of one long chain: the
	// kernel works out, at load, which syscalls the filter always allows
	// by running it for every syscall number, so a chain made loading
	// docker's profile cost a millisecond per container. Older libseccomp
	// lacks the option and builds the chain.
	_ = f.SetOptimize(2)
	// A foreign architecture's syscalls are refused outright.
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		if err := f.SetBadArchAction(libseccomp.ActKill); err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
	}
	for _, a := range s.Architectures {
		arch, err := archFromSpec(a)
		if err != nil {
			return nil, err
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("seccomp: add architecture %s: %w", a, err)
		}
	}
	for _, fl := range s.Flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			err = f.SetLogBit(true)
		case specs.LinuxSeccompFlagSpecAllow:
			err = f.SetSSB(true)
		case specs.LinuxSeccompFlagWaitKillableRecv:
			err = f.SetWaitKill(true)
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// libseccomp synchronizes threads itself when it can.
		default:
			err = fmt.Errorf("unknown flag %q", fl)
		}
		if err != nil {
			return nil, fmt.Errorf("seccomp: flag %s: %w", fl, err)
		}
	}
	for _, rule := range s.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls %v: %w", rule.Names, err)
		}
		if act == def {
			continue // libseccomp refuses rules equal to the default
		}
		conds, separate, err := conditions(rule.Args)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls %v: %w", rule.Names, err)
		}
		for _, name := range rule.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown to this libseccomp/arch: nothing to filter
			}
			switch {
			case len(conds) == 0:
				err = f.AddRule(call, act)
			case separate:
				// Several conditions on one argument mean "any of".
				for _, c := range conds {
					if err = f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = f.AddRuleConditional(call, act, conds)
			}
			if err != nil {
				return nil, fmt.Errorf("seccomp: rule for %s: %w", name, err)
			}
		}
	}
	ok = true
	return f, nil
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	errno := int16(unix.EPERM)
	if errnoRet != nil {
		errno = int16(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(errno), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(errno), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActInvalid, errors.New("SCMP_ACT_NOTIFY is not supported")
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

var ops = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// conditions converts argument conditions; separate is set when one
// argument index appears twice (libseccomp ANDs conditions in a rule, and
// cannot AND two on the same argument).
func conditions(args []specs.LinuxSeccompArg) ([]libseccomp.ScmpCondition, bool, error) {
	var out []libseccomp.ScmpCondition
	seen := map[uint]bool{}
	separate := false
	for _, a := range args {
		op, ok := ops[a.Op]
		if !ok {
			return nil, false, fmt.Errorf("unknown operator %q", a.Op)
		}
		var c libseccomp.ScmpCondition
		var err error
		if op == libseccomp.CompareMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, false, fmt.Errorf("argument %d: %w", a.Index, err)
		}
		if seen[a.Index] {
			separate = true
		}
		seen[a.Index] = true
		out = append(out, c)
	}
	return out, separate, nil
}

var archNames = map[string]string{
	"X86": "x86", "X86_64": "amd64", "X32": "x32", "ARM": "arm", "AARCH64": "arm64",
	"MIPS": "mips", "MIPS64": "mips64", "MIPS64N32": "mips64n32", "MIPSEL": "mipsel",
	"MIPSEL64": "mipsel64", "MIPSEL64N32": "mipsel64n32", "PPC": "ppc", "PPC64": "ppc64",
	"PPC64LE": "ppc64le", "S390": "s390", "S390X": "s390x", "RISCV64": "riscv64",
	"LOONGARCH64": "loong64",
}

func archFromSpec(a specs.Arch) (libseccomp.ScmpArch, error) {
	name, ok := archNames[strings.TrimPrefix(string(a), "SCMP_ARCH_")]
	if !ok {
		return libseccomp.ArchInvalid, fmt.Errorf("seccomp: unknown architecture %q", a)
	}
	arch, err := libseccomp.GetArchFromString(name)
	if err != nil {
		return libseccomp.ArchInvalid, fmt.Errorf("seccomp: architecture %q: %w", a, err)
	}
	return arch, nil
}
