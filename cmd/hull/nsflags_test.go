package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nsLink is the host's own namespace of type typ (as readlink shows it).
func nsLink(t *testing.T, pid, typ string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + typ)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// runOut runs a --rm container and returns its trimmed output.
func runOut(t *testing.T, root string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(mustHull(t, root, append([]string{"run", "--rm"}, args...)...))
}

// runFails runs a container that must be refused with want in the error.
func runFails(t *testing.T, root, want string, args ...string) {
	t.Helper()
	out, errOut, err := hull(t, root, append([]string{"run", "--rm"}, args...)...)
	if err == nil || !strings.Contains(errOut+err.Error(), want) {
		t.Errorf("run %s: want an error with %q, got %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), want, err, out, errOut)
	}
}

func TestRunNamespaceModes(t *testing.T) {
	root, fx := containerEnv(t)
	img := fx.Busybox.Ref
	for _, typ := range []string{"pid", "ipc", "uts", "cgroup"} {
		flag := "--" + typ
		if typ == "cgroup" {
			flag = "--cgroupns"
		}
		host := nsLink(t, "self", typ)
		if got := runOut(t, root, flag, "host", img, "readlink", "/proc/self/ns/"+typ); got != host {
			t.Errorf("%s host: namespace %s, want the host's %s", flag, got, host)
		}
		if got := runOut(t, root, img, "readlink", "/proc/self/ns/"+typ); got == host {
			t.Errorf("without %s: the host's namespace %s", flag, got)
		}
	}
	if got := runOut(t, root, "--cgroupns", "private", img, "readlink", "/proc/self/ns/cgroup"); got == nsLink(t, "self", "cgroup") {
		t.Errorf("--cgroupns private: the host's namespace %s", got)
	}
	hostname, _ := os.Hostname()
	if got := runOut(t, root, "--uts", "host", img, "hostname"); got != hostname {
		t.Errorf("--uts host: hostname %q, want the host's %q", got, hostname)
	}
	runFails(t, root, "conflicting options", "--uts", "host", "-h", "x", img, "true")
	runFails(t, root, "invalid PID mode", "--pid", "bogus", img, "true")

	// Another container's namespaces: its pid namespace, and its IPC
	// namespace and /dev/shm when it is shareable.
	mustHull(t, root, "run", "-d", "--name", "donor", "--ipc", "shareable", img, "sh", "-c", "echo shared > /dev/shm/x; exec sleep 300")
	mustHull(t, root, "run", "-d", "--name", "private", img, "sleep", "300")
	pid := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Pid}}", "donor"))
	if got := runOut(t, root, "--pid", "container:donor", img, "readlink", "/proc/self/ns/pid"); got != nsLink(t, pid, "pid") {
		t.Errorf("--pid container:donor: namespace %s, want the donor's %s", got, nsLink(t, pid, "pid"))
	}
	if got := runOut(t, root, "--pid", "container:donor", img, "ps"); !strings.Contains(got, "sleep 300") {
		t.Errorf("--pid container:donor: ps shows no donor's sleep:\n%s", got)
	}
	time.Sleep(200 * time.Millisecond) // the donor's echo to /dev/shm
	got := runOut(t, root, "--ipc", "container:donor", img, "sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/x")
	if want := nsLink(t, pid, "ipc") + "\nshared"; got != want {
		t.Errorf("--ipc container:donor: %q, want %q (its namespace and /dev/shm)", got, want)
	}
	// A joiner started again joins the donor's namespace of now, after
	// the donor's restart.
	mustHull(t, root, "run", "-d", "--name", "joiner", "--pid", "container:donor", img, "sleep", "300")
	mustHull(t, root, "restart", "-t", "0", "donor")
	mustHull(t, root, "restart", "-t", "0", "joiner")
	newPid := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Pid}}", "donor"))
	joiner := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Pid}}", "joiner"))
	if newPid == pid || nsLink(t, joiner, "pid") != nsLink(t, newPid, "pid") {
		t.Errorf("joiner restarted after its donor: pid namespace %s, want the donor's new %s", nsLink(t, joiner, "pid"), nsLink(t, newPid, "pid"))
	}
	mustHull(t, root, "rm", "-f", "joiner")
	runFails(t, root, "non-shareable", "--ipc", "container:private", img, "true")
	mustHull(t, root, "stop", "--timeout", "0", "private")
	runFails(t, root, "not running", "--pid", "container:private", img, "true")
	runFails(t, root, "No such container", "--pid", "container:nosuch", img, "true")

	if got := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.ShmSize}} {{.HostConfig.CgroupnsMode}}", "donor")); got != "shareable 67108864 private" {
		t.Errorf("inspect HostConfig: %q", got)
	}
	// --ipc host shares the host's /dev/shm.
	hostFile := "/dev/shm/hull-nsflags-test"
	defer os.Remove(hostFile)
	runOut(t, root, "--ipc", "host", img, "sh", "-c", "echo from-container > "+hostFile)
	if b, err := os.ReadFile(hostFile); err != nil || string(b) != "from-container\n" {
		t.Errorf("--ipc host: the host's /dev/shm has %q, %v", b, err)
	}

	// --ipc none has no /dev/shm; --shm-size sizes it (64m by default).
	if got := runOut(t, root, "--ipc", "none", img, "sh", "-c", "test -e /dev/shm && echo present || echo absent"); got != "absent" {
		t.Errorf("--ipc none: /dev/shm %s", got)
	}
	for size, want := range map[string]string{"": "65536", "128m": "131072"} {
		args := []string{img, "sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"}
		if size != "" {
			args = append([]string{"--shm-size", size}, args...)
		}
		if got := runOut(t, root, args...); got != want {
			t.Errorf("--shm-size %q: /dev/shm has %s KiB, want %s", size, got, want)
		}
	}
}

