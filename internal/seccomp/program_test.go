package seccomp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A profile compiles once per cache: the second request reads the
// program back; a damaged cache entry is compiled again, not loaded.
func TestCompiledIsCachedPerProfile(t *testing.T) {
	dir := t.TempDir()
	p := Default([]string{"CAP_CHOWN"})
	first, err := Compiled(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.BPF) == 0 || len(first.BPF)%8 != 0 {
		t.Fatalf("program of %d bytes", len(first.BPF))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	cached, err := os.ReadFile(files[0])
	if err != nil || !bytes.Equal(cached, first.BPF) {
		t.Fatalf("cache entry differs from the program: %v", err)
	}
	os.WriteFile(files[0], []byte("junk"), 0o600)
	again, err := Compiled(p, dir)
	if err != nil || !bytes.Equal(again.BPF, first.BPF) {
		t.Fatalf("a damaged cache entry was used: %v", err)
	}
	other, err := Compiled(Default([]string{"CAP_SYS_ADMIN"}), dir)
	if err != nil || bytes.Equal(other.BPF, first.BPF) {
		t.Fatalf("another profile got the same program: %v", err)
	}
	if f, _ := loadFlags([]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}); f == 0 {
		t.Error("SECCOMP_FILTER_FLAG_LOG not mapped")
	}
	if _, err := loadFlags([]specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}
