package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// inspectHost reads the HostConfig and restart count of container ref.
func inspectHost(t *testing.T, root, ref string) (h struct {
	Memory, MemorySwap, MemoryReservation, PidsLimit, CpuShares, CpuPeriod, CpuQuota, NanoCpus int64
	CpusetCpus                                                                                 string
	RestartPolicy                                                                              struct {
		Name              string
		MaximumRetryCount int
	}
}, restarts int, oom bool) {
	t.Helper()
	var doc []struct {
		HostConfig   json.RawMessage
		RestartCount int
		State        struct{ OOMKilled bool }
	}
	if err := json.Unmarshal([]byte(mustHull(t, root, "inspect", ref)), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	if err := json.Unmarshal(doc[0].HostConfig, &h); err != nil {
		t.Fatal(err)
	}
	return h, doc[0].RestartCount, doc[0].State.OOMKilled
}

// update -m lowers a running container's limit at once: 100MB that fit
// under its 256m no longer fit, and the kernel's OOM killer ends it.
func TestUpdateMemoryOfARunningContainer(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "hog", "-m", "256m", fx.Busybox.Ref, "sh", "-c",
		"while [ ! -e /go ]; do sleep 0.1; done; rm /go; dd if=/dev/zero bs=1M count=100 2>/dev/null | tail >/dev/null; echo status $?")
	if out := mustHull(t, root, "update", "-m", "32m", "hog"); out != "hog\n" {
		t.Fatalf("update output %q, want the name as given", out)
	}
	h, _, _ := inspectHost(t, root, "hog")
	if h.Memory != 32<<20 {
		t.Errorf("inspect HostConfig.Memory %d after update -m 32m", h.Memory)
	}
	// The pipeline's tail holds 100MB: the kernel kills it (137).
	mustHull(t, root, "exec", "hog", "touch", "/go")
	mustHull(t, root, "wait", "hog")
	if logs := mustHull(t, root, "logs", "hog"); logs != "status 137\n" {
		t.Fatalf("logs %q, want tail OOM-killed (status 137): the new limit was not applied", logs)
	}
	if _, _, oom := inspectHost(t, root, "hog"); !oom {
		t.Error("State.OOMKilled is false")
	}
	// The next start keeps the new limit.
	mustHull(t, root, "start", "hog")
	mustHull(t, root, "exec", "hog", "touch", "/go")
	mustHull(t, root, "wait", "hog")
	if logs := mustHull(t, root, "logs", "hog"); logs != "status 137\nstatus 137\n" {
		t.Fatalf("after a new start: logs %q: the updated limit is lost", logs)
	}

	// A limit below what the container uses now is refused, and nothing
	// is recorded (cgroup v1 refuses it; v2 reclaims or OOM-kills).
	mustHull(t, root, "run", "-d", "--name", "big", "-m", "256m", fx.Busybox.Ref, "sh", "-c",
		"(dd if=/dev/zero bs=1M count=60 2>/dev/null; sleep 1000) | tail")
	waitFor(t, func() bool { // tail holds the 60MB
		out, _, _ := hull(t, root, "stats", "--no-stream", "--format", "{{.MemUsage}}", "big")
		var mib float64
		_, err := fmt.Sscanf(out, "%fMiB", &mib)
		return err == nil && mib >= 55
	})
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		_, _, err := hull(t, root, "update", "-m", "8m", "--memory-swap", "8m", "big")
		if err == nil || !strings.Contains(err.Error(), "current usage") {
			t.Errorf("update below usage: %v", err)
		}
		if h, _, _ := inspectHost(t, root, "big"); h.Memory != 256<<20 {
			t.Errorf("a refused update was recorded: Memory %d", h.Memory)
		}
	}
}

