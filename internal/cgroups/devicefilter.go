package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// On cgroup v2 the device controller is a BPF_PROG_TYPE_CGROUP_DEVICE
// program attached to the cgroup: the kernel runs it on every open and
// mknod of a device node and refuses the access when it returns 0. This
// file compiles an OCI device rule list into such a program, by hand (the
// instruction set needed is tiny), and attaches it.
//
// Program shape, for rules r1..rN evaluated so that the last matching rule
// wins (as with devices.allow/deny on v1): load type, access, major and
// minor from the context, then test the rules from last to first, each
// block returning its verdict on a match and falling through otherwise;
// nothing matched means deny.

const (
	bpfProgLoad             = 5
	bpfProgAttach           = 8
	bpfProgTypeCgroupDevice = 15
	bpfCgroupDevice         = 6 // attach type

	devcgDevBlock = 1
	devcgDevChar  = 2
	devcgAccMknod = 1
	devcgAccRead  = 2
	devcgAccWrite = 4
)

// A BPF instruction; encoded as code, regs (dst low nibble, src high),
// off (int16), imm (int32), little endian.
type insn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

const (
	ldxMemW  = 0x61 // dst = *(u32 *)(src + off)
	movK     = 0xb7 // dst = imm
	movX     = 0xbf // dst = src
	andK     = 0x57 // dst &= imm
	andX     = 0x5f // dst &= src
	rshK     = 0x77 // dst >>= imm
	jneK     = 0x55 // if dst != imm goto +off
	jneX     = 0x5d // if dst != src goto +off
	exitInsn = 0x95
)

// DeviceFilter compiles rules into BPF instructions (exported for tests).
func DeviceFilter(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	prog := []insn{
		{code: ldxMemW, dst: 2, src: 1, off: 0}, // r2 = access_type
		{code: movX, dst: 3, src: 2},            // r3 = type
		{code: andK, dst: 3, imm: 0xffff},
		{code: movX, dst: 4, src: 2}, // r4 = access
		{code: rshK, dst: 4, imm: 16},
		{code: ldxMemW, dst: 5, src: 1, off: 4}, // r5 = major
		{code: ldxMemW, dst: 6, src: 1, off: 8}, // r6 = minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		var block []insn
		switch r.Type {
		case "", "a":
		case "c":
			block = append(block, insn{code: jneK, dst: 3, imm: devcgDevChar})
		case "b":
			block = append(block, insn{code: jneK, dst: 3, imm: devcgDevBlock})
		default:
			return nil, fmt.Errorf("device rule type %q", r.Type)
		}
		var acc int32
		for _, c := range r.Access {
			switch c {
			case 'r':
				acc |= devcgAccRead
			case 'w':
				acc |= devcgAccWrite
			case 'm':
				acc |= devcgAccMknod
			default:
				return nil, fmt.Errorf("device rule access %q", r.Access)
			}
		}
		if r.Access == "" {
			acc = devcgAccRead | devcgAccWrite | devcgAccMknod
		}
		if acc != devcgAccRead|devcgAccWrite|devcgAccMknod {
			// The requested access must be within the rule's.
			block = append(block,
				insn{code: movX, dst: 7, src: 4},
				insn{code: andK, dst: 7, imm: acc},
				insn{code: jneX, dst: 7, src: 4},
			)
		}
		if r.Major != nil && *r.Major >= 0 {
			block = append(block, insn{code: jneK, dst: 5, imm: int32(*r.Major)})
		}
		if r.Minor != nil && *r.Minor >= 0 {
			block = append(block, insn{code: jneK, dst: 6, imm: int32(*r.Minor)})
		}
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		block = append(block, insn{code: movK, dst: 0, imm: verdict}, insn{code: exitInsn})
		// Every conditional jump skips to the end of this block.
		conditional := false
		for j := range block {
			if block[j].code == jneK || block[j].code == jneX {
				block[j].off = int16(len(block) - j - 1)
				conditional = true
			}
		}
		prog = append(prog, block...)
		if !conditional {
			// Matches everything: earlier rules can never decide, and
			// the verifier refuses unreachable instructions.
			return encode(prog), nil
		}
	}
	prog = append(prog, insn{code: movK, dst: 0, imm: 0}, insn{code: exitInsn})
	return encode(prog), nil
}

func encode(prog []insn) []byte {
	out := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		var b [8]byte
		b[0] = in.code
		b[1] = in.dst&0xf | in.src<<4
		binary.LittleEndian.PutUint16(b[2:], uint16(in.off))
		binary.LittleEndian.PutUint32(b[4:], uint32(in.imm))
		out = append(out, b[:]...)
	}
	return out
}

type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

// AttachDeviceFilter loads the program for rules and attaches it to the
// cgroup v2 directory dir. The cgroup keeps the program alive.
func AttachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	code, err := DeviceFilter(rules)
	if err != nil {
		return fmt.Errorf("cgroups: device filter: %w", err)
	}
	license := []byte("Apache\x00")
	logBuf := make([]byte, 64<<10)
	attr := progLoadAttr{
		progType: bpfProgTypeCgroupDevice,
		insnCnt:  uint32(len(code) / 8),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	copy(attr.progName[:], "hull_devices")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgLoad, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return fmt.Errorf("cgroups: load device filter: %w: %s", errno, cString(logBuf))
	}
	defer unix.Close(int(fd))
	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	defer cg.Close()
	at := progAttachAttr{targetFd: uint32(cg.Fd()), attachBpfFd: uint32(fd), attachType: bpfCgroupDevice}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgAttach, uintptr(unsafe.Pointer(&at)), unsafe.Sizeof(at)); errno != 0 {
		if errors.Is(errno, unix.EEXIST) {
			return fmt.Errorf("cgroups: %s already has a device filter (updating it is not supported)", dir)
		}
		return fmt.Errorf("cgroups: attach device filter to %s: %w", dir, errno)
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
