package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// kubeExec runs `hull kube exec POD -c C -- sh -c SCRIPT` and returns
// its output.
func kubeExec(t *testing.T, root, pod, c, script string) string {
	t.Helper()
	return mustKube(t, root, "exec", pod, "-c", c, "--", "sh", "-c", script)
}

// procStatus is the named fields of /proc/PID/status ("self" or a pid)
// in container c of pod, as kube exec sees them.
func procStatus(t *testing.T, root, pod, c, pid string) map[string]string {
	t.Helper()
	out := kubeExec(t, root, pod, c, "cat /proc/"+pid+"/status")
	fields := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// podProcs is every process container c of pod sees, pid → command line
// (arguments joined by spaces).
func podProcs(t *testing.T, root, pod, c string) map[int]string {
	t.Helper()
	out := kubeExec(t, root, pod, c, `for p in /proc/[0-9]*; do echo "${p#/proc/} $(tr '\0' ' ' < $p/cmdline)"; done 2>/dev/null`)
	procs := map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		pid, cmdline, _ := strings.Cut(l, " ")
		if n, err := strconv.Atoi(pid); err == nil {
			procs[n] = strings.TrimSpace(cmdline)
		}
	}
	return procs
}

// nsScript prints the PID and IPC namespaces of its process.
const nsScript = "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc"

// pidOf is the pid of the one process whose command line is cmdline (0:
// none).
func pidOf(procs map[int]string, cmdline string) int {
	for pid, c := range procs {
		if c == cmdline {
			return pid
		}
	}
	return 0
}

