package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"hull/internal/testenv"
)

// Behaviour where docker is the reference (issue 13): each test runs what
// a newcomer runs and expects what docker does.

// Loopback is up in a container's own network namespace, so a server on
// 127.0.0.1 is reachable (docker: --network none is "only lo", up).
func TestParityLoopbackUp(t *testing.T) {
	root, fx := containerEnv(t)
	out, errOut, err := hull(t, root, "run", "--rm", "--network", "none", fx.Busybox.Ref,
		"sh", "-c", "nc -l -p 8080 -e echo hi & sleep 0.5; nc 127.0.0.1 8080")
	if err != nil || strings.TrimSpace(out) != "hi" {
		t.Fatalf("nc over lo: out %q, err %v, stderr %s; want hi", out, err, errOut)
	}
}

// The user's primary group and --group-add's (by name or gid) are the
// process's supplementary groups, as docker sets them.
func TestParitySupplementaryGroups(t *testing.T) {
	root, fx := containerEnv(t)
	out := mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "id")
	if want := "uid=0(root) gid=0(root) groups=0(root)"; strings.TrimSpace(out) != want {
		t.Errorf("id as root = %q, want %q", out, want)
	}
	out = mustHull(t, root, "run", "--rm", "-u", "app", "--group-add", "nobody", "--group-add", "4242", fx.Busybox.Ref, "id", "-G")
	if want := "1000 4242 65534"; strings.TrimSpace(out) != want {
		t.Errorf("id -G with --group-add = %q, want %q", out, want)
	}
	mustHull(t, root, "create", "--name", "g", "--group-add", "nobody", "--group-add", "4242", fx.Busybox.Ref)
	if out := mustHull(t, root, "inspect", "-f", "{{json .HostConfig.GroupAdd}}", "g"); strings.TrimSpace(out) != `["nobody","4242"]` {
		t.Errorf("inspect HostConfig.GroupAdd = %s", out)
	}
	cmd := hullProc(root, "run", "--rm", "--group-add", "no-such-group", fx.Busybox.Ref, "true")
	b, err := cmd.CombinedOutput()
	if exitStatus(err) != 125 || !strings.Contains(string(b), "no-such-group") {
		t.Errorf("--group-add of an unknown group: status %d, output %s; want 125 naming it", exitStatus(err), b)
	}
}

// A directory as the command cannot be executed: 126, as in docker, not
// 127 (it exists).
func TestParityDirectoryCommand(t *testing.T) {
	root, fx := containerEnv(t)
	cmd := hullProc(root, "run", "--rm", fx.Busybox.Ref, "/etc")
	b, err := cmd.CombinedOutput()
	if exitStatus(err) != 126 || !strings.Contains(string(b), "directory") {
		t.Errorf("run IMG /etc: status %d, output %s; want 126 and 'is a directory'", exitStatus(err), b)
	}
}

// A relative command with a slash is found from the working directory.
func TestParityRelativeCommand(t *testing.T) {
	root, fx := containerEnv(t)
	out, errOut, err := hull(t, root, "run", "--rm", "-w", "/bin", fx.Busybox.Ref, "./echo", "relative")
	if err != nil || strings.TrimSpace(out) != "relative" {
		t.Fatalf("run -w /bin IMG ./echo: out %q, err %v, stderr %s", out, err, errOut)
	}
	cmd := hullProc(root, "run", "--rm", "-w", "/bin", fx.Busybox.Ref, "./no-such")
	b, err := cmd.CombinedOutput()
	if exitStatus(err) != 127 {
		t.Errorf("run -w /bin IMG ./no-such: status %d, output %s; want 127", exitStatus(err), b)
	}
}

