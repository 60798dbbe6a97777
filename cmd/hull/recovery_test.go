package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hull/internal/metadata"
	"hull/internal/testenv"
)

// inspectOne reads the fields the recovery tests look at.
type inspected struct {
	ID    string
	State struct {
		Status   string
		Pid      int
		ExitCode int
		Error    string
	}
	HullLifecycle struct{ MonitorPid int }
}

func inspectOne(t *testing.T, root, name string) inspected {
	t.Helper()
	var doc []inspected
	if err := json.Unmarshal([]byte(mustHull(t, root, "inspect", name)), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return doc[0]
}

// killedAt runs hull with HULL_FAULT=mark: the hull process that reaches
// the mark kills itself there with SIGKILL.
func killedAt(t *testing.T, root, mark string, args ...string) {
	t.Helper()
	cmd := hullProc(root, args...)
	cmd.Env = append(cmd.Env, "HULL_FAULT="+mark)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("hull %s with HULL_FAULT=%q: %v, want it killed at the mark: %s", strings.Join(args, " "), mark, err, out)
	}
}

// An rm -f killed part way leaves no container "Removal In Progress" for
// ever, nor one running unsupervised: the next command sees the remover
// dead, stops what is left and records the container dead, and rm (no -f
// needed) and the prunes finish the removal; the name is free again.
func TestKilledRemovalIsTakenOver(t *testing.T) {
	root, fx := containerEnv(t)
	for _, mark := range []string{"rm: claimed", "rm: killed", "cleanup: unmounted", "cleanup: set aside"} {
		t.Run(strings.ReplaceAll(mark, " ", ""), func(t *testing.T) {
			mustHull(t, root, "run", "-d", "--name", "rk", fx.Busybox.Ref, "sleep", "300")
			before := inspectOne(t, root, "rk")
			killedAt(t, root, mark, "rm", "-f", "rk")
			if out := mustHull(t, root, "ps", "-a", "--filter", "name=rk", "--format", "{{.Status}}"); strings.TrimSpace(out) != "Dead" {
				t.Errorf("ps after rm -f was killed at %q: %q, want Dead", mark, out)
			}
			waitFor(t, func() bool {
				return !testenv.ProcessRunning(before.State.Pid) && !testenv.ProcessRunning(before.HullLifecycle.MonitorPid)
			})
			if out := mustHull(t, root, "why", "rk"); !strings.Contains(out, "killed while removing") || !strings.Contains(out, "hull rm rk") {
				t.Errorf("why:\n%s", out)
			}
			mustHull(t, root, "rm", "rk")
			if out := mustHull(t, root, "ps", "-aq"); out != "" {
				t.Fatalf("after rm: %q", out)
			}
		})
	}
	// A prune finishes one too.
	mustHull(t, root, "run", "-d", "--name", "rk", fx.Busybox.Ref, "sleep", "300")
	killedAt(t, root, "rm: claimed", "rm", "-f", "rk")
	mustHull(t, root, "container", "prune", "-f")
	if out := mustHull(t, root, "ps", "-aq"); out != "" {
		t.Fatalf("after prune: %q", out)
	}
}

// A start whose command was killed after its claim, before any monitor
// took the container, is not left "running" with no process for 30 s: once
// its owner is seen dead (and the short grace for a monitor it handed the
// container to has passed), it is recorded as failed, and starts again.
func TestKilledStartIsTakenOver(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "create", "--name", "ks", fx.Busybox.Ref, "sleep", "300")
	killedAt(t, root, "start: claimed", "start", "ks")
	// Within claimGrace (5 s) and the reads after it: well before the
	// 30 s that a claim with no owner recorded is given.
	for deadline := time.Now().Add(15 * time.Second); inspectOne(t, root, "ks").State.Status != "exited"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the start claim of a killed command was not taken over within 15 s")
		}
	}
	if got := inspectOne(t, root, "ks"); !strings.Contains(got.State.Error, "killed while starting") {
		t.Errorf("after the start was killed: %+v", got.State)
	}
	mustHull(t, root, "start", "ks")
	if got := inspectOne(t, root, "ks"); got.State.Status != "running" {
		t.Errorf("started again: %+v", got.State)
	}
}

