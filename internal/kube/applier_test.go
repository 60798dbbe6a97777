package kube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hull/internal/engine"
)

// supervisorPID takes apply's process (its command line is apply's,
// not `supervise DIR`) for the pod whose supervisor.log is its stderr,
// and only that pod's.
func TestSupervisorPIDOfApply(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pod")
	other := filepath.Join(t.TempDir(), "other")
	for _, d := range []string{dir, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	start := func(env string) *exec.Cmd {
		log, err := os.Create(filepath.Join(dir, "supervisor.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		cmd := exec.Command("sleep", "60")
		cmd.Env = append(os.Environ(), env)
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		// Until its exec, the child's environment is this process's.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); strings.HasPrefix(string(b), "sleep\x00") {
				break
			}
		}
		return cmd
	}
	record := func(d string, pid int) {
		if err := os.WriteFile(filepath.Join(d, "supervisor"), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	apply := start(engine.KubeApplyEnv + "=3")
	record(dir, apply.Process.Pid)
	if got := supervisorPID(dir); got != apply.Process.Pid {
		t.Errorf("supervisorPID of apply's pod: %d; want %d", got, apply.Process.Pid)
	}
	record(other, apply.Process.Pid)
	if got := supervisorPID(other); got != 0 {
		t.Errorf("supervisorPID of another pod naming apply's process: %d; want 0", got)
	}
	plain := start("X=1")
	record(dir, plain.Process.Pid)
	if got := supervisorPID(dir); got != 0 {
		t.Errorf("supervisorPID of a process that is no supervisor: %d; want 0", got)
	}
}