// /etc/hostname and /etc/hosts are the container's, bound over the
// image's: localhost resolves; the container's name is its address on
// the default network, loopback with --network none; with the host's
// network the host's hosts and resolv.conf are copied in.
func TestParityEtcFiles(t *testing.T) {
	root, fx := containerEnv(t)
	for _, c := range []struct {
		network, self string
		mounts        string
	}{{"none", "127.0.0.1\tbox1\n", "2"}, {"bridge", "\tbox1\n", "3"}} {
		out := mustHull(t, root, "run", "--rm", "--network", c.network, "-h", "box1", fx.Busybox.Ref, "sh", "-c",
			"cat /etc/hostname; cat /etc/hosts; ip -4 -o addr show scope global | awk '{print $4}'; grep -c ' /etc/[hr][oe]s' /proc/self/mounts")
		lines := strings.Split(out, "\n")
		if lines[0] != "box1" {
			t.Errorf("--network %s: /etc/hostname = %q, want box1", c.network, lines[0])
		}
		self := c.self
		if c.network == "bridge" {
			// The address the container has on eth0.
			addr, _, _ := strings.Cut(lines[len(lines)-3], "/")
			self = addr + self
		}
		for _, want := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", self} {
			if !strings.Contains(out, want) {
				t.Errorf("--network %s: /etc/hosts lacks %q:\n%s", c.network, want, out)
			}
		}
		if n := strings.TrimSpace(lines[len(lines)-2]); n != c.mounts {
			t.Errorf("--network %s: /etc/hostname, hosts (and resolv.conf) bind mounts: %s, want %s", c.network, n, c.mounts)
		}
	}

	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Skip("the host has no /etc/hosts")
	}
	out := mustHull(t, root, "run", "--rm", "--network", "host", fx.Busybox.Ref, "cat", "/etc/hosts")
	if out != string(hosts) {
		t.Errorf("--network host /etc/hosts = %q, want the host's %q", out, hosts)
	}
	if resolv, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		out = mustHull(t, root, "run", "--rm", "--network", "host", fx.Busybox.Ref, "cat", "/etc/resolv.conf")
		if out != string(resolv) {
			t.Errorf("--network host /etc/resolv.conf = %q, want the host's %q", out, resolv)
		}
	}
}

// inspect's Config is what the container runs with: the image's config
// with the run options laid over it (docker's merged Config), and stop
// sends the image's STOPSIGNAL.
func TestParityInspectConfigMergesTheImage(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "create", "--name", "c", "-e", "X=1", "--label", "l=v", fx.Config.Ref)
	out := mustHull(t, root, "inspect", "-f", `{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Env}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{.Config.StopSignal}}|{{index .Config.Labels "com.example.hull.fixture"}}|{{.Config.Labels.l}}|{{json .Config.ExposedPorts}}`, "c")
	want := `app|/home/app|["` + testenv.DefaultPath + `","FOO=bar","X=1"]|["/bin/sh","-c"]|["echo hello"]|SIGQUIT|config|v|{"53/udp":{},"8080/tcp":{}}`
	if strings.TrimSpace(out) != want {
		t.Errorf("inspect Config:\n got %s\nwant %s", strings.TrimSpace(out), want)
	}
	mustHull(t, root, "create", "--name", "d", "-u", "root", "-w", "/tmp", "--entrypoint", "", "--stop-signal", "SIGUSR1", fx.Config.Ref, "true")
	out = mustHull(t, root, "inspect", "-f", `{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{.Config.StopSignal}}`, "d")
	if want := `root|/tmp|null|["true"]|SIGUSR1`; strings.TrimSpace(out) != want {
		t.Errorf("inspect Config with options: %s, want %s", strings.TrimSpace(out), want)
	}
	// The image's STOPSIGNAL (SIGQUIT) is what stop sends first.
	mustHull(t, root, "run", "-d", "--name", "q", fx.Config.Ref, "trap 'exit 7' QUIT; echo ready; while :; do sleep 0.1; done")
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "q"), "ready") })
	mustHull(t, root, "stop", "-t", "20", "q")
	if out := mustHull(t, root, "inspect", "-f", "{{.State.ExitCode}}", "q"); strings.TrimSpace(out) != "7" {
		t.Errorf("stop of an image with STOPSIGNAL SIGQUIT: exit code %s, want 7 (the trap's)", out)
	}
}