// Monitor and container both killed: the exit code is unknown, not the 0
// of the record's start; docker says 255, and why names the monitor.
func TestMonitorAndContainerKilledExitUnknown(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "both", fx.Busybox.Ref, "sleep", "300")
	got := inspectOne(t, root, "both")
	syscall.Kill(got.HullLifecycle.MonitorPid, syscall.SIGKILL)
	syscall.Kill(got.State.Pid, syscall.SIGKILL)
	waitFor(t, func() bool {
		return syscall.Kill(got.HullLifecycle.MonitorPid, 0) != nil && !testenv.ProcessRunning(got.State.Pid)
	})
	if out := mustHull(t, root, "ps", "-a", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (255)") {
		t.Errorf("ps: %q, want Exited (255)", out)
	}
	if out := mustHull(t, root, "why", "both"); !strings.Contains(out, "monitor") || !strings.Contains(out, "died") {
		t.Errorf("why:\n%s", out)
	}
}

// A create killed part way says so, and where: not "failed at image pull"
// for a kill after the image was resolved.
func TestKilledCreateSaysWhere(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	for mark, want := range map[string]string{
		"create: recorded":       "Created (interrupted at image pull)",
		"create: image resolved": "Created (interrupted at create)",
		"create: spec generated": "Created (interrupted at create)",
	} {
		name := "kc" + strings.NewReplacer(":", "", " ", "").Replace(mark)
		killedAt(t, root, mark, "run", "-d", "--name", name, fx.Busybox.Ref, "sleep", "5")
		if out := strings.TrimSpace(mustHull(t, root, "ps", "-a", "--filter", "name="+name, "--format", "{{.Status}}")); out != want {
			t.Errorf("killed at %q: ps says %q, want %q", mark, out, want)
		}
		if out := mustHull(t, root, "why", name); !strings.Contains(out, "creation was interrupted") {
			t.Errorf("killed at %q: why:\n%s", mark, out)
		}
		mustHull(t, root, "rm", name)
	}
}

// Bad input docker refuses is refused, not silently dropped or replaced.
func TestEmptyValuesAreRefused(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--rm", "-e", "=novalue", fx.Busybox.Ref, "true")
	out, err := cmd.CombinedOutput()
	if exitStatus(err) != 125 || !strings.Contains(string(out), `invalid argument "=novalue"`) {
		t.Errorf("run -e =novalue: %v: %s", err, out)
	}
	mustHull(t, root, "run", "-d", "--name", "ex", fx.Busybox.Ref, "sleep", "60")
	if out, err := hullProc(root, "exec", "-e", "=x", "ex", "true").CombinedOutput(); exitStatus(err) != 125 || !strings.Contains(string(out), `invalid argument "=x"`) {
		t.Errorf("exec -e =x: %v: %s", err, out)
	}
	for _, flag := range []string{"--root", "--run-root"} {
		cmd := exec.Command(os.Args[0], flag, "", "ps")
		cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), flag+" is empty") {
			t.Errorf("%s '': %v: %s", flag, err, out)
		}
	}
}

// rmi reports the blobs of the image it removed, not orphans of a failed
// load that the same collection deletes.
func TestRmiListsOnlyItsOwnBlobs(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Config.Ref)
	orphan := []byte("a blob a failed load left behind\n")
	sum := sha256.Sum256(orphan)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	path := filepath.Join(root, "images", "blobs", "sha256", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(path, orphan, 0o444); err != nil {
		t.Fatal(err)
	}
	out := mustHull(t, root, "rmi", fx.Config.Ref)
	if strings.Contains(out, digest) || !strings.Contains(out, "Deleted: "+fx.Config.ConfigDigest) {
		t.Errorf("rmi output:\n%s", out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the orphan blob is still stored: %v", err)
	}
}

// A container that fills the disk holding hull's root does not wedge hull:
// its exit is recorded (the database's reserve), reading never needs
// space, and rm -f frees the space even when not even its claim can be
// recorded at first.
func TestFullDiskDoesNotWedge(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(root, syscall.MNT_DETACH) })
	t.Cleanup(func() {
		out, _, _ := hull(t, root, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			hull(t, root, "rm", "-f", id)
		}
	})
	free := func() uint64 {
		var st syscall.Statfs_t
		syscall.Statfs(root, &st)
		return st.Bavail * uint64(st.Bsize)
	}
	mustHull(t, root, "run", "-d", "--name", "a", fx.Busybox.Ref, "sleep", "300")
	fill := "dd if=/dev/zero of=/fill bs=1M count=100 2>/dev/null; echo filled"
	if out, _, _ := hull(t, root, "run", "--name", "filler", fx.Busybox.Ref, "sh", "-c", fill+"; exit 3"); !strings.Contains(out, "filled") {
		t.Fatalf("filler: %q", out)
	}
	if n := free(); n > 4<<20 {
		t.Fatalf("%d bytes still free after the fill", n)
	}
	if out := mustHull(t, root, "ps", "-a", "--filter", "name=filler", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (3)") {
		t.Errorf("the filler's exit on a full disk: %q, want Exited (3)", out)
	}
	if got := inspectOne(t, root, "a"); got.State.Status != "running" {
		t.Errorf("inspect a on a full disk: %+v", got.State)
	}
	mustHull(t, root, "logs", "filler")
	mustHull(t, root, "stop", "-t", "1", "a")
	if got := inspectOne(t, root, "a"); got.State.Status != "exited" || got.State.ExitCode == 255 {
		t.Errorf("a stopped on a full disk: %+v", got.State)
	}
	mustHull(t, root, "rm", "-f", "filler")
	waitFor(t, func() bool { return free() > 50<<20 }) // the files go in the background
	// A filler that goes on running keeps the disk full, and with the
	// reserve spent not even rm's claim can be recorded at first.
	mustHull(t, root, "run", "-d", "--name", "filler2", fx.Busybox.Ref, "sh", "-c", fill+"; sleep 300")
	waitFor(t, func() bool { return free() < 1<<20 })
	os.Remove(filepath.Join(root, "hull.db-reserve"))
	// An empty write-ahead log: the next write must grow it, which the
	// full disk refuses (SQLite otherwise reuses the log's pages).
	db, err := metadata.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	topUp, err := os.Create(filepath.Join(root, "top-up"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 4096; n > 0; {
		if _, err := topUp.Write(make([]byte, n)); err != nil {
			n /= 2
		}
	}
	topUp.Close()
	mustHull(t, root, "ps", "-a")
	if st, err := os.Stat(filepath.Join(root, "hull.db-wal")); err != nil || st.Size() != 0 || free() != 0 {
		t.Fatalf("before rm -f: write-ahead log %v %v, %d bytes free; want it empty on a full disk", st, err, free())
	}
	if out, err := hullProc(root, "rm", "-f", "filler2").CombinedOutput(); err != nil {
		t.Fatalf("rm -f of the filler on a full disk: %v: %s", err, out)
	}
	waitFor(t, func() bool { return free() > 50<<20 })
	mustHull(t, root, "rm", "-f", "a")
	mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "true")
}

