package hugeheap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// vmFlags is the VmFlags line of the mapping of /proc/self/smaps that
// holds addr.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 5 && len(f[1]) == 4 { // a mapping's header
			var lo, hi uintptr
			if n, _ := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); n == 2 {
				in = lo <= addr && addr < hi
				continue
			}
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return ""
}

var sink *[64]byte

// The heap of a process that links this package is on huge pages
// (VmFlags "hg": MADV_HUGEPAGE) until Settle, then marked against them
// ("nh"), so that later growth and khugepaged leave it on small pages.
func TestHeapOnHugePagesUntilSettled(t *testing.T) {
	if marked() == 0 {
		t.Fatal("no heap mapping was marked for huge pages: is mmap wrapped (-Wl,--wrap=mmap)?")
	}
	sink = new([64]byte) // on the heap
	addr := uintptr(unsafe.Pointer(sink))
	before := vmFlags(t, addr)
	Settle()
	after := vmFlags(t, addr)
	if !strings.Contains(before, " hg") {
		t.Errorf("heap mapping before Settle: %s, want hg (MADV_HUGEPAGE)", before)
	}
	if !strings.Contains(after, " nh") || strings.Contains(after, " hg") {
		t.Errorf("heap mapping after Settle: %s, want nh (MADV_NOHUGEPAGE)", after)
	}
	Settle() // a second call does nothing
}

// A process started with SmallPagesEnv marks nothing (hugeheap.c's
// constructor), and what it starts starts as usual: the variable is
// gone from its environment.
func TestSmallPagesEnvStartsWithout(t *testing.T) {
	if os.Getenv("HULL_HUGEHEAP_CHILD") == "1" {
		fmt.Printf("marked=%d env=%q\n", marked(), os.Getenv(SmallPagesEnv))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSmallPagesEnvStartsWithout$")
	cmd.Env = append(os.Environ(), "HULL_HUGEHEAP_CHILD=1", SmallPagesEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), `marked=0 env=""`) {
		t.Errorf("a process started with %s=1: %s; want marked=0 and the variable gone", SmallPagesEnv, out)
	}
	if marked() == 0 {
		t.Error("this process, started without it, marked nothing")
	}
}

// hull-init as a container's PID 1 (`hull-init -- COMMAND`, run --init)
// stays for the container's life: it starts without huge pages
// (cmd/hull-init/hugeheap.c).
func TestInitAsPID1StartsWithout(t *testing.T) {
	init := os.Getenv("HULL_INIT")
	if init == "" {
		t.Skip("needs HULL_INIT (make build; the Makefile's test target sets it)")
	}
	cmd := exec.Command(init, "--", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); !hasChild(proc); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hull-init did not start its command")
		}
	}
	b, err := os.ReadFile(proc + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), " hg") {
		t.Errorf("hull-init -- COMMAND has a mapping marked for huge pages (VmFlags hg); want none")
	}
}

// hasChild reports whether the process at proc (/proc/PID) has a child,
// forked by any of its threads.
func hasChild(proc string) bool {
	tasks, _ := filepath.Glob(proc + "/task/*/children")
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return true
		}
	}
	return false
}
