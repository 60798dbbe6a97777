package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"hull/internal/testenv"
)

// counterScript counts on its stdout, ten a second, from a value it
// keeps in memory only; /state is written before it starts.
const counterScript = "echo before > /state; i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"

// logNumbers are the numbers a counter container logged so far.
func logNumbers(t *testing.T, root, name string) []int {
	t.Helper()
	var ns []int
	for _, l := range strings.Split(mustHull(t, root, "logs", name), "\n") {
		if n, err := strconv.Atoi(strings.TrimSpace(l)); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// countsOn waits for the restored counter container name to log lines
// numbers and checks that it counted on from last, where the checkpoint
// found it (within last-2 and last+over: a line may land between the
// dump and the log read), one by one. It returns the numbers.
func countsOn(t *testing.T, root, name string, last, lines, over int) []int {
	t.Helper()
	waitFor(t, func() bool { return len(logNumbers(t, root, name)) >= lines })
	after := logNumbers(t, root, name)
	t.Logf("%s: checkpointed at %d; restored from %d", name, last, after[0])
	if after[0] < last-2 || after[0] > last+over {
		t.Errorf("%s: the restored counter started at %d; the checkpointed one had reached %d", name, after[0], last)
	}
	for i := 1; i < len(after); i++ {
		if after[i] != after[i-1]+1 {
			t.Errorf("%s: the restored counter's log goes %d, %d", name, after[i-1], after[i])
		}
	}
	return after
}

// wantRestored checks the container name that `hull container restore`
// made, printing out (the new container's ID on its last line): running,
// its counter going on from last, and the file the checkpointed
// container wrote in its root filesystem (/state: "before"). It returns
// the container's ID.
func wantRestored(t *testing.T, root, name, out string, last int) string {
	t.Helper()
	trimmed := strings.TrimSpace(out)
	id := strings.TrimSpace(trimmed[strings.LastIndex(trimmed, "\n")+1:])
	if want := containerID(t, root, name); id != want {
		t.Fatalf("restore printed %q; want the new container's ID %s", out, want)
	}
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", name)); st != "running" {
		t.Fatalf("the restored container is %s, not running", st)
	}
	countsOn(t, root, name, last, 5, 2)
	if got := mustHull(t, root, "exec", name, "cat", "/state"); got != "before\n" {
		t.Errorf("/state in the restored container: %q", got)
	}
	return id
}

// TestContainerRestoreImport checkpoints a counting container into an
// archive and restores it with `hull container restore --import`: the new
// container counts on from where the checkpoint was taken (not from 0),
// its output goes to its own log, the file written before the checkpoint
// is in its root filesystem, and its end is recorded like any.
func TestContainerRestoreImport(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "ck", "--network", "none", fx.Busybox.Ref, "sh", "-c", counterScript)
	waitFor(t, func() bool { return len(logNumbers(t, root, "ck")) >= 10 })
	archive := filepath.Join(t.TempDir(), "ck.tar")
	mustHull(t, root, "container", "checkpoint", "--export", archive, "ck")
	before := logNumbers(t, root, "ck")
	last := before[len(before)-1]

	out := mustHull(t, root, "container", "restore", "--import", archive, "--name", "ck2")
	id := wantRestored(t, root, "ck2", out, last)
	// Its init is the monitor's child (or the shim's, in the same
	// process), which reaps it and records its end.
	pid, _ := strconv.Atoi(strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Pid}}", "ck2")))
	if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(parentOf(pid)) + "/cmdline"); !strings.Contains(string(cmd), id) {
		t.Errorf("the restored init %d's parent is %q, not its monitor", pid, cmd)
	}
	mustHull(t, root, "kill", "ck2")
	waitFor(t, func() bool {
		return strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "ck2")) == "exited"
	})
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.ExitCode}}", "ck2")); st != "137" {
		t.Errorf("the killed restored container exited %s; want 137", st)
	}
	if why := mustHull(t, root, "why", "ck2"); !strings.Contains(why, "SIGKILL") {
		t.Errorf("hull why of the killed restored container:\n%s", why)
	}
}

// TestContainerRestoreRefusals: what cannot be restored fails with a
// clear error and leaves no container behind.
func TestContainerRestoreRefusals(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	dir := t.TempDir()
	notOne := filepath.Join(dir, "not.tar")
	os.WriteFile(notOne, []byte("hello"), 0o644)
	_, _, err := hull(t, root, "container", "restore", "-i", notOne)
	if err == nil || !strings.Contains(err.Error(), "not a checkpoint archive") && !strings.Contains(err.Error(), "is it a checkpoint archive") {
		t.Errorf("restore of a file that is no archive: %v", err)
	}
	mustHull(t, root, "run", "-d", "--name", "net", "--network", "none", fx.Busybox.Ref, "sleep", "1000")
	archive := filepath.Join(dir, "net.tar")
	mustHull(t, root, "container", "checkpoint", "-R", "--export", archive, "net")
	// The image gone from the store.
	mustHull(t, root, "rm", "-f", "net")
	mustHull(t, root, "rmi", fx.Busybox.Ref)
	_, _, err = hull(t, root, "container", "restore", "-i", archive, "--name", "net3")
	if err == nil || !strings.Contains(err.Error(), "pull it") {
		t.Errorf("restore without the image: %v", err)
	}
	if out := mustHull(t, root, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("failed restores left containers: %q", out)
	}
}

