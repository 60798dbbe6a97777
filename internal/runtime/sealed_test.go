package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// A sealed copy of the init binary made by one runtime (hull-cri's) is
// adopted by another (a spare monitor's): that one then execs its inits
// from the very same copy, made nowhere else; a descriptor that is not a
// sealed copy is refused, and the adopter makes its own.
func TestAdoptSealedInit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nthe init\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	maker := &Runtime{InitPath: bin}
	f, err := maker.SealedInit()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	adopter := &Runtime{InitPath: "/nonexistent/init"} // would fail to copy its own
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := adopter.AdoptSealedInit(fd); err != nil {
		t.Fatal(err)
	}
	got, err := adopter.sealedInit()
	if err != nil {
		t.Fatalf("the adopter's copy: %v", err)
	}
	if got < 1000 {
		t.Errorf("the adopted copy is descriptor %d; want one above 1000 (never a child's)", got)
	}
	buf := make([]byte, 64)
	n, err := unix.Pread(got, buf, 0)
	if data := buf[:max(n, 0)]; err != nil || !bytes.Equal(data, []byte("#!/bin/sh\nthe init\n")) {
		t.Errorf("the adopted copy reads %q (%v)", data, err)
	}

	// Not sealed: refused, and the descriptor is closed.
	pfd, err := unix.Open(bin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := &Runtime{InitPath: bin}
	if err := other.AdoptSealedInit(pfd); err == nil {
		t.Error("a plain file's descriptor was adopted as a sealed copy")
	}
	if _, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(pfd)); err == nil {
		t.Error("the refused descriptor is still open")
	}
	if _, err := other.sealedInit(); err != nil {
		t.Errorf("after a refusal, the runtime's own copy: %v", err)
	}
}
