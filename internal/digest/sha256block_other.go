//go:build !amd64

package digest

const haveKernel = false

func block16(state *[8][16]uint32, ptrs *[16]*byte, n int) {
	panic("digest: no multi-buffer kernel on this architecture")
}