// TestContainerRestoreOwn restores a container in place from its own
// checkpoint (checkpoint without --export, then restore CONTAINER, as
// podman does): it counts on in the same log, and once it has ended a
// start runs its command afresh.
func TestContainerRestoreOwn(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "own", "--network", "none", fx.Busybox.Ref, "sh", "-c", counterScript)
	waitFor(t, func() bool { return len(logNumbers(t, root, "own")) >= 10 })
	mustHull(t, root, "container", "checkpoint", "own")
	n := len(logNumbers(t, root, "own"))
	if out := strings.TrimSpace(mustHull(t, root, "container", "restore", "own")); out != containerID(t, root, "own") {
		t.Errorf("restore printed %q; want the container's ID", out)
	}
	waitFor(t, func() bool { return len(logNumbers(t, root, "own")) >= n+5 })
	ns := logNumbers(t, root, "own")
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 && !(i == n && ns[i] >= ns[i-1]-1 && ns[i] <= ns[i-1]+2) {
			t.Errorf("the restored counter's log goes %d, %d (restored after %d lines)", ns[i-1], ns[i], n)
		}
	}
	_, _, err := hull(t, root, "container", "restore", "own")
	if err == nil || !strings.Contains(err.Error(), "only a stopped container") {
		t.Errorf("restore of a running container: %v", err)
	}
	mustHull(t, root, "kill", "own")
	waitFor(t, func() bool {
		return strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "own")) == "exited"
	})
	// Ended: a start runs the command afresh, from 0.
	k := len(logNumbers(t, root, "own"))
	mustHull(t, root, "start", "own")
	waitFor(t, func() bool { return len(logNumbers(t, root, "own")) > k })
	if ns := logNumbers(t, root, "own"); ns[k] != 0 {
		t.Errorf("a start after the restored run ended counts from %d; want 0", ns[k])
	}
}

// TestContainerRestoreOOM: a restored container is in its own cgroups,
// with the checkpointed one's memory limit, and an OOM kill of its
// restored process is recorded and explained as any.
func TestContainerRestoreOOM(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	// USR1 makes the counter grow past its limit.
	script := `trap 'x=$(head -c 200000000 /dev/zero | tr "\0" a)' USR1; ` + counterScript
	mustHull(t, root, "run", "-d", "--name", "mem", "--network", "none", "-m", "48m", "--memory-swap", "48m", fx.Busybox.Ref, "sh", "-c", script)
	waitFor(t, func() bool { return len(logNumbers(t, root, "mem")) >= 5 })
	archive := filepath.Join(t.TempDir(), "mem.tar")
	mustHull(t, root, "container", "checkpoint", "-e", archive, "mem")
	mustHull(t, root, "container", "restore", "-i", archive, "-n", "mem2")
	id := containerID(t, root, "mem2")
	pid := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Pid}}", "mem2"))
	cg, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	if !strings.Contains(string(cg), ":memory:/hull-"+id) {
		t.Errorf("the restored init's cgroups:\n%s\nwant the new container's (%s)", cg, id)
	}
	waitFor(t, func() bool { return len(logNumbers(t, root, "mem2")) >= 3 })
	mustHull(t, root, "kill", "-s", "USR1", "mem2")
	waitFor(t, func() bool {
		return strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "mem2")) == "exited"
	})
	if got := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.OOMKilled}}", "mem2")); got != "true" {
		t.Errorf("OOMKilled = %s for the restored container that outgrew its limit", got)
	}
	if why := mustHull(t, root, "why", "mem2"); !strings.Contains(why, "OOM") {
		t.Errorf("hull why of the OOM-killed restored container:\n%s", why)
	}
}

// TestContainerRestoreVariants restores containers run with --init (its
// PID 1 bound in from the host), -i (an input pipe), a volume and a
// tmpfs, and a read-only root: each counts on from where it was.
func TestContainerRestoreVariants(t *testing.T) {
	testenv.NeedCRIU(t)
	useInit(t)
	root, fx := containerEnv(t)
	for i, extra := range [][]string{{"--init"}, {"-i"}, {"-v", t.TempDir() + ":/data", "--tmpfs", "/scratch"}, {"--read-only"}} {
		name := "v" + strconv.Itoa(i)
		args := append([]string{"run", "-d", "--name", name, "--network", "none"}, extra...)
		mustHull(t, root, append(args, fx.Busybox.Ref, "sh", "-c", counterScript)...)
		waitFor(t, func() bool { return len(logNumbers(t, root, name)) >= 5 })
		archive := filepath.Join(t.TempDir(), name+".tar")
		mustHull(t, root, "container", "checkpoint", "-e", archive, name)
		before := logNumbers(t, root, name)
		if _, errOut, err := hull(t, root, "container", "restore", "-i", archive, "-n", name+"r"); err != nil {
			t.Errorf("%v: restore: %v %s", extra, err, errOut)
			continue
		}
		countsOn(t, root, name+"r", before[len(before)-1], 3, 3)
	}
}