func TestUpdatePidsLimitAndInspect(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "p", fx.Busybox.Ref, "sleep", "1000")
	mustHull(t, root, "update", "--pids-limit", "8", "--cpu-shares", "512", "--cpus", "0.5", "--memory-reservation", "20m", "p")
	out, _ := hullProc(root, "exec", "p", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done 2>&1; echo done").CombinedOutput()
	if !strings.Contains(string(out), "fork") {
		t.Errorf("ten forks under --pids-limit 8 all worked: %q", out)
	}
	h, _, _ := inspectHost(t, root, "p")
	if h.PidsLimit != 8 || h.CpuShares != 512 || h.NanoCpus != 5e8 || h.MemoryReservation != 20<<20 {
		t.Errorf("inspect after update: %+v", h)
	}
	// Bad values are usage errors; conflicting ones say what to do.
	if err := hullProc(root, "update", "-m", "lots", "p").Run(); exitStatus(err) != 125 {
		t.Errorf("update -m lots: %v", err)
	}
	if _, _, err := hull(t, root, "update", "--cpu-quota", "50000", "p"); err == nil || !strings.Contains(err.Error(), "--cpus has already been set") {
		t.Errorf("update --cpu-quota over --cpus: %v", err)
	}
	// A block I/O weight the host cannot enforce is discarded with
	// docker's warning.
	if _, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight"); err != nil {
		if _, errOut, err := hull(t, root, "update", "--blkio-weight", "300", "p"); err != nil || !strings.Contains(errOut, "Weight discarded") {
			t.Errorf("update --blkio-weight on a host without it: %v %q", err, errOut)
		}
	}
	if _, _, err := hull(t, root, "update", "p"); err == nil || !strings.Contains(err.Error(), "one or more flags") {
		t.Errorf("update without flags: %v", err)
	}
	if _, _, err := hull(t, root, "update", "-m", "32m", "nosuch"); err == nil {
		t.Error("update of a missing container succeeded")
	}
	// --cpu-period and --cpu-quota reach a running container's cgroup.
	mustHull(t, root, "run", "-d", "--name", "q", fx.Busybox.Ref, "sleep", "1000")
	mustHull(t, root, "update", "--cpu-period", "50000", "--cpu-quota", "25000", "--cpuset-cpus", "0", "q")
	out, _ = hullProc(root, "exec", "q", "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu.max 2>/dev/null").CombinedOutput()
	if got := strings.Join(strings.Fields(string(out)), " "); got != "25000 50000" {
		t.Errorf("CFS quota and period in the container: %q", out)
	}
	if h, _, _ := inspectHost(t, root, "q"); h.CpuQuota != 25000 || h.CpuPeriod != 50000 || h.CpusetCpus != "0" {
		t.Errorf("inspect after update --cpu-*: %+v", h)
	}

	// A created container records the values for its start.
	mustHull(t, root, "create", "--name", "later", fx.Busybox.Ref, "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true")
	mustHull(t, root, "update", "--pids-limit", "7", "later")
	if out := mustHull(t, root, "start", "-a", "later"); strings.TrimSpace(out) != "7" {
		t.Errorf("pids.max of a container updated before its start: %q", out)
	}
}

// update --restart changes the policy the monitor applies at the next
// exit: of a container in the foreground (its monitor stays) and of a
// detached one (handed to the shim).
func TestUpdateRestartPolicyOfARunningContainer(t *testing.T) {
	root, fx := containerEnv(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "20")
	_, done := startHull(t, root, "run", "--name", "fg", fx.Busybox.Ref, "sh", "-c", "echo run; sleep 2; exit 3")
	mustHull(t, root, "run", "-d", "--name", "bg", fx.Busybox.Ref, "sh", "-c", "echo run; sleep 2; exit 3")
	waitFor(t, func() bool {
		out, _, _ := hull(t, root, "ps", "--filter", "name=fg", "-q")
		return out != ""
	})
	mustHull(t, root, "update", "--restart", "on-failure:1", "fg", "bg")
	<-done
	for _, name := range []string{"fg", "bg"} {
		waitFor(t, func() bool {
			h, restarts, _ := inspectHost(t, root, name)
			st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", name))
			return h.RestartPolicy.Name == "on-failure" && h.RestartPolicy.MaximumRetryCount == 1 && restarts == 1 && st == "exited"
		})
		if n := strings.Count(mustHull(t, root, "logs", name), "run"); n != 2 {
			t.Errorf("%s ran %d times, want 2", name, n)
		}
	}
	mustHull(t, root, "run", "-d", "--rm", "--name", "rmme", fx.Busybox.Ref, "sleep", "100")
	if _, _, err := hull(t, root, "update", "--restart", "always", "rmme"); err == nil || !strings.Contains(err.Error(), "AutoRemove") {
		t.Errorf("update --restart of an --rm container: %v", err)
	}
}
