package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --mount is docker's long form of -v and --tmpfs: binds, volumes and
// tmpfs with their options, and errors that name the bad field.
func TestRunMountFlag(t *testing.T) {
	root, fx := containerEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustHull(t, root, "run", "--rm",
		"--mount", "type=bind,source="+host+",target=/h,readonly,bind-propagation=rslave",
		"--mount", "type=volume,src=mdata,dst=/v",
		"--mount", `type=tmpfs,destination=/t,"tmpfs-size=1m",tmpfs-mode=1770`,
		fx.Busybox.Ref, "sh", "-c",
		"cat /h/f; touch /h/x 2>/dev/null || echo h-ro; echo in-vol > /v/f; grep ' /t ' /proc/mounts; stat -c %a /t")
	for _, want := range []string{"from-host\n", "h-ro\n", "tmpfs /t tmpfs", "size=1024k", "1770\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out := mustHull(t, root, "run", "--rm", "--mount", "src=mdata,dst=/v,ro", fx.Busybox.Ref, "sh", "-c", "cat /v/f; touch /v/y 2>/dev/null || echo v-ro"); out != "in-vol\nv-ro\n" {
		t.Errorf("named volume through --mount: %q", out)
	}
	// volume-nocopy leaves a new volume empty (-v would seed it).
	if out := mustHull(t, root, "run", "--rm", "--mount", "type=volume,src=nc,dst=/etc,volume-nocopy", fx.Busybox.Ref, "sh", "-c", "test -e /etc/passwd || echo empty"); out != "empty\n" {
		t.Errorf("volume-nocopy: %q", out)
	}
	for arg, want := range map[string]string{
		"type=bind,src=/no/such/dir,dst=/x":                "bind source path does not exist: /no/such/dir",
		"type=tmpfs,dst=/x,bogus=1":                        "unexpected key 'bogus' in 'bogus=1'",
		"type=tmpfs,dst=/x,nonsense":                       "invalid field 'nonsense' must be a key=value pair",
		"type=volume,dst=/x,tmpfs-size=1m":                 "cannot mix 'tmpfs-*' options with mount type 'volume'",
		"type=tmpfs,src=/x":                                "target is required",
		"type=bind,src=" + host + ",dst=/x,readonly=maybe": "invalid value for readonly: maybe",
		`type=bind,"src=` + host:                           "--mount",
	} {
		cmd := hullProc(root, "run", "--rm", "--mount", arg, fx.Busybox.Ref, "true")
		out, err := cmd.CombinedOutput()
		if code := exitStatus(err); code != 125 || !strings.Contains(string(out), want) {
			t.Errorf("--mount %s: exit %d, output %q; want 125 and %q", arg, code, out, want)
		}
	}
}

// --volumes-from mounts another container's volumes and binds at the
// same destinations, read-only with :ro.
func TestRunVolumesFrom(t *testing.T) {
	root, fx := containerEnv(t)
	host := t.TempDir()
	mustHull(t, root, "create", "--name", "data", "-v", "vfdata:/data", "-v", host+":/bind", "-v", "/anon", "--tmpfs", "/tmp2", fx.Busybox.Ref, "true")
	out := mustHull(t, root, "run", "--rm", "--volumes-from", "data", fx.Busybox.Ref, "sh", "-c",
		"echo shared > /data/f && echo b > /bind/f && echo a > /anon/f && cat /data/f /bind/f; grep -c ' /tmp2 ' /proc/mounts; true")
	if out != "shared\nb\n0\n" {
		t.Errorf("--volumes-from data: %q", out)
	}
	out = mustHull(t, root, "run", "--rm", "--volumes-from", "data:ro", fx.Busybox.Ref, "sh", "-c",
		"cat /data/f /anon/f; touch /data/g 2>/dev/null || echo ro")
	if out != "shared\na\nro\n" {
		t.Errorf("--volumes-from data:ro: %q", out)
	}
	cmd := hullProc(root, "run", "--rm", "--volumes-from", "nosuch", fx.Busybox.Ref, "true")
	if out, err := cmd.CombinedOutput(); exitStatus(err) != 125 || !strings.Contains(string(out), "nosuch") {
		t.Errorf("--volumes-from nosuch: exit %d, %q", exitStatus(err), out)
	}
	if n := strings.Count(mustHull(t, root, "ps", "-aq"), "\n"); n != 1 {
		t.Errorf("a failed --volumes-from left %d containers, want only data's", n)
	}
}