// TestContainerRestoreOnNetwork restores a container of the default
// bridge network while the checkpointed one still runs: its network
// namespace is made anew and connected with an address of its own (the
// dumped one's veth has no host end to come back to), and it counts on.
func TestContainerRestoreOnNetwork(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "net", fx.Busybox.Ref, "sh", "-c", counterScript)
	waitFor(t, func() bool { return len(logNumbers(t, root, "net")) >= 5 })
	archive := filepath.Join(t.TempDir(), "net.tar")
	mustHull(t, root, "container", "checkpoint", "-R", "--export", archive, "net")
	mustHull(t, root, "container", "restore", "-i", archive, "-n", "net2")
	waitFor(t, func() bool { return len(logNumbers(t, root, "net2")) >= 3 })
	if first := logNumbers(t, root, "net2")[0]; first < 3 {
		t.Errorf("the restored counter started at %d", first)
	}
	ip1 := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "net"))
	ip2 := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "net2"))
	if ip2 == "" || ip2 == ip1 {
		t.Errorf("the restored container's address is %q (the checkpointed one's %q)", ip2, ip1)
	}
	addrs := mustHull(t, root, "exec", "net2", "ip", "-4", "addr")
	if !strings.Contains(addrs, "inet "+ip2+"/") || strings.Contains(addrs, "inet "+ip1+"/") || !strings.Contains(addrs, "inet 127.0.0.1/8") {
		t.Errorf("addresses in the restored container (%s):\n%s", ip2, addrs)
	}
	// Reached over the network from the checkpointed container.
	if out, _, err := hull(t, root, "exec", "net", "ping", "-c", "1", "-W", "5", ip2); err != nil {
		t.Errorf("ping the restored container from the other: %v\n%s", err, out)
	}
}

// TestContainerRestoreFailureIsExplained: a restore that CRIU fails
// leaves the container exited at the restore stage with CRIU's error,
// which hull why shows; a later start tries the restore again.
func TestContainerRestoreFailureIsExplained(t *testing.T) {
	testenv.NeedCRIU(t)
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "src", "--network", "none", fx.Busybox.Ref, "sh", "-c", counterScript)
	waitFor(t, func() bool { return len(logNumbers(t, root, "src")) >= 3 })
	archive := filepath.Join(t.TempDir(), "src.tar")
	mustHull(t, root, "container", "checkpoint", "-e", archive, "src")

	real := os.Getenv("HULL_CRIU")
	fake := filepath.Join(t.TempDir(), "criu")
	os.WriteFile(fake, []byte("#!/bin/sh\n"+
		"if [ \"$1\" = --version ]; then echo 'Version: 4.1.1'; exit 0; fi\n"+
		"if [ \"$1\" = check ]; then echo 'Looks good.'; exit 0; fi\n"+
		"while [ $# -gt 0 ]; do if [ \"$1\" = --work-dir ]; then dir=$2; fi; shift; done\n"+
		"echo 'Error (criu/cr-restore.c:1): fake: the restore failed on purpose' > \"$dir/restore.log\"\nexit 1\n"), 0o755)
	t.Setenv("HULL_CRIU", fake)
	_, _, err := hull(t, root, "container", "restore", "-i", archive, "-n", "dst")
	if err == nil || !strings.Contains(err.Error(), "failed on purpose") {
		t.Fatalf("restore with a CRIU that fails: %v; want its error", err)
	}
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "dst")); st != "exited 125" {
		t.Errorf("after a failed restore the container is %q; want exited 125", st)
	}
	if why := mustHull(t, root, "why", "dst"); !strings.Contains(why, "restore from its checkpoint failed") || !strings.Contains(why, "failed on purpose") {
		t.Errorf("hull why after a failed restore:\n%s", why)
	}
	// The CRIU recorded at create is the one used: put the real one
	// there, and the next start restores.
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(fake)
	if err := os.WriteFile(fake, b, 0o755); err != nil {
		t.Fatal(err)
	}
	mustHull(t, root, "start", "dst")
	waitFor(t, func() bool { return len(logNumbers(t, root, "dst")) >= 2 })
	if first := logNumbers(t, root, "dst")[0]; first < 2 {
		t.Errorf("the start after a failed restore counts from %d; want the restored count", first)
	}
}
