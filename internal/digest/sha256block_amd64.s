#include "textflag.h"

// AVX-512 kernel hashing 16 independent SHA-256 lanes. Each zmm register
// holds one 32-bit quantity of all 16 lanes, so every instruction advances
// all lanes by the same step:
//
//	Z0-Z7    working variables a-h
//	Z8-Z15   temporaries
//	Z16-Z31  message schedule W[0..15], a ring: W[i] replaces W[i-16]
//
// The state array in memory holds the chaining values; it is read once at
// entry, and after each block the working variables are added to it (the
// feed-forward) and written back, so a-h never leave the registers between
// blocks.

// Big-endian message words: reverse the bytes of every dword.
DATA bswap<>+0x00(SB)/8, $0x0405060700010203
DATA bswap<>+0x08(SB)/8, $0x0c0d0e0f08090a0b
DATA bswap<>+0x10(SB)/8, $0x0405060700010203
DATA bswap<>+0x18(SB)/8, $0x0c0d0e0f08090a0b
DATA bswap<>+0x20(SB)/8, $0x0405060700010203
DATA bswap<>+0x28(SB)/8, $0x0c0d0e0f08090a0b
DATA bswap<>+0x30(SB)/8, $0x0405060700010203
DATA bswap<>+0x38(SB)/8, $0x0c0d0e0f08090a0b
GLOBL bswap<>(SB), RODATA|NOPTR, $64

// Round constants, read with {1to16} broadcast.
DATA k256<>+0x00(SB)/8, $0x71374491428a2f98
DATA k256<>+0x08(SB)/8, $0xe9b5dba5b5c0fbcf
DATA k256<>+0x10(SB)/8, $0x59f111f13956c25b
DATA k256<>+0x18(SB)/8, $0xab1c5ed5923f82a4
DATA k256<>+0x20(SB)/8, $0x12835b01d807aa98
DATA k256<>+0x28(SB)/8, $0x550c7dc3243185be
DATA k256<>+0x30(SB)/8, $0x80deb1fe72be5d74
DATA k256<>+0x38(SB)/8, $0xc19bf1749bdc06a7
DATA k256<>+0x40(SB)/8, $0xefbe4786e49b69c1
DATA k256<>+0x48(SB)/8, $0x240ca1cc0fc19dc6
DATA k256<>+0x50(SB)/8, $0x4a7484aa2de92c6f
DATA k256<>+0x58(SB)/8, $0x76f988da5cb0a9dc
DATA k256<>+0x60(SB)/8, $0xa831c66d983e5152
DATA k256<>+0x68(SB)/8, $0xbf597fc7b00327c8
DATA k256<>+0x70(SB)/8, $0xd5a79147c6e00bf3
DATA k256<>+0x78(SB)/8, $0x1429296706ca6351
DATA k256<>+0x80(SB)/8, $0x2e1b213827b70a85
DATA k256<>+0x88(SB)/8, $0x53380d134d2c6dfc
DATA k256<>+0x90(SB)/8, $0x766a0abb650a7354
DATA k256<>+0x98(SB)/8, $0x92722c8581c2c92e
DATA k256<>+0xa0(SB)/8, $0xa81a664ba2bfe8a1
DATA k256<>+0xa8(SB)/8, $0xc76c51a3c24b8b70
DATA k256<>+0xb0(SB)/8, $0xd6990624d192e819
DATA k256<>+0xb8(SB)/8, $0x106aa070f40e3585
DATA k256<>+0xc0(SB)/8, $0x1e376c0819a4c116
DATA k256<>+0xc8(SB)/8, $0x34b0bcb52748774c
DATA k256<>+0xd0(SB)/8, $0x4ed8aa4a391c0cb3
DATA k256<>+0xd8(SB)/8, $0x682e6ff35b9cca4f
DATA k256<>+0xe0(SB)/8, $0x78a5636f748f82ee
DATA k256<>+0xe8(SB)/8, $0x8cc7020884c87814
DATA k256<>+0xf0(SB)/8, $0xa4506ceb90befffa
DATA k256<>+0xf8(SB)/8, $0xc67178f2bef9a3f7
GLOBL k256<>(SB), RODATA|NOPTR, $256