// -a attaches only the named streams of a foreground run.
func TestRunAttachStreams(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", fx.Busybox.Ref)
	for _, tc := range []struct{ stream, out, err string }{
		{"stdout", "out\n", ""}, {"STDERR", "", "err\n"},
	} {
		cmd := hullProc(root, "run", "--rm", "-a", tc.stream, fx.Busybox.Ref, "sh", "-c", "echo out; echo err >&2")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("-a %s: %v (%s)", tc.stream, err, stderr.String())
		}
		if stdout.String() != tc.out || stderr.String() != tc.err {
			t.Errorf("-a %s: stdout %q stderr %q, want %q and %q", tc.stream, stdout.String(), stderr.String(), tc.out, tc.err)
		}
	}
	for _, args := range [][]string{{"-a", "stdio"}, {"-d", "-a", "stdout"}} {
		cmd := hullProc(root, append(append([]string{"run", "--rm"}, args...), fx.Busybox.Ref, "true")...)
		out, err := cmd.CombinedOutput()
		if exitStatus(err) != 125 || !strings.Contains(string(out), "-a") {
			t.Errorf("run %v: exit %d, %q; want 125 naming -a", args, exitStatus(err), out)
		}
	}
}

// --cidfile gets the container's ID, and an existing file is refused.
func TestRunCIDFile(t *testing.T) {
	root, fx := containerEnv(t)
	file := filepath.Join(t.TempDir(), "cid")
	id := strings.TrimSpace(mustHull(t, root, "run", "-d", "--cidfile", file, fx.Busybox.Ref, "sleep", "100"))
	if data, err := os.ReadFile(file); err != nil || string(data) != id || len(id) != 64 {
		t.Fatalf("cidfile has %q (%v), want the ID %q", data, err, id)
	}
	cmd := hullProc(root, "create", "--cidfile", file, fx.Busybox.Ref, "true")
	out, err := cmd.CombinedOutput()
	if exitStatus(err) != 125 || !strings.Contains(string(out), "container ID file found") {
		t.Errorf("existing cidfile: exit %d, %q", exitStatus(err), out)
	}
	if ps := mustHull(t, root, "ps", "-aq"); strings.Count(ps, "\n") != 1 {
		t.Errorf("the refused create made a container: %q", ps)
	}
	// A creation that fails leaves no file behind.
	file2 := filepath.Join(t.TempDir(), "cid2")
	hullProc(root, "create", "--cidfile", file2, "--volumes-from", "nosuch", fx.Busybox.Ref, "true").Run()
	if _, err := os.Stat(file2); !os.IsNotExist(err) {
		t.Errorf("cidfile of a failed create: %v", err)
	}
}

// --sig-proxy=false leaves the container alone when the run is signalled.
func TestRunSigProxy(t *testing.T) {
	root, fx := containerEnv(t)
	script := `trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done`
	for _, proxy := range []bool{true, false} {
		name := fmt.Sprintf("proxy-%v", proxy)
		cmd := hullProc(root, "run", "--name", name, fmt.Sprintf("--sig-proxy=%v", proxy), fx.Busybox.Ref, "sh", "-c", script)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			t.Fatalf("%s: first line %q", name, line)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		err = cmd.Wait()
		state := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name))
		if proxy && (exitStatus(err) != 7 || state != "exited 7") {
			t.Errorf("--sig-proxy=true: run ended with %v, container %q; want the TERM forwarded (exit 7)", err, state)
		}
		if !proxy && state != "running 0" {
			t.Errorf("--sig-proxy=false: container %q after the run was signalled, want it running", state)
		}
	}
}