// A stop killed after its first signal, of a container that ignores it, is
// finished by the next command once the stop's timeout has passed: the
// container is killed and, being stopped, not restarted by its policy.
func TestKilledStopIsFinished(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "stubborn", "--restart", "always", fx.Busybox.Ref, "sh", "-c", "trap '' TERM; while true; do sleep 1; done")
	killedAt(t, root, "stop: signalled", "stop", "-t", "1", "stubborn")
	waitFor(t, func() bool { return inspectOne(t, root, "stubborn").State.Status == "exited" })
	time.Sleep(500 * time.Millisecond) // a restart would have begun by now
	if got := inspectOne(t, root, "stubborn"); got.State.Status != "exited" || got.State.ExitCode != 137 {
		t.Errorf("after the killed stop: %+v, want exited (137) and not restarted", got.State)
	}
}

// A run killed after it made the container's directory and before it
// recorded the container leaves a directory nothing else would remove:
// the next removal sweeps it, unless its creation is still at work.
func TestUnrecordedDirectoryIsSwept(t *testing.T) {
	root, fx := containerEnv(t)
	orphan := filepath.Join(root, "containers", strings.Repeat("cd", 32))
	working := filepath.Join(root, "containers", strings.Repeat("ef", 32))
	for _, d := range []string{orphan, working} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "create.lock"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.Open(filepath.Join(working, "create.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "true")
	mustHull(t, root, "run", "-d", "--name", "x", fx.Busybox.Ref, "sleep", "60")
	mustHull(t, root, "rm", "-f", "x")
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the directory a killed run left: %v", err)
	}
	if _, err := os.Stat(working); err != nil {
		t.Errorf("the directory of a creation at work was removed: %v", err)
	}
}

// A removal killed after it deleted the record but before the runtime's
// part (which runs beside it) ended leaves the container's processes,
// cgroups and runtime state with no record to find them by: the next
// removal ends them.
func TestUnrecordedRuntimeStateIsSwept(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "orphan", fx.Busybox.Ref, "sleep", "300")
	got := inspectOne(t, root, "orphan")
	db, err := metadata.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM containers WHERE id = ?`, got.ID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	syscall.Kill(got.HullLifecycle.MonitorPid, syscall.SIGKILL)
	mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "true")
	waitFor(t, func() bool { return !testenv.ProcessRunning(got.State.Pid) })
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/hull-" + got.ID); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "run", "runtime", got.ID)); !os.IsNotExist(err) {
		t.Errorf("runtime state left: %v", err)
	}
	// What only system check --repair mends (its rootfs mount and
	// directories), it mends.
	mustHull(t, root, "system", "check", "--repair")
}