// The message words are gathered by loading each lane's block whole and
// transposing the 16x16 matrix of words with shuffles; a version using
// VPGATHERQD measured at about half the throughput on Cascade Lake.

// LOADROW loads the current block of lane i (ptrs[i] + DX) into row and byte-swaps it.
#define LOADROW(i, row, tmp) \
	MOVQ (i*8)(SI), tmp; \
	VMOVDQU32 (tmp)(DX*1), row; \
	VPSHUFB bswap<>(SB), row, row

// TRANSPOSE4 turns rows r0-r3 (lanes 4g..4g+3) into r0-r3 where rm holds,
// in each 128-bit part p, word 4p+m of the four lanes.
#define TRANSPOSE4(r0, r1, r2, r3, t0, t1, t2, t3) \
	VPUNPCKLDQ r1, r0, t0; \
	VPUNPCKHDQ r1, r0, t1; \
	VPUNPCKLDQ r3, r2, t2; \
	VPUNPCKHDQ r3, r2, t3; \
	VPUNPCKLQDQ t2, t0, r0; \
	VPUNPCKHQDQ t2, t0, r1; \
	VPUNPCKLQDQ t3, t1, r2; \
	VPUNPCKHQDQ t3, t1, r3

// TRANSPOSE128 transposes the 4x4 matrix of 128-bit parts in x0-x3, which
// completes the 16x16 dword transpose: afterwards W[k] is in Z(16+k).
#define TRANSPOSE128(x0, x1, x2, x3, t0, t1, t2, t3) \
	VSHUFI32X4 $0x88, x1, x0, t0; \
	VSHUFI32X4 $0xdd, x1, x0, t1; \
	VSHUFI32X4 $0x88, x3, x2, t2; \
	VSHUFI32X4 $0xdd, x3, x2, t3; \
	VSHUFI32X4 $0x88, t2, t0, x0; \
	VSHUFI32X4 $0x88, t3, t1, x1; \
	VSHUFI32X4 $0xdd, t2, t0, x2; \
	VSHUFI32X4 $0xdd, t3, t1, x3

// ROUND does one SHA-256 round. Instead of shifting a-h, the caller
// rotates the register names: the new a is left in h and the new e in d.
// VPTERNLOGD immediates: 0x96 is a^b^c, 0xca is Ch (dst ? b : c), 0xe8 is
// Maj.
#define ROUND(a, b, c, d, e, f, g, h, w, k) \
	VPADDD.BCST k(AX), w, Z8; \
	VPADDD Z8, h, h; \
	VPRORD $6, e, Z9; \
	VPRORD $11, e, Z10; \
	VPRORD $25, e, Z11; \
	VPTERNLOGD $0x96, Z11, Z10, Z9; \
	VPADDD Z9, h, h; \
	VMOVDQA32 e, Z10; \
	VPTERNLOGD $0xca, g, f, Z10; \
	VPADDD Z10, h, h; \
	VPADDD h, d, d; \
	VPRORD $2, a, Z9; \
	VPRORD $13, a, Z10; \
	VPRORD $22, a, Z11; \
	VPTERNLOGD $0x96, Z11, Z10, Z9; \
	VPADDD Z9, h, h; \
	VMOVDQA32 a, Z10; \
	VPTERNLOGD $0xe8, c, b, Z10; \
	VPADDD Z10, h, h

// SCHED computes W[i] = σ1(W[i-2]) + W[i-7] + σ0(W[i-15]) + W[i-16] in the
// register of W[i-16].
#define SCHED(w16, w15, w7, w2) \
	VPRORD $7, w15, Z12; \
	VPRORD $18, w15, Z13; \
	VPSRLD $3, w15, Z14; \
	VPTERNLOGD $0x96, Z14, Z13, Z12; \
	VPADDD Z12, w16, w16; \
	VPRORD $17, w2, Z12; \
	VPRORD $19, w2, Z13; \
	VPSRLD $10, w2, Z14; \
	VPTERNLOGD $0x96, Z14, Z13, Z12; \
	VPADDD w7, w16, w16; \
	VPADDD Z12, w16, w16

