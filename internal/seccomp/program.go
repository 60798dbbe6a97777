package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"hull/internal/wire"
)

// Program is a compiled filter: classic BPF instructions (struct
// sock_filter, host byte order) and the seccomp(2) flags to load them
// with. Compiling a profile with libseccomp costs milliseconds in a fresh
// process — the largest single cost of starting a container — so the
// runtime compiles each distinct profile once, caches the program, and the
// container's init only loads it.
type Program struct {
	BPF   []byte `json:"bpf"`
	Flags uint   `json:"flags"`
}

// Compiled returns the program for s, from cacheDir when this profile was
// compiled before (cacheDir "" disables the cache).
func Compiled(s *specs.LinuxSeccomp, cacheDir string) (*Program, error) {
	flags, err := loadFlags(s.Flags)
	if err != nil {
		return nil, err
	}
	key := ""
	if cacheDir != "" {
		// The wire encoding, not JSON: a first JSON encoding of a profile
		// in a fresh process (every monitor) costs a fraction of a
		// millisecond in reflection alone.
		spec, err := wire.Append(nil, s)
		if err != nil {
			return nil, err
		}
		maj, min, micro := libseccomp.GetLibraryVersion()
		// "tree": programs compiled before Compile optimized them are not
		// reused.
		sum := sha256.Sum256(fmt.Appendf(spec, "|%s|%d.%d.%d|tree", goruntime.GOARCH, maj, min, micro))
		key = filepath.Join(cacheDir, hex.EncodeToString(sum[:])+".bpf")
		if bpf, err := os.ReadFile(key); err == nil && len(bpf) > 0 && len(bpf)%8 == 0 {
			return &Program{BPF: bpf, Flags: flags}, nil
		}
	}
	f, err := Compile(s)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	bpf, err := exportBPF(f)
	if err != nil {
		return nil, err
	}
	if len(bpf) == 0 || len(bpf)%8 != 0 {
		return nil, fmt.Errorf("seccomp: exported filter has %d bytes, not whole instructions", len(bpf))
	}
	if key != "" {
		// Best effort: a failed write only costs the next compile.
		if err := os.MkdirAll(cacheDir, 0o700); err == nil {
			tmp := fmt.Sprintf("%s.%d.tmp", key, os.Getpid())
			if os.WriteFile(tmp, bpf, 0o600) == nil {
				os.Rename(tmp, key)
			}
			os.Remove(tmp)
		}
	}
	return &Program{BPF: bpf, Flags: flags}, nil
}

// loadFlags maps the spec's flags onto seccomp(2)'s.
func loadFlags(fls []specs.LinuxSeccompFlag) (uint, error) {
	var out uint
	for _, fl := range fls {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			out |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			out |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			out |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// The init execs from the thread that loads the filter.
		default:
			return 0, fmt.Errorf("seccomp: unknown flag %q", fl)
		}
	}
	return out, nil
}

// Install loads p on the calling thread. The caller has set no_new_privs
// or holds CAP_SYS_ADMIN, as seccomp(2) requires.
func (p *Program) Install() error {
	if len(p.BPF) == 0 || len(p.BPF)%8 != 0 || len(p.BPF)/8 > 0xffff {
		return errors.New("seccomp: invalid program")
	}
	insns := make([]unix.SockFilter, len(p.BPF)/8)
	for i := range insns {
		b := p.BPF[i*8:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&prog)))
	goruntime.KeepAlive(insns)
	if errno != 0 {
		return fmt.Errorf("seccomp: load filter: %w", errno)
	}
	return nil
}

// exportBPF writes the filter's program to a memfd and reads it back
// (libseccomp before 2.6 can only export to a file descriptor).
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("hull-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	file := os.NewFile(uintptr(fd), "hull-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(file)
}
