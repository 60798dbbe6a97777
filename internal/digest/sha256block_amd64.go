package digest

import "golang.org/x/sys/cpu"

// haveKernel reports whether block16 can run: it needs AVX-512 F for the
// rotates, ternary logic and broadcasts, and BW for the 512-bit VPSHUFB.
var haveKernel = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// block16 hashes n 64-byte blocks in each of 16 lanes. Lane i reads
// ptrs[i][0 : n*64]; state[w][i] is word w of lane i's chaining value,
// updated in place.
//
//go:noescape
func block16(state *[8][16]uint32, ptrs *[16]*byte, n int)