func TestRunSysctl(t *testing.T) {
	root, fx := containerEnv(t)
	img := fx.Busybox.Ref
	got := runOut(t, root, "--sysctl", "kernel.shmmax=123456789", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "fs.mqueue.msg_max=20",
		img, "cat", "/proc/sys/kernel/shmmax", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/fs/mqueue/msg_max")
	if want := "123456789\n1\n20"; got != want {
		t.Errorf("--sysctl: the container has %q, want %q", got, want)
	}
	runFails(t, root, "sysctl 'vm.swappiness=10' is not allowed", "--sysctl", "vm.swappiness=10", img, "true")
	runFails(t, root, "not allowed in host network namespace", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", img, "true")
	runFails(t, root, "IPC namespace", "--ipc", "host", "--sysctl", "kernel.shmmax=1", img, "true")
}

// cgroupFile reads a file of a running container's v1 (or v2) cgroup.
func cgroupFile(t *testing.T, id, parent, controller, file string) string {
	t.Helper()
	for _, p := range []string{filepath.Join("/sys/fs/cgroup", controller, parent, "hull-"+id, file), filepath.Join("/sys/fs/cgroup", parent, "hull-"+id, file)} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("container %s: no cgroup file %s (%s)", id, file, controller)
	return ""
}

func TestRunDeviceAndCgroupFlags(t *testing.T) {
	root, fx := containerEnv(t)
	img := fx.Busybox.Ref
	open := "exec 3<>/dev/net/tun && echo opened"
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun on this host")
	}
	if got := runOut(t, root, "--device", "/dev/net/tun", img, "sh", "-c", open); got != "opened" {
		t.Errorf("--device /dev/net/tun: %q", got)
	}
	if got := runOut(t, root, "--device", "/dev/net/tun:/dev/mytun", img, "sh", "-c", "test -c /dev/mytun && exec 3<>/dev/mytun && echo opened"); got != "opened" {
		t.Errorf("--device /dev/net/tun:/dev/mytun: %q", got)
	}
	got := runOut(t, root, "--device", "/dev/net/tun:/dev/net/tun:r", img, "sh", "-c", "exec 3</dev/net/tun && echo read; (exec 3<>/dev/net/tun) 2>/dev/null && echo written || echo refused")
	if got != "read\nrefused" {
		t.Errorf("--device /dev/net/tun:r: %q, want it readable only", got)
	}
	mk := "mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && " + open
	if out, errOut, err := hull(t, root, "run", "--rm", img, "sh", "-c", mk); err == nil {
		t.Errorf("a device without a rule opened: %s %s", out, errOut)
	}
	if got := runOut(t, root, "--device-cgroup-rule", "c 10:200 rwm", img, "sh", "-c", mk); got != "opened" {
		t.Errorf("--device-cgroup-rule: %q", got)
	}
	runFails(t, root, "invalid --device-cgroup-rule", "--device-cgroup-rule", "x 1:3 r", img, "true")
	runFails(t, root, "not a device node", "--device", "/etc/passwd", img, "true")

	if got := runOut(t, root, "--oom-score-adj", "432", img, "cat", "/proc/self/oom_score_adj"); got != "432" {
		t.Errorf("--oom-score-adj 432: %s", got)
	}

	// cgroup settings, read from the host.
	args := []string{"run", "-d", "--cpu-period", "50000", "--cpu-quota", "25000", "--cpuset-mems", "0",
		"--memory", "32m", "--oom-kill-disable", "--kernel-memory", "10m", "--cgroup-parent", "hulltest-parent"}
	var blk string
	for _, d := range []string{"/dev/vda", "/dev/sda", "/dev/nvme0n1"} {
		if _, err := os.Stat(d); err == nil {
			blk = d
			break
		}
	}
	if blk != "" {
		args = append(args, "--device-read-bps", blk+":1mb", "--device-write-iops", blk+":77")
	}
	t.Cleanup(func() {
		for _, c := range []string{"cpu", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "cpuacct", "systemd", ""} {
			os.Remove(filepath.Join("/sys/fs/cgroup", c, "hulltest-parent"))
		}
	})
	out, errOut, err := hull(t, root, append(args, img, "sleep", "300")...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "--kernel-memory is ignored") {
		t.Errorf("--kernel-memory: no warning in %q", errOut)
	}
	id := strings.TrimSpace(out)
	defer hull(t, root, "rm", "-f", id)
	for _, c := range []struct{ ctrl, file, want string }{
		{"cpu", "cpu.cfs_period_us", "50000"},
		{"cpu", "cpu.cfs_quota_us", "25000"},
		{"cpuset", "cpuset.mems", "0"},
	} {
		if got := cgroupFile(t, id, "hulltest-parent", c.ctrl, c.file); got != c.want {
			t.Errorf("%s: %q, want %q", c.file, got, c.want)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.oom_control"); err == nil {
		if got := cgroupFile(t, id, "hulltest-parent", "memory", "memory.oom_control"); !strings.Contains(got, "oom_kill_disable 1") {
			t.Errorf("--oom-kill-disable: memory.oom_control has %q", got)
		}
	}
	if blk != "" {
		if got := cgroupFile(t, id, "hulltest-parent", "blkio", "blkio.throttle.read_bps_device"); !strings.HasSuffix(got, " 1048576") {
			t.Errorf("--device-read-bps: %q", got)
		}
		if got := cgroupFile(t, id, "hulltest-parent", "blkio", "blkio.throttle.write_iops_device"); !strings.HasSuffix(got, " 77") {
			t.Errorf("--device-write-iops: %q", got)
		}
	}
	runFails(t, root, "conflicting options", "--cpus", "1", "--cpu-quota", "50000", img, "true")
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err == nil {
		out := strings.TrimSpace(mustHull(t, root, "run", "-d", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "10000", img, "sleep", "300"))
		if got := cgroupFile(t, out, "", "cpu", "cpu.rt_runtime_us"); got != "10000" {
			t.Errorf("--cpu-rt-runtime 10000: %q", got)
		}
		hull(t, root, "rm", "-f", out)
	} else {
		runFails(t, root, "real-time", "--cpu-rt-runtime", "10000", img, "true")
	}
	if _, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight"); err != nil {
		_, errOut, err := hull(t, root, "run", "--rm", "--blkio-weight", "300", img, "true")
		if err != nil || !strings.Contains(errOut, "Weight discarded") {
			t.Errorf("--blkio-weight without the kernel's support: %v, want docker's warning in %q", err, errOut)
		}
	}
}

func TestRunSecurityAndMetadataFlags(t *testing.T) {
	root, fx := containerEnv(t)
	img := fx.Busybox.Ref
	nnp := func(opt string) string {
		return runOut(t, root, "--security-opt", opt, img, "sh", "-c", "grep NoNewPrivs /proc/self/status | awk '{print $2}'")
	}
	if got := nnp("no-new-privileges:false"); got != "0" {
		t.Errorf("no-new-privileges:false: NoNewPrivs %s", got)
	}
	if got := nnp("no-new-privileges:true"); got != "1" {
		t.Errorf("no-new-privileges:true: NoNewPrivs %s", got)
	}
	procSys := "grep -c ' /proc/sys ' /proc/self/mounts || true"
	if got := runOut(t, root, img, "sh", "-c", procSys); got != "1" {
		t.Errorf("/proc/sys made read-only %s times by default", got)
	}
	if got := runOut(t, root, "--security-opt", "systempaths=unconfined", img, "sh", "-c", procSys); got != "0" {
		t.Errorf("systempaths=unconfined: /proc/sys made read-only %s times", got)
	}
	runOut(t, root, "--security-opt", "label=disable", "--security-opt", "apparmor=unconfined", img, "true")
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		runFails(t, root, "AppArmor is not enabled", "--security-opt", "apparmor=docker-default", img, "true")
	}

	labels := filepath.Join(t.TempDir(), "labels")
	os.WriteFile(labels, []byte("# comment\nfrom.file=1\nover=file\nbare\n"), 0o644)
	mustHull(t, root, "create", "--name", "meta", "--label-file", labels, "--label", "over=flag", "--annotation", "org.example/a=b", img)
	if got := mustHull(t, root, "inspect", "-f", "{{json .Config.Labels}}", "meta"); !strings.Contains(got, `"from.file":"1"`) || !strings.Contains(got, `"over":"flag"`) || !strings.Contains(got, `"bare":""`) {
		t.Errorf("--label-file: labels %s", got)
	}
	if got := mustHull(t, root, "inspect", "-f", "{{json .HostConfig.Annotations}}", "meta"); strings.TrimSpace(got) != `{"org.example/a":"b"}` {
		t.Errorf("--annotation: %s", got)
	}

	t.Setenv("HULL_TEST_FROM_HOST", "host-value")
	if got := runOut(t, root, "-e", "HULL_TEST_FROM_HOST", img, "sh", "-c", "echo $HULL_TEST_FROM_HOST"); got != "host-value" {
		t.Errorf("-e NAME: %q", got)
	}
	if err := hullProc(root, "run", "--rm", "-e", "=x", img, "true").Run(); exitStatus(err) != 125 {
		t.Errorf("-e =x: exit %d, want 125", exitStatus(err))
	}

	got := runOut(t, root, "--read-only", "--read-only-tmpfs", img, "sh", "-c", "touch /tmp/a /var/tmp/b /run/c && echo ok; touch /x 2>/dev/null || echo ro")
	if got != "ok\nro" {
		t.Errorf("--read-only --read-only-tmpfs: %q", got)
	}

	// stop -t/--timeout: a PID 1 sleep ignores SIGTERM, so stop waits
	// out the timeout before killing.
	for _, flag := range []string{"--timeout", "-t"} {
		id := strings.TrimSpace(mustHull(t, root, "run", "-d", img, "sleep", "300"))
		start := time.Now()
		mustHull(t, root, "stop", flag, "1", id)
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("stop %s 1 took %v", flag, d)
		}
		hull(t, root, "rm", "-f", id)
	}
}
