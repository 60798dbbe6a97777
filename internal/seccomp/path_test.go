package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// run executes a classic BPF seccomp program on seccomp_data for syscall
// nr on x86_64 with zero arguments, and returns the action and how many
// instructions it took. Only what libseccomp emits is understood.
func run(t *testing.T, bpf []byte, nr uint32) (ret uint32, steps int) {
	t.Helper()
	data := make([]byte, 64) // struct seccomp_data
	binary.NativeEndian.PutUint32(data[0:], nr)
	binary.NativeEndian.PutUint32(data[4:], unix.AUDIT_ARCH_X86_64)
	var a, x uint32
	var mem [16]uint32
	for pc := 0; ; pc++ {
		if pc*8 >= len(bpf) {
			t.Fatalf("syscall %d: ran off the program", nr)
		}
		steps++
		in := bpf[pc*8:]
		code, jt, jf, k := binary.NativeEndian.Uint16(in), in[2], in[3], binary.NativeEndian.Uint32(in[4:])
		switch code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = binary.NativeEndian.Uint32(data[k:])
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[k]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[k]
		case unix.BPF_ST:
			mem[k] = a
		case unix.BPF_STX:
			mem[k] = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= k
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(k)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				ok = a == k
			case unix.BPF_JGT:
				ok = a > k
			case unix.BPF_JGE:
				ok = a >= k
			case unix.BPF_JSET:
				ok = a&k != 0
			}
			if ok {
				pc += int(jt)
			} else {
				pc += int(jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return k, steps
		default:
			t.Fatalf("syscall %d: instruction %d: opcode %#x not understood", nr, pc, code)
		}
	}
}

// TestDefaultProgramIsATree: the compiled default profile finds any
// syscall's action in few instructions. When loading a filter the kernel
// runs it for every syscall number to learn which are always allowed; a
// chain of several hundred comparisons made that a millisecond of every
// container's start. It also still allows and refuses what it should.
func TestDefaultProgramIsATree(t *testing.T) {
	p, err := Compiled(Default(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for nr := uint32(0); nr < 470; nr++ {
		_, steps := run(t, p.BPF, nr)
		longest = max(longest, steps)
	}
	if longest > 100 {
		t.Errorf("a syscall's action takes %d instructions to find; want a tree (< 100)", longest)
	}
	if ret, _ := run(t, p.BPF, unix.SYS_WRITE); ret != unix.SECCOMP_RET_ALLOW {
		t.Errorf("write: action %#x, want allow", ret)
	}
	if ret, _ := run(t, p.BPF, unix.SYS_KEXEC_LOAD); ret&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ERRNO {
		t.Errorf("kexec_load: action %#x, want an errno", ret)
	}
}