// --detach-keys on run and start -a: the keys detach, the container runs on.
func TestRunDetachKeys(t *testing.T) {
	root, fx := containerEnv(t)
	run := func(args ...string) {
		t.Helper()
		cmd := hullProc(root, args...)
		cmd.Stdin = strings.NewReader("\x18x")
		done := make(chan error, 1)
		go func() { out, err := cmd.CombinedOutput(); done <- fmt.Errorf("%w: %s", err, out) }()
		select {
		case err := <-done:
			if exitStatus(errors.Unwrap(err)) != 0 {
				t.Errorf("hull %v: %v", args, err)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("hull %v did not detach", args)
		}
	}
	run("run", "-i", "--name", "dk", "--detach-keys", "ctrl-x,x", fx.Busybox.Ref, "sleep", "1000")
	if st := mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "dk"); st != "running\n" {
		t.Errorf("after the detach keys: %q, want running", st)
	}
	mustHull(t, root, "create", "-i", "--name", "dk2", fx.Busybox.Ref, "sleep", "1000")
	run("start", "-ai", "--detach-keys", "ctrl-x,x", "dk2")
	if st := mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "dk2"); st != "running\n" {
		t.Errorf("start -ai after the detach keys: %q, want running", st)
	}
	cmd := hullProc(root, "run", "--rm", "--detach-keys", "ctrl-", fx.Busybox.Ref, "true")
	if out, err := cmd.CombinedOutput(); exitStatus(err) != 125 || !strings.Contains(string(out), "--detach-keys") {
		t.Errorf("bad --detach-keys: exit %d, %q", exitStatus(err), out)
	}
}

// --log-driver none keeps no log: the run's output still reaches the
// terminal, and logs says the driver cannot be read, as docker's.
func TestRunLogDriverNone(t *testing.T) {
	useShim(t)
	root, fx := containerEnv(t)
	if out := mustHull(t, root, "run", "--name", "quiet", "--log-driver", "none", fx.Busybox.Ref, "echo", "hi"); out != "hi\n" {
		t.Errorf("foreground output with --log-driver none: %q", out)
	}
	mustHull(t, root, "create", "--name", "quiet2", "--log-driver", "none", fx.Busybox.Ref, "echo", "hi")
	mustHull(t, root, "start", "-a", "quiet2")
	mustHull(t, root, "run", "-d", "--name", "quiet3", "--log-driver", "none", fx.Busybox.Ref, "sh", "-c", "sleep 0.5; echo hi")
	mustHull(t, root, "wait", "quiet3")
	for _, name := range []string{"quiet", "quiet2", "quiet3"} {
		cmd := hullProc(root, "logs", name)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "configured logging driver does not support reading") {
			t.Errorf("logs %s: %v %q", name, err, out)
		}
		if got := mustHull(t, root, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} [{{.LogPath}}]", name); got != "none []\n" {
			t.Errorf("inspect %s: %q", name, got)
		}
		logs, _ := filepath.Glob(filepath.Join(root, "containers", "*", "container.log*"))
		for _, l := range logs {
			if fi, err := os.Stat(l); err == nil && fi.Size() > 0 && !strings.HasSuffix(l, ".monitor") {
				t.Errorf("%s has %d bytes with --log-driver none", l, fi.Size())
			}
		}
	}
	if got := mustHull(t, root, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}", mustHull(t, root, "create", fx.Busybox.Ref)[:12]); got != "k8s-file\n" {
		t.Errorf("default LogConfig.Type %q, want k8s-file (hull's CRI-format log, as info says)", got)
	}
}