// hostPID and hostIPC put the pod's containers in the node's PID and IPC
// namespaces; shareProcessNamespace puts a pod's containers in one PID
// namespace of the pod's whose PID 1 is the pod's own process (kubelet's
// pause container; hull's holder, hull-init --pause), not any
// container's; without either, each container has a PID namespace of its
// own (its command is PID 1) and the pod an IPC namespace of its own.
func TestKubeHostAndSharedNamespaces(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: hostns
spec:
  hostPID: true
  hostIPC: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: sharedpid
spec:
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: %[1]s
    command: ["sleep", "601"]
  - name: b
    image: %[1]s
    command: ["sleep", "602"]
---
apiVersion: v1
kind: Pod
metadata:
  name: ownns
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: %[1]s
    command: ["sleep", "603"]
  - name: b
    image: %[1]s
    command: ["sleep", "604"]
`, fx.Busybox.Ref))
	for _, name := range []string{"hostns", "sharedpid", "ownns"} {
		waitPod(t, root, name, "running", running)
	}
	hostNS := func(kind string) string {
		l, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	hostPIDNS, hostIPCNS := hostNS("pid"), hostNS("ipc")
	self, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	selfCmdline := strings.TrimSpace(strings.ReplaceAll(string(self), "\x00", " "))

	// hostPID, hostIPC: the node's namespaces; this test's own process
	// is visible, with its command line.
	out := kubeExec(t, root, "hostns", "c", nsScript)
	if want := hostPIDNS + "\n" + hostIPCNS + "\n"; out != want {
		t.Errorf("hostPID, hostIPC pod: namespaces pid, ipc %q; want the host's %q", out, want)
	}
	if got := podProcs(t, root, "hostns", "c")[os.Getpid()]; got != selfCmdline {
		t.Errorf("hostPID pod: pid %d (this test) is %q; want %q", os.Getpid(), got, selfCmdline)
	}

	// shareProcessNamespace: each container sees the other's process;
	// PID 1 is the pod's, neither container's.
	for _, c := range []struct{ name, own, other string }{{"a", "sleep 601", "sleep 602"}, {"b", "sleep 602", "sleep 601"}} {
		procs := podProcs(t, root, "sharedpid", c.name)
		if pidOf(procs, c.other) == 0 || pidOf(procs, c.own) == 0 {
			t.Errorf("shareProcessNamespace: container %s does not see both %q and %q: %v", c.name, c.own, c.other, procs)
		}
		if pidOf(procs, c.own) == 1 || pidOf(procs, c.other) == 1 {
			t.Errorf("shareProcessNamespace: container %s: a container's process is PID 1; want the pod's own (kubelet's pause): %v", c.name, procs)
		}
		if !strings.HasSuffix(procs[1], " --pause") {
			t.Errorf("shareProcessNamespace: container %s: PID 1 is %q; want the pod's holder (hull-init --pause)", c.name, procs[1])
		}
	}
	a := kubeExec(t, root, "sharedpid", "a", nsScript)
	b := kubeExec(t, root, "sharedpid", "b", nsScript)
	if a != b || strings.Contains(a, hostPIDNS) || strings.Contains(a, hostIPCNS) {
		t.Errorf("shareProcessNamespace: namespaces pid, ipc of a %q and b %q; want the same, not the host's", a, b)
	}

	// The default: a PID namespace per container, whose PID 1 is its
	// command; one IPC namespace for the pod, not the host's.
	a = kubeExec(t, root, "ownns", "a", nsScript)
	b = kubeExec(t, root, "ownns", "b", nsScript)
	af, bf := strings.Fields(a), strings.Fields(b)
	if len(af) != 2 || len(bf) != 2 || af[0] == bf[0] || af[1] != bf[1] || af[0] == hostPIDNS || af[1] == hostIPCNS {
		t.Errorf("default pod: namespaces pid, ipc of a %q and b %q; want two pid namespaces, one ipc namespace, none the host's", a, b)
	}
	for c, own := range map[string]string{"a": "sleep 603", "b": "sleep 604"} {
		if procs := podProcs(t, root, "ownns", c); procs[1] != own || len(procs) != 2 { // its command and the exec'd sh
			t.Errorf("default pod: container %s sees %v; want only its own command %q as PID 1 (and the exec)", c, procs, own)
		}
	}
}

// Capability masks (bit N is capability N).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	// containerd's (and docker's) default set: CHOWN, DAC_OVERRIDE,
	// FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
	// NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
	defaultCaps = 0xa80425fb
)

// A container's securityContext and its command, args and workingDir,
// as the process sees them: runAsUser/runAsGroup its ids; privileged
// every capability, no seccomp filter and the host's devices; an added
// capability on top of the default set; seccompProfile RuntimeDefault a
// filter, Unconfined (and no profile, kubelet's default) none; args
// after the command (or alone, as the command); workingDir its cwd,
// made when the image lacks it. Checked for the container's own process
// (PID 1) and a kube exec alike.
func TestKubeContainerSecurityContext(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: sec
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: plain
    image: %[1]s
    command: ["sleep", "600"]
  - name: user
    image: %[1]s
    command: ["sleep", "600"]
    securityContext:
      runAsUser: 1234
      runAsGroup: 5678
  - name: priv
    image: %[1]s
    command: ["sleep", "600"]
    securityContext:
      privileged: true
  - name: netadmin
    image: %[1]s
    command: ["sleep", "600"]
    securityContext:
      capabilities:
        add: ["NET_ADMIN"]
  - name: rtdefault
    image: %[1]s
    command: ["sleep", "600"]
    securityContext:
      seccompProfile:
        type: RuntimeDefault
  - name: unconfined
    image: %[1]s
    command: ["sleep", "600"]
    securityContext:
      seccompProfile:
        type: Unconfined
  - name: args
    image: %[1]s
    command: ["sh", "-c"]
    args: ['echo "args: $0 $1"; pwd; exec sleep 600', "one", "two"]
    workingDir: /tmp/work/deep
  - name: argsonly
    image: %[1]s
    args: ["sh", "-c", "echo only args; exec sleep 600"]
`, fx.Busybox.Ref))
	waitPod(t, root, "sec", "running", running)

	status := func(c string) (main, exec map[string]string) {
		return procStatus(t, root, "sec", c, "1"), procStatus(t, root, "sec", c, "self")
	}
	caps := func(c, hex string) uint64 {
		n, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			t.Fatalf("container %s: CapEff %q: %v", c, hex, err)
		}
		return n
	}
	// privileged: every capability hull has (containerd's
	// WithAllCurrentCapabilities: its own, which a host may have reduced),
	// here this test's.
	var allCaps uint64
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(self), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			allCaps = caps("host", strings.TrimSpace(v))
		}
	}

	for _, tc := range []struct {
		c        string
		uid, gid string // Uid, Gid lines: real, effective, saved, fs
		capEff   uint64
		seccomp  string
	}{
		{c: "plain", uid: "0\t0\t0\t0", gid: "0\t0\t0\t0", capEff: defaultCaps, seccomp: "0"},
		{c: "user", uid: "1234\t1234\t1234\t1234", gid: "5678\t5678\t5678\t5678", capEff: 0, seccomp: "0"},
		{c: "priv", uid: "0\t0\t0\t0", gid: "0\t0\t0\t0", capEff: allCaps, seccomp: "0"},
		{c: "netadmin", uid: "0\t0\t0\t0", gid: "0\t0\t0\t0", capEff: defaultCaps | 1<<capNetAdmin, seccomp: "0"},
		{c: "rtdefault", uid: "0\t0\t0\t0", gid: "0\t0\t0\t0", capEff: defaultCaps, seccomp: "2"},
		{c: "unconfined", uid: "0\t0\t0\t0", gid: "0\t0\t0\t0", capEff: defaultCaps, seccomp: "0"},
	} {
		main, exec := status(tc.c)
		for who, st := range map[string]map[string]string{"its command": main, "kube exec": exec} {
			if st["Uid"] != tc.uid || st["Gid"] != tc.gid {
				t.Errorf("container %s, %s: Uid %q Gid %q; want %q %q", tc.c, who, st["Uid"], st["Gid"], tc.uid, tc.gid)
			}
			if got := caps(tc.c, st["CapEff"]); got != tc.capEff {
				t.Errorf("container %s, %s: CapEff %016x; want %016x", tc.c, who, got, tc.capEff)
			}
			if st["Seccomp"] != tc.seccomp {
				t.Errorf("container %s, %s: Seccomp %q; want %q", tc.c, who, st["Seccomp"], tc.seccomp)
			}
		}
	}
	if got := caps("netadmin", procStatus(t, root, "sec", "netadmin", "1")["CapEff"]); got&(1<<capSysAdmin) != 0 {
		t.Errorf("container netadmin: CAP_SYS_ADMIN is effective: %016x", got)
	}
	if out := kubeExec(t, root, "sec", "user", "id -u; id -g"); out != "1234\n5678\n" {
		t.Errorf("container user: id -u, id -g: %q; want 1234, 5678", out)
	}

	// privileged: the host's devices (one no default /dev has), and
	// /sys writable although an unprivileged container of its pod (with
	// /sys read-only) mounted the pod's sysfs first.
	if _, err := os.Stat("/dev/loop-control"); err == nil {
		if out, errOut, err := kube(t, root, "exec", "sec", "-c", "priv", "--", "test", "-c", "/dev/loop-control"); err != nil {
			t.Errorf("container priv: no /dev/loop-control (the host has it): %v %s%s", err, out, errOut)
		}
		if _, _, err := kube(t, root, "exec", "sec", "-c", "plain", "--", "test", "-e", "/dev/loop-control"); err == nil {
			t.Errorf("container plain: has the host's /dev/loop-control")
		}
	}
	if out := kubeExec(t, root, "sec", "priv", "grep ' /sys ' /proc/self/mounts"); !regexp.MustCompile(`^sysfs /sys sysfs rw[ ,]`).MatchString(out) {
		t.Errorf("container priv: /sys is not mounted read-write: %q", out)
	}
	if out := kubeExec(t, root, "sec", "plain", "grep ' /sys ' /proc/self/mounts"); !regexp.MustCompile(`^sysfs /sys sysfs ro[ ,]`).MatchString(out) {
		t.Errorf("container plain: /sys is not mounted read-only: %q", out)
	}

	// command + args, args alone; workingDir.
	lines := func(n int) func(string) bool { return func(out string) bool { return strings.Count(out, "\n") >= n } }
	if out := waitKubeOut(t, root, "logged", lines(2), "logs", "sec", "-c", "args"); out != "args: one two\n/tmp/work/deep\n" {
		t.Errorf("container args: logs %q; want the args after the command and the workingDir", out)
	}
	if out := kubeExec(t, root, "sec", "args", "pwd"); out != "/tmp/work/deep\n" {
		t.Errorf("container args: kube exec's pwd %q; want the workingDir", out)
	}
	if out := waitKubeOut(t, root, "logged", lines(1), "logs", "sec", "-c", "argsonly"); out != "only args\n" {
		t.Errorf("container argsonly: logs %q; want the args run as the command", out)
	}
}
