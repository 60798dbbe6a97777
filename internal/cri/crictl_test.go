package cri

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/testenv"
)

// defaultCrictl is where make crictl (hack/critest.sh crictl) builds it.
const defaultCrictl = "/var/tmp/hull-critools/v1.37.0/crictl"

// crictlPath is crictl as hack/critest.sh builds it (make crictl).
// $HULL_CRICTL names it; `make test` sets it, and a test that needs
// crictl then fails when it is missing. Run by hand without it, such a
// test is skipped unless crictl is in hack/critest.sh's cache.
func crictlPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("HULL_CRICTL")
	if p == "" {
		p = defaultCrictl
		if _, err := os.Stat(p); err != nil {
			t.Skipf("crictl is not built (%v): run make crictl, or set HULL_CRICTL", err)
		}
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("HULL_CRICTL: %v (make crictl builds it)", err)
	}
	return p
}

// crictl runs crictl against one CRI socket.
type crictl struct {
	t    *testing.T
	bin  string
	sock string
}

// cmd is a crictl command line on c's socket; CRI_CONFIG_FILE=/dev/null
// keeps the host's /etc/crictl.yaml out of it.
func (c crictl) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"--runtime-endpoint", "unix://" + c.sock, "--image-endpoint", "unix://" + c.sock, "--timeout", "30s"}, args...)...)
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE=/dev/null")
	return cmd
}

// run runs crictl and returns what it wrote to stdout and to stderr.
func (c crictl) run(args ...string) (stdout, stderr string, err error) {
	cmd := c.cmd(args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// must runs crictl and returns its stdout, failing the test if it fails.
func (c crictl) must(args ...string) string {
	c.t.Helper()
	o, e, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, o, e)
	}
	return o
}

// onPTY runs crictl with a pseudo-terminal as its controlling terminal
// (stdin, stdout, stderr), rows x cols big, as a user at a terminal runs
// `crictl exec -it` or `crictl attach -it`. Once crictl has put the
// terminal in raw mode (it streams from then on), input is typed; the
// output is everything the terminal showed until crictl exited.
func (c crictl) onPTY(rows, cols uint16, input string, args ...string) (string, error) {
	c.t.Helper()
	master, slave, err := testenv.OpenPTY()
	if err != nil {
		c.t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close() // at once once crictl has it; here if it never starts
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		c.t.Fatal(err)
	}
	cmd := c.cmd(args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	slave.Close()
	// The output, until crictl (the slave's last holder) exits: then
	// reading the master fails (EIO).
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(master)
		out <- string(b)
	}()
	exited, waited := make(chan error, 1), make(chan struct{})
	go func() { exited <- cmd.Wait(); close(waited) }()
	// A test that fails from here on leaves no crictl running.
	c.t.Cleanup(func() {
		select {
		case <-waited:
		default:
			cmd.Process.Kill()
			<-waited
		}
	})
	// The terminal's settings are the master's too: raw mode clears ICANON.
	deadline := time.Now().Add(30 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		if err != nil {
			c.t.Fatal(err)
		}
		if tio.Lflag&unix.ICANON == 0 {
			break
		}
		select {
		case err := <-exited:
			return <-out, fmt.Errorf("crictl %s exited before it set the terminal raw: %v", strings.Join(args, " "), err)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return <-out, fmt.Errorf("crictl %s did not set the terminal raw in 30s", strings.Join(args, " "))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := master.WriteString(input); err != nil {
		c.t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		err = fmt.Errorf("crictl %s still running after 30s: killed", strings.Join(args, " "))
		<-exited
	}
	return <-out, err
}

// writeJSON writes v as JSON to name in dir and returns its path.
func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// psRow is the line of `crictl ps -a` (or pods) for the object whose ID
// starts with id's first 13 characters (the table's truncated ID), or "".
func psRow(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, id[:13]) {
			return l
		}
	}
	return ""
}