// func block16(state *[8][16]uint32, ptrs *[16]*byte, n int)
TEXT ·block16(SB), NOSPLIT, $0-24
	MOVQ state+0(FP), DI
	MOVQ ptrs+8(FP), SI
	MOVQ n+16(FP), CX
	TESTQ CX, CX
	JLE  ret
	XORQ DX, DX // byte offset of the current block in every lane

	VMOVDQU32 0(DI), Z0
	VMOVDQU32 64(DI), Z1
	VMOVDQU32 128(DI), Z2
	VMOVDQU32 192(DI), Z3
	VMOVDQU32 256(DI), Z4
	VMOVDQU32 320(DI), Z5
	VMOVDQU32 384(DI), Z6
	VMOVDQU32 448(DI), Z7

block:
	LOADROW(0, Z16, R8)
	LOADROW(1, Z17, R9)
	LOADROW(2, Z18, R10)
	LOADROW(3, Z19, R11)
	LOADROW(4, Z20, R12)
	LOADROW(5, Z21, R13)
	LOADROW(6, Z22, R8)
	LOADROW(7, Z23, R9)
	LOADROW(8, Z24, R10)
	LOADROW(9, Z25, R11)
	LOADROW(10, Z26, R12)
	LOADROW(11, Z27, R13)
	LOADROW(12, Z28, R8)
	LOADROW(13, Z29, R9)
	LOADROW(14, Z30, R10)
	LOADROW(15, Z31, R11)
	TRANSPOSE4(Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	TRANSPOSE4(Z20, Z21, Z22, Z23, Z12, Z13, Z14, Z15)
	TRANSPOSE4(Z24, Z25, Z26, Z27, Z8, Z9, Z10, Z11)
	TRANSPOSE4(Z28, Z29, Z30, Z31, Z12, Z13, Z14, Z15)
	TRANSPOSE128(Z16, Z20, Z24, Z28, Z8, Z9, Z10, Z11)
	TRANSPOSE128(Z17, Z21, Z25, Z29, Z12, Z13, Z14, Z15)
	TRANSPOSE128(Z18, Z22, Z26, Z30, Z8, Z9, Z10, Z11)
	TRANSPOSE128(Z19, Z23, Z27, Z31, Z12, Z13, Z14, Z15)

	// Rounds 0-15 use the message words as loaded.
	LEAQ k256<>(SB), AX
	ROUND(Z0,Z1,Z2,Z3,Z4,Z5,Z6,Z7, Z16, 0)
	ROUND(Z7,Z0,Z1,Z2,Z3,Z4,Z5,Z6, Z17, 4)
	ROUND(Z6,Z7,Z0,Z1,Z2,Z3,Z4,Z5, Z18, 8)
	ROUND(Z5,Z6,Z7,Z0,Z1,Z2,Z3,Z4, Z19, 12)
	ROUND(Z4,Z5,Z6,Z7,Z0,Z1,Z2,Z3, Z20, 16)
	ROUND(Z3,Z4,Z5,Z6,Z7,Z0,Z1,Z2, Z21, 20)
	ROUND(Z2,Z3,Z4,Z5,Z6,Z7,Z0,Z1, Z22, 24)
	ROUND(Z1,Z2,Z3,Z4,Z5,Z6,Z7,Z0, Z23, 28)
	ROUND(Z0,Z1,Z2,Z3,Z4,Z5,Z6,Z7, Z24, 32)
	ROUND(Z7,Z0,Z1,Z2,Z3,Z4,Z5,Z6, Z25, 36)
	ROUND(Z6,Z7,Z0,Z1,Z2,Z3,Z4,Z5, Z26, 40)
	ROUND(Z5,Z6,Z7,Z0,Z1,Z2,Z3,Z4, Z27, 44)
	ROUND(Z4,Z5,Z6,Z7,Z0,Z1,Z2,Z3, Z28, 48)
	ROUND(Z3,Z4,Z5,Z6,Z7,Z0,Z1,Z2, Z29, 52)
	ROUND(Z2,Z3,Z4,Z5,Z6,Z7,Z0,Z1, Z30, 56)
	ROUND(Z1,Z2,Z3,Z4,Z5,Z6,Z7,Z0, Z31, 60)

	// Rounds 16-63: three passes of 16 rounds, each extending the schedule.
	MOVQ $3, BX

rounds:
	ADDQ $64, AX
	SCHED(Z16, Z17, Z25, Z30)
	ROUND(Z0,Z1,Z2,Z3,Z4,Z5,Z6,Z7, Z16, 0)
	SCHED(Z17, Z18, Z26, Z31)
	ROUND(Z7,Z0,Z1,Z2,Z3,Z4,Z5,Z6, Z17, 4)
	SCHED(Z18, Z19, Z27, Z16)
	ROUND(Z6,Z7,Z0,Z1,Z2,Z3,Z4,Z5, Z18, 8)
	SCHED(Z19, Z20, Z28, Z17)
	ROUND(Z5,Z6,Z7,Z0,Z1,Z2,Z3,Z4, Z19, 12)
	SCHED(Z20, Z21, Z29, Z18)
	ROUND(Z4,Z5,Z6,Z7,Z0,Z1,Z2,Z3, Z20, 16)
	SCHED(Z21, Z22, Z30, Z19)
	ROUND(Z3,Z4,Z5,Z6,Z7,Z0,Z1,Z2, Z21, 20)
	SCHED(Z22, Z23, Z31, Z20)
	ROUND(Z2,Z3,Z4,Z5,Z6,Z7,Z0,Z1, Z22, 24)
	SCHED(Z23, Z24, Z16, Z21)
	ROUND(Z1,Z2,Z3,Z4,Z5,Z6,Z7,Z0, Z23, 28)
	SCHED(Z24, Z25, Z17, Z22)
	ROUND(Z0,Z1,Z2,Z3,Z4,Z5,Z6,Z7, Z24, 32)
	SCHED(Z25, Z26, Z18, Z23)
	ROUND(Z7,Z0,Z1,Z2,Z3,Z4,Z5,Z6, Z25, 36)
	SCHED(Z26, Z27, Z19, Z24)
	ROUND(Z6,Z7,Z0,Z1,Z2,Z3,Z4,Z5, Z26, 40)
	SCHED(Z27, Z28, Z20, Z25)
	ROUND(Z5,Z6,Z7,Z0,Z1,Z2,Z3,Z4, Z27, 44)
	SCHED(Z28, Z29, Z21, Z26)
	ROUND(Z4,Z5,Z6,Z7,Z0,Z1,Z2,Z3, Z28, 48)
	SCHED(Z29, Z30, Z22, Z27)
	ROUND(Z3,Z4,Z5,Z6,Z7,Z0,Z1,Z2, Z29, 52)
	SCHED(Z30, Z31, Z23, Z28)
	ROUND(Z2,Z3,Z4,Z5,Z6,Z7,Z0,Z1, Z30, 56)
	SCHED(Z31, Z16, Z24, Z29)
	ROUND(Z1,Z2,Z3,Z4,Z5,Z6,Z7,Z0, Z31, 60)
	DECQ BX
	JNZ  rounds

	// Feed-forward: add the block's input state and store it.
	VPADDD 0(DI), Z0, Z0
	VPADDD 64(DI), Z1, Z1
	VPADDD 128(DI), Z2, Z2
	VPADDD 192(DI), Z3, Z3
	VPADDD 256(DI), Z4, Z4
	VPADDD 320(DI), Z5, Z5
	VPADDD 384(DI), Z6, Z6
	VPADDD 448(DI), Z7, Z7
	VMOVDQU32 Z0, 0(DI)
	VMOVDQU32 Z1, 64(DI)
	VMOVDQU32 Z2, 128(DI)
	VMOVDQU32 Z3, 192(DI)
	VMOVDQU32 Z4, 256(DI)
	VMOVDQU32 Z5, 320(DI)
	VMOVDQU32 Z6, 384(DI)
	VMOVDQU32 Z7, 448(DI)

	ADDQ $64, DX
	DECQ CX
	JNZ  block

	VZEROUPPER

ret:
	RET