// A command that cannot run fails the start, not the create (docker): the
// container is created, start exits 127 and leaves it created with the
// reason, and run --rm keeps nothing.
func TestParityMissingCommandFailsAtStart(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "create", "--name", "c", fx.Busybox.Ref, "/no/such/command")
	if out := mustHull(t, root, "ps", "-a", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(out) != "c created" {
		t.Fatalf("after create: %q", out)
	}
	b, err := hullProc(root, "start", "-a", "c").CombinedOutput()
	if exitStatus(err) != 127 || !strings.Contains(string(b), "/no/such/command") {
		t.Errorf("start -a: status %d, output %s; want 127 naming the command", exitStatus(err), b)
	}
	out := mustHull(t, root, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "c")
	if !strings.HasPrefix(out, "created 127 ") || !strings.Contains(out, "/no/such/command") {
		t.Errorf("inspect after the failed start: %q", out)
	}
	if out := mustHull(t, root, "why", "c"); !strings.Contains(out, "failed to start (exit code 127)") {
		t.Errorf("why:\n%s", out)
	}
	b, err = hullProc(root, "run", "--name", "kept", fx.Busybox.Ref, "/no/such/command").CombinedOutput()
	if exitStatus(err) != 127 {
		t.Errorf("run: status %d, want 127\n%s", exitStatus(err), b)
	}
	if out := mustHull(t, root, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "kept"); strings.TrimSpace(out) != "created 127" {
		t.Errorf("run's container: %q, want created 127", out)
	}
	b, err = hullProc(root, "run", "--rm", "--name", "gone", fx.Busybox.Ref, "/no/such/command").CombinedOutput()
	if exitStatus(err) != 127 {
		t.Errorf("run --rm: status %d, want 127\n%s", exitStatus(err), b)
	}
	if _, _, err := hull(t, root, "inspect", "gone"); err == nil {
		t.Error("run --rm of a command that cannot run kept its container")
	}
}

// --platform names what must run: an image present for another platform
// is not run silently (docker pulls the one asked for, or fails with 125).
func TestParityPlatformMismatchIsRefused(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	for _, args := range [][]string{
		{"run", "--rm", "--platform", "linux/arm64", fx.Busybox.Ref, "true"},
		{"run", "--rm", "--pull", "never", "--platform", "linux/arm64", fx.Busybox.Ref, "true"},
	} {
		b, err := hullProc(root, args...).CombinedOutput()
		if exitStatus(err) != 125 || !strings.Contains(string(b), "linux/amd64") || !strings.Contains(string(b), "linux/arm64") {
			t.Errorf("%v: status %d, output %s; want 125 naming both platforms", args, exitStatus(err), b)
		}
	}
	if out := mustHull(t, root, "run", "--rm", "--platform", "linux/amd64", fx.Busybox.Ref, "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Errorf("run for the image's own platform: %q", out)
	}
	// A multi-platform image is pulled for the platform asked for.
	_, mfx := testenv.Setup(t, testenv.FixMulti)
	mustHull(t, root, "pull", "-q", mfx.Multi.Ref)
	hullProc(root, "create", "--platform", "linux/arm64", mfx.Multi.Ref, "true").Run()
	if out := mustHull(t, root, "image", "inspect", "-f", "{{.Architecture}}", mfx.Multi.Ref); strings.TrimSpace(out) != "arm64" {
		t.Errorf("after create --platform linux/arm64 the image is for %q, want arm64", out)
	}
}

// images, history, image inspect and system df show sizes unpacked, as
// docker does; the stored (compressed) size is an extra field.
func TestParitySizesAreUnpacked(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	df := mustHull(t, root, "system", "df")
	m := regexp.MustCompile(`(?m)^Layers\s+\d+\s+\d+\s+(\S+)`).FindStringSubmatch(df)
	if m == nil {
		t.Fatalf("system df:\n%s", df)
	}
	unpacked := m[1]
	out := strings.Fields(mustHull(t, root, "images", "--format", "{{.Size}} {{.StoredSize}}"))
	if len(out) != 2 || out[0] != unpacked || out[1] == unpacked {
		t.Errorf("images Size/StoredSize = %v, want %s (the layers unpacked) and the smaller stored size", out, unpacked)
	}
	if !regexp.MustCompile(`(?m)^Images\s+1\s+0\s+` + regexp.QuoteMeta(unpacked) + `\s`).MatchString(df) {
		t.Errorf("system df Images row is not the unpacked %s:\n%s", unpacked, df)
	}
	if h := mustHull(t, root, "image", "history", fx.Busybox.Ref); !strings.Contains(h, " "+unpacked+" ") {
		t.Errorf("history lacks the layer's unpacked size %s:\n%s", unpacked, h)
	}
	var size, stored int64
	fmt.Sscan(mustHull(t, root, "image", "inspect", "-f", "{{.Size}} {{.StoredSize}}", fx.Busybox.Ref), &size, &stored)
	if size <= stored || stored == 0 {
		t.Errorf("image inspect Size %d, StoredSize %d: want the unpacked size above the stored one", size, stored)
	}
}