// --log-opt max-size and max-file rotate the container's log; logs reads
// every file kept; --details prefixes docker's (empty) attributes.
func TestRunLogOpts(t *testing.T) {
	useShim(t)
	root, fx := containerEnv(t)
	script := `i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done`
	mustHull(t, root, "run", "--name", "rot", "--log-driver", "local", "--log-opt", "max-size=2k", "--log-opt", "max-file=5", "-a", "stderr", fx.Busybox.Ref, "sh", "-c", script)
	path := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.LogPath}}", "rot"))
	files, _ := filepath.Glob(path + "*")
	var kept []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".monitor") {
			kept = append(kept, f)
		}
		if fi, err := os.Stat(f); err == nil && fi.Size() > 2048 {
			t.Errorf("%s is %d bytes, over max-size 2k", f, fi.Size())
		}
	}
	if len(kept) != 5 {
		t.Errorf("log files %v, want 5 (max-file=5)", kept)
	}
	lines := strings.Split(strings.TrimSpace(mustHull(t, root, "logs", "rot")), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "line-299-") || strings.HasPrefix(lines[0], "line-0-") || len(lines) < 4*2048/100 {
		t.Errorf("logs: %d lines, %q ... %q; want the last lines of all 5 files", len(lines), lines[0], last)
	}
	if got := mustHull(t, root, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-file\"}}", "rot"); got != "local 5\n" {
		t.Errorf("inspect LogConfig: %q", got)
	}
	// Detached, the container's output is logged by hull-shim once the
	// monitor hands it over: the same limits apply.
	mustHull(t, root, "run", "-d", "--name", "rot-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", fx.Busybox.Ref, "sh", "-c", "sleep 0.5; "+script)
	mustHull(t, root, "wait", "rot-d")
	path = strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.LogPath}}", "rot-d"))
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Errorf("detached max-file=2: %v", err)
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Errorf("detached max-file=2 kept a third file")
	}
	if out := mustHull(t, root, "logs", "--tail", "1", "rot-d"); !strings.HasPrefix(out, "line-299-") {
		t.Errorf("detached logs --tail 1: %q", out)
	}
	mustHull(t, root, "run", "--name", "det", fx.Busybox.Ref, "echo", "hello")
	if out := mustHull(t, root, "logs", "--details", "det"); out != " hello\n" {
		t.Errorf("logs --details: %q, want docker's %q", out, " hello\n")
	}
	for _, args := range [][]string{
		{"--log-driver", "syslog"}, {"--log-opt", "max-size=lots"}, {"--log-opt", "bogus=1"},
		{"--log-opt", "max-file=0"}, {"--log-driver", "none", "--log-opt", "max-size=1m"}, {"--log-opt", "compress=true"},
	} {
		cmd := hullProc(root, append(append([]string{"run", "--rm"}, args...), fx.Busybox.Ref, "true")...)
		if out, err := cmd.CombinedOutput(); exitStatus(err) != 125 || !strings.Contains(string(out), "log") {
			t.Errorf("run %v: exit %d, %q; want 125", args, exitStatus(err), out)
		}
	}
}

// hull.toml's [logging] is the default of containers without --log-driver.
func TestLoggingDefaultFromConfig(t *testing.T) {
	root, fx := containerEnv(t)
	conf := filepath.Join(t.TempDir(), "hull.toml")
	if err := os.WriteFile(conf, []byte("[logging]\ndriver = \"local\"\nopts = { max-size = \"1m\", max-file = \"2\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "local map[max-file:2 max-size:1m]"},
		{[]string{"--log-opt", "max-file=4"}, "local map[max-file:4 max-size:1m]"},
		{[]string{"--log-driver", "json-file"}, "json-file map[]"},
	} {
		args := append(append([]string{"--config", conf, "create"}, tc.args...), fx.Busybox.Ref, "true")
		out, err := hullProc(root, args...).Output()
		if err != nil {
			t.Fatalf("create %v: %v", tc.args, err)
		}
		if got := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}}", strings.TrimSpace(string(out)))); got != tc.want {
			t.Errorf("create %v under [logging]: %q, want %q", tc.args, got, tc.want)
		}
	}
}