// crictl against `hull cri serve`, a user's whole session: every
// command crictl offers (version, info, pull, images, inspecti, runp,
// pods, inspectp, create, start, ps, inspect, logs, exec and exec -it,
// attach, port-forward, stats, statsp, stop, rm, rmp, rmi), each
// checked for what it should say.
func TestCrictl(t *testing.T) {
	hull := os.Getenv("HULL_BIN")
	if hull == "" || os.Geteuid() != 0 {
		t.Skip("needs root and HULL_BIN (make build; see the Makefile's test target)")
	}
	bin := crictlPath(t)
	criBin := filepath.Join(filepath.Dir(hull), "hull-cri")
	if _, err := os.Stat(criBin); err != nil {
		t.Fatalf("no hull-cri next to HULL_BIN (%v): make build builds it", err)
	}
	_, f := testenv.Setup(t, testenv.FixBusybox)
	root := t.TempDir()
	testenv.ReleaseRoot(t, root)
	// Pods on a default network of the test's own (not the host's CNI
	// configuration).
	cfgPath := testenv.NetworkConfig(t, root)
	sock := filepath.Join(root, "cri.sock")
	cmd, exited, stderr := startServe(t, hull, criBin, root, sock, "--config", cfgPath, "--cni-conf-dir", "")
	conn := dial(t, sock)
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	t.Cleanup(func() {
		// What a failed test left, before the server stops.
		ctx := context.Background()
		pods, _ := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		for _, p := range pods.GetItems() {
			rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
		}
	})
	c := crictl{t: t, bin: bin, sock: sock}
	dir := t.TempDir()

	// The runtime and its images.
	if out := c.must("version"); !strings.Contains(out, "RuntimeName:  hull") || !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Errorf("crictl version:\n%s", out)
	}
	if out := c.must("info"); !strings.Contains(out, `"NetworkReady"`) || !strings.Contains(out, `"cgroupDriver"`) {
		t.Errorf("crictl info:\n%s", out)
	}
	if out := c.must("pull", f.Busybox.Ref); !strings.Contains(out, f.Busybox.ConfigDigest) {
		t.Errorf("crictl pull: %s; want the image ID %s", out, f.Busybox.ConfigDigest)
	}
	short := strings.TrimPrefix(f.Busybox.ConfigDigest, "sha256:")[:13]
	if out := c.must("images"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f.Busybox.Repo) + ` +1\.0 +` + short).MatchString(out) {
		t.Errorf("crictl images:\n%s\nwant %s 1.0 %s", out, f.Busybox.Repo, short)
	}
	if out := c.must("images", "-q"); strings.TrimSpace(out) != f.Busybox.ConfigDigest {
		t.Errorf("crictl images -q: %q; want %s", out, f.Busybox.ConfigDigest)
	}
	if out := c.must("inspecti", f.Busybox.Ref); !strings.Contains(out, `"id": "`+f.Busybox.ConfigDigest+`"`) || !strings.Contains(out, `"info"`) {
		t.Errorf("crictl inspecti:\n%s", out)
	}
	if out := c.must("imagefsinfo"); !strings.Contains(out, `"mountpoint": "`+root+`"`) {
		t.Errorf("crictl imagefsinfo:\n%s", out)
	}

	// A pod.
	podJSON := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "crictl-pod", "namespace": "crictl-ns", "uid": "crictl-uid", "attempt": 1},
		"hostname":      "crictl-pod",
		"log_directory": filepath.Join(dir, "logs"),
		"linux":         map[string]any{},
	})
	pod := strings.TrimSpace(c.must("runp", podJSON))
	if out := c.must("pods"); !regexp.MustCompile(`(?m)^` + pod[:13] + ` .* Ready +crictl-pod +crictl-ns +1 `).MatchString(out) {
		t.Errorf("crictl pods:\n%s\nwant %s Ready crictl-pod crictl-ns 1", out, pod[:13])
	}
	if out := c.must("pods", "-q"); strings.TrimSpace(out) != pod {
		t.Errorf("crictl pods -q: %q; want %s", out, pod)
	}
	var podIP string
	if out := c.must("inspectp", pod); !strings.Contains(out, `"state": "SANDBOX_READY"`) || !strings.Contains(out, `"name": "crictl-pod"`) {
		t.Errorf("crictl inspectp:\n%s\nwant the ready pod crictl-pod", out)
	} else if m := regexp.MustCompile(`"ip": "(10\.[0-9.]+)"`).FindStringSubmatch(out); m == nil {
		t.Errorf("crictl inspectp:\n%s\nwant the pod's IP", out)
	} else {
		podIP = m[1]
	}

	// Its containers: a web server that says something on stdout and
	// stderr first, and a shell on a terminal to attach to.
	webJSON := writeJSON(t, dir, "web.json", map[string]any{
		"metadata": map[string]any{"name": "web"},
		"image":    map[string]any{"image": f.Busybox.Ref},
		"command": []string{"sh", "-c", "echo hello from web; echo oops from web >&2; mkdir /www; echo page from the pod >/www/index.html; " +
			"exec busybox httpd -f -p 8080 -h /www"},
		"log_path": "web.log",
		"linux":    map[string]any{},
	})
	consoleJSON := writeJSON(t, dir, "console.json", map[string]any{
		"metadata": map[string]any{"name": "console"},
		"image":    map[string]any{"image": f.Busybox.Ref},
		"command":  []string{"sh"},
		"stdin":    true, "tty": true,
		"log_path": "console.log",
		"linux":    map[string]any{},
	})
	web := strings.TrimSpace(c.must("create", pod, webJSON, podJSON))
	console := strings.TrimSpace(c.must("create", pod, consoleJSON, podJSON))
	if row := psRow(c.must("ps", "-a"), web); !regexp.MustCompile(` Created +web +0 +` + pod[:13] + ` `).MatchString(row) {
		t.Errorf("crictl ps -a after create: %q; want web Created in %s", row, pod[:13])
	}
	if out := c.must("start", web, console); len(strings.Fields(out)) == 0 || strings.Fields(out)[0] != web || !strings.Contains(out, console) {
		t.Errorf("crictl start: %q; want both IDs", out)
	}
	out := c.must("ps")
	for _, id := range []string{web, console} {
		if row := psRow(out, id); !strings.Contains(row, " Running ") {
			t.Errorf("crictl ps: %q; want %s Running in\n%s", row, id, out)
		}
	}
	if out := c.must("ps", "-q", "--name", "web"); strings.TrimSpace(out) != web {
		t.Errorf("crictl ps -q --name web: %q; want %s", out, web)
	}
	out = c.must("inspect", web)
	if !strings.Contains(out, `"state": "CONTAINER_RUNNING"`) || !strings.Contains(out, `"id": "`+web+`"`) ||
		!strings.Contains(out, `"imageId": "`+f.Busybox.ConfigDigest+`"`) || !strings.Contains(out, `"sandboxID": "`+pod+`"`) {
		t.Errorf("crictl inspect:\n%s\nwant web running, its image and its pod", out)
	}
	// (info.pid, as containerd and CRI-O say it: web's shell, exec'd into httpd)
	if m := regexp.MustCompile(`"pid": ([0-9]+)`).FindStringSubmatch(out); m == nil {
		t.Errorf("crictl inspect:\n%s\nwant info.pid", out)
	} else if cmdline, err := os.ReadFile("/proc/" + m[1] + "/cmdline"); err != nil || !strings.Contains(string(cmdline), "httpd") {
		t.Errorf("crictl inspect's pid %s: %q, %v; want web's httpd", m[1], cmdline, err)
	}

	// port-forward: the pod's port 8080 on a local port crictl picks.
	pf := c.cmd("port-forward", pod, "0:8080")
	pfOut, err := pf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pf.Stderr = pf.Stdout
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	pfDone := make(chan struct{})
	forwarding := make(chan string, 1)
	go func() {
		defer close(pfDone)
		sc := bufio.NewScanner(pfOut)
		for sc.Scan() {
			if m := regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:[0-9]+) -> 8080`).FindStringSubmatch(sc.Text()); m != nil {
				forwarding <- m[1]
			}
		}
		pf.Wait()
	}()
	select {
	case addr := <-forwarding:
		// httpd listens within moments of the start.
		var body string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r, err := http.Get("http://" + addr + "/")
			if err == nil {
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				body = string(b)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("GET through crictl port-forward: %v", err)
				break
			}
		}
		if body != "page from the pod\n" {
			t.Errorf("GET through crictl port-forward = %q; want the pod's page", body)
		}
	case <-pfDone:
		t.Errorf("crictl port-forward exited: %v", pf.ProcessState)
	case <-time.After(30 * time.Second):
		t.Errorf("crictl port-forward says no Forwarding line in 30s")
	}
	pf.Process.Kill()
	<-pfDone

	// logs: what web wrote, each stream to its own.
	o, e, err := c.run("logs", web)
	if err != nil || o != "hello from web\n" || e != "oops from web\n" {
		t.Errorf("crictl logs web: %v\nstdout %q\nstderr %q\nwant web's two lines", err, o, e)
	}

	// exec, without and with a terminal.
	if out := c.must("exec", web, "cat", "/www/index.html"); out != "page from the pod\n" {
		t.Errorf("crictl exec cat: %q", out)
	}
	if o, e, err := c.run("exec", web, "sh", "-c", "exit 3"); err == nil || !strings.Contains(o+e, "command terminated with exit code 3") {
		t.Errorf("crictl exec 'exit 3': %v %q; want it to say the exit code", err, o+e)
	}
	if out := c.must("exec", web, "ip", "-4", "addr", "show", "eth0"); podIP == "" || !strings.Contains(out, "inet "+podIP+"/") {
		t.Errorf("crictl exec ip addr:\n%s\nwant the address inspectp showed (%q)", out, podIP)
	}
	// (typed text comes back echoed: each check is for what the shell
	// makes of it, not for the text itself)
	if out, err := c.onPTY(33, 97, "tty; busybox stty size; echo typed-$((6*7)); exit 7\r", "exec", "-it", web, "sh"); err == nil ||
		!strings.Contains(out, "\n/dev/pts/0\r\n33 97\r\ntyped-42\r\n") || !strings.Contains(out, "command terminated with exit code 7") {
		t.Errorf("crictl exec -it sh: %v\n%q\nwant a 33x97 terminal, the typed commands' output and exit status 7", err, out)
	}

	// attach: to console's shell on its terminal; exit ends it.
	if out, err := c.onPTY(24, 80, "echo attached-$((6*7)); exit\r", "attach", "-it", console); err != nil || !strings.Contains(out, "attached-42") {
		t.Errorf("crictl attach -it: %v\n%q\nwant the shell's answer", err, out)
	}

	// stats: the running container (web; console is gone) and the pod.
	if out := c.must("stats"); !regexp.MustCompile(`(?m)^` + web[:13] + ` +web +[0-9.]+ +[0-9.]+[kMG]?B `).MatchString(out) {
		t.Errorf("crictl stats:\n%s\nwant a row for web with its CPU and memory", out)
	}
	if out := c.must("statsp"); !regexp.MustCompile(`(?m)^crictl-pod +` + pod[:13] + ` +[0-9.]+ +[0-9.]+[kMG]?B`).MatchString(out) {
		t.Errorf("crictl statsp:\n%s\nwant a row for crictl-pod with its CPU and memory", out)
	}

	// stop and rm change what ps shows.
	if out := c.must("stop", web); strings.TrimSpace(out) != web {
		t.Errorf("crictl stop: %q", out)
	}
	if out := c.must("ps", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl ps -q after stop: %q; want nothing running", out)
	}
	out = c.must("ps", "-a")
	for _, id := range []string{web, console} {
		if row := psRow(out, id); !strings.Contains(row, " Exited ") {
			t.Errorf("crictl ps -a: %q; want %s Exited in\n%s", row, id, out)
		}
	}
	if out := c.must("inspect", web); !strings.Contains(out, `"state": "CONTAINER_EXITED"`) || !regexp.MustCompile(`"finishedAt": "[0-9]{4}-`).MatchString(out) {
		t.Errorf("crictl inspect after stop:\n%s\nwant web exited, with its end", out)
	}
	if out := c.must("rm", web); strings.TrimSpace(out) != web {
		t.Errorf("crictl rm: %q", out)
	}
	if out := c.must("ps", "-a", "-q"); strings.TrimSpace(out) != console {
		t.Errorf("crictl ps -a -q after rm: %q; want only %s", out, console)
	}

	// rmp takes the pod and its last container; rmi the image.
	if out := c.must("rmp", "-f", pod); !strings.Contains(out, pod) {
		t.Errorf("crictl rmp -f: %q", out)
	}
	if out := c.must("pods", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl pods -q after rmp: %q", out)
	}
	if out := c.must("ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl ps -a -q after rmp: %q", out)
	}
	c.must("rmi", f.Busybox.Ref)
	if out := c.must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl images -q after rmi: %q", out)
	}
	stopServe(t, cmd, exited, stderr)
}
