package engine

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// A pod's PID namespace holder is looked up by its record once and then
// watched by a pidfd (holderCache): its exit is seen at once, and a new
// holder recorded by another process (a pod restarted) is found.
func TestPodHolderIsWatched(t *testing.T) {
	e := openTestEngine(t)
	const pod = "0123456789abcdef"
	if err := os.MkdirAll(e.podRunDir(pod), 0o700); err != nil {
		t.Fatal(err)
	}
	holder := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		rec := fmt.Sprintf("%d %d\n", cmd.Process.Pid, procStart(cmd.Process.Pid))
		if err := os.WriteFile(e.podHolderFile(pod), []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := holder()
	for range 2 { // read, then from the pidfd
		if got := e.podHolder(pod); got != first.Process.Pid {
			t.Fatalf("podHolder = %d; want the holder %d", got, first.Process.Pid)
		}
	}
	if e.holders.alive(pod) != first.Process.Pid {
		t.Fatal("the live holder is not kept by a pidfd")
	}
	first.Process.Kill()
	first.Wait()
	if got := e.podHolder(pod); got != 0 {
		t.Fatalf("podHolder after the holder exited = %d; want 0", got)
	}
	second := holder()
	if got := e.podHolder(pod); got != second.Process.Pid {
		t.Fatalf("podHolder after a new holder was recorded = %d; want %d", got, second.Process.Pid)
	}
	e.stopPodHolder(pod)
	if e.holders.alive(pod) != 0 {
		t.Error("a stopped holder is still kept")
	}
}
