package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/testenv"
)

// hullStdin is hull() with the given stdin.
func hullStdin(t *testing.T, root string, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetIn(stdin)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"--root", root, "--run-root", filepath.Join(root, "run"), "--config", testenv.NetworkConfig(t, root)}, args...))
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// runDetached starts a sleeping busybox container and returns its name.
func runDetached(t *testing.T, root, ref, name string, extra ...string) string {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, extra...)
	mustHull(t, root, append(args, ref, "sleep", "1000")...)
	return name
}

func TestExecStatusStdioUserAndEnv(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "ex")

	out, errOut, err := hull(t, root, "exec", c, "sh", "-c", "echo out; echo err >&2; exit 3")
	if exitStatus(err) != 3 || out != "out\n" || errOut != "err\n" {
		t.Errorf("exec: status %d, stdout %q, stderr %q (%v)", exitStatus(err), out, errOut, err)
	}
	// It joins the container's namespaces: its pid 1 is the container's.
	if out := mustHull(t, root, "exec", c, "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "sleep\x001000") {
		t.Errorf("exec sees pid 1 as %q", out)
	}
	// -u names are resolved in the container's /etc/passwd; -w, -e.
	out = mustHull(t, root, "exec", "-u", "app", "-w", "/tmp", "-e", "FOO=bar", c, "sh", "-c", "id -u; id -g; pwd; echo $FOO")
	if out != "1000\n1000\n/tmp\nbar\n" {
		t.Errorf("exec -u app -w /tmp -e FOO=bar: %q", out)
	}
	if _, _, err := hull(t, root, "exec", "-w", "relative", c, "true"); exitStatus(err) != 125 || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("exec -w relative: %v", err)
	}
	if _, _, err := hull(t, root, "exec", "-u", "nosuchuser", c, "true"); err == nil || !strings.Contains(err.Error(), "nosuchuser") {
		t.Errorf("exec -u nosuchuser: %v", err)
	}
	// -i passes stdin; without -i the process reads nothing.
	out, _, err = hullStdin(t, root, strings.NewReader("from-stdin\n"), "exec", "-i", c, "cat")
	if err != nil || out != "from-stdin\n" {
		t.Errorf("exec -i cat: %q (%v)", out, err)
	}
	out, _, err = hullStdin(t, root, strings.NewReader("from-stdin\n"), "exec", c, "cat")
	if err != nil || out != "" {
		t.Errorf("exec cat without -i: %q (%v)", out, err)
	}
	// docker's statuses: 127 not found, 126 not executable.
	if _, _, err := hull(t, root, "exec", c, "no-such-command"); exitStatus(err) != 127 {
		t.Errorf("missing command: status %d (%v), want 127", exitStatus(err), err)
	}
	if _, _, err := hull(t, root, "exec", c, "/etc/passwd"); exitStatus(err) != 126 {
		t.Errorf("non-executable command: status %d (%v), want 126", exitStatus(err), err)
	}
	// -d returns at once; the process runs on in the container.
	mustHull(t, root, "exec", "-d", c, "sh", "-c", "echo done > /tmp/detached")
	waitFor(t, func() bool {
		out, _, _ := hull(t, root, "exec", c, "cat", "/tmp/detached")
		return out == "done\n"
	})
	// A stopped container refuses, with docker's status 1.
	mustHull(t, root, "stop", "-t", "0", c)
	if _, _, err := hull(t, root, "exec", c, "true"); exitStatus(err) != 1 || !strings.Contains(err.Error(), "not running") {
		t.Errorf("exec in a stopped container: %v", err)
	}
}

func TestExecTTY(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "tty")
	out := mustHull(t, root, "exec", "-t", c, "sh", "-c", "test -t 0 && test -t 1 && echo $TERM && readlink /proc/self/fd/1")
	if !strings.HasPrefix(out, "xterm\r\n/dev/pts/") || !strings.HasSuffix(out, "\r\n") {
		t.Errorf("exec -t: %q, want a pts path ending in the terminal's CRLF", out)
	}
	// -it: a shell reads commands from the terminal and exits with their status.
	out, _, err := hullStdin(t, root, strings.NewReader("echo $((6*7))\nexit 5\n"), "exec", "-it", c, "sh")
	if exitStatus(err) != 5 || !strings.Contains(out, "42") {
		t.Errorf("exec -it sh: status %d, output %q", exitStatus(err), out)
	}
	// On a terminal, the process's is of its size from the start.
	master, slave, err := testenv.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 19, Col: 71}); err != nil {
		t.Fatal(err)
	}
	if out, _, err := hullStdin(t, root, slave, "exec", "-t", c, "busybox", "stty", "size"); err != nil || out != "19 71\r\n" {
		t.Errorf("exec -t stty size on a 19x71 terminal: %v, %q", err, out)
	}
}

func TestCpBothDirections(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "cp")
	host := t.TempDir()

	// Container to host: a file under a new name, into a directory, a
	// directory, a directory's contents, and a tar stream.
	mustHull(t, root, "cp", c+":/etc/passwd", filepath.Join(host, "pw"))
	if b, _ := os.ReadFile(filepath.Join(host, "pw")); !strings.Contains(string(b), "app:x:1000") {
		t.Errorf("copied passwd: %q", b)
	}
	mustHull(t, root, "cp", c+":/etc/passwd", host)
	if _, err := os.Stat(filepath.Join(host, "passwd")); err != nil {
		t.Error(err)
	}
	mustHull(t, root, "cp", c+":/etc", filepath.Join(host, "etc-copy"))
	if _, err := os.Stat(filepath.Join(host, "etc-copy", "group")); err != nil {
		t.Error(err)
	}
	into := filepath.Join(host, "into")
	os.Mkdir(into, 0o755)
	mustHull(t, root, "cp", c+":/etc", into)
	mustHull(t, root, "cp", c+":/etc/.", host)
	for _, p := range []string{"into/etc/passwd", "group"} {
		if _, err := os.Stat(filepath.Join(host, p)); err != nil {
			t.Error(err)
		}
	}
	out := mustHull(t, root, "cp", c+":/etc/passwd", "-")
	tr := tar.NewReader(strings.NewReader(out))
	if h, err := tr.Next(); err != nil || h.Name != "passwd" || h.Mode&0o777 != 0o644 {
		t.Errorf("cp to -: first entry %+v (%v)", h, err)
	}
	// Owners: the copier's by default, the archive's with -a (in both directions).
	mustHull(t, root, "cp", c+":/home/app", filepath.Join(host, "app-mine"))
	mustHull(t, root, "cp", "-a", c+":/home/app", filepath.Join(host, "app-kept"))
	for dir, uid := range map[string]uint32{"app-mine": 0, "app-kept": 1000} {
		if fi, err := os.Stat(filepath.Join(host, dir)); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uid {
			t.Errorf("%s: %v, want uid %d", dir, err, uid)
		}
	}
	mustHull(t, root, "cp", "-a", filepath.Join(host, "app-kept"), c+":/tmp/app-back")
	if out := mustHull(t, root, "exec", c, "stat", "-c", "%u:%g", "/tmp/app-back"); out != "1000:1000\n" {
		t.Errorf("cp -a into the container: owner %q", out)
	}
	if _, _, err := hull(t, root, "cp", c+":/no/such", host); err == nil || !strings.Contains(err.Error(), "could not find") {
		t.Errorf("cp of a missing file: %v", err)
	}

	// Host to container: a file, a directory, and a tar stream.
	os.WriteFile(filepath.Join(host, "f"), []byte("hello\n"), 0o640)
	os.MkdirAll(filepath.Join(host, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(host, "tree", "sub", "x"), []byte("x\n"), 0o600)
	os.Symlink("sub/x", filepath.Join(host, "tree", "link"))
	mustHull(t, root, "cp", filepath.Join(host, "f"), c+":/tmp/renamed")
	mustHull(t, root, "cp", filepath.Join(host, "tree"), c+":/tmp")
	out = mustHull(t, root, "exec", c, "sh", "-c", "cat /tmp/renamed /tmp/tree/link; stat -c %a /tmp/renamed /tmp/tree/sub/x; readlink /tmp/tree/link")
	if out != "hello\nx\n640\n600\nsub/x\n" {
		t.Errorf("after cp into the container: %q", out)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "streamed", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("tar"))
	tw.Close()
	if _, errOut, err := hullStdin(t, root, &buf, "cp", "-", c+":/tmp"); err != nil {
		t.Fatalf("cp - : %v %s", err, errOut)
	}
	if out := mustHull(t, root, "exec", c, "cat", "/tmp/streamed"); out != "tar" {
		t.Errorf("streamed file: %q", out)
	}
	// docker's cp also takes a compressed stream.
	buf.Reset()
	zw := gzip.NewWriter(&buf)
	tw = tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zipped", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("gz"))
	tw.Close()
	zw.Close()
	if _, errOut, err := hullStdin(t, root, &buf, "cp", "-", c+":/tmp"); err != nil {
		t.Fatalf("cp - of a gzip stream: %v %s", err, errOut)
	}
	if out := mustHull(t, root, "exec", c, "cat", "/tmp/zipped"); out != "gz" {
		t.Errorf("file from a gzip stream: %q", out)
	}
	if _, _, err := hull(t, root, "cp", filepath.Join(host, "tree"), c+":/etc/passwd"); err == nil || !strings.Contains(err.Error(), "directory to a file") {
		t.Errorf("cp of a directory onto a file: %v", err)
	}
}

// Symlinks planted in the container resolve inside it: cp can neither
// read nor write the host's files through them, in either direction.
func TestCpSymlinksCannotEscape(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "evil")
	hostDir := t.TempDir()
	secret := filepath.Join(hostDir, "secret")
	os.WriteFile(secret, []byte("host secret\n"), 0o600)
	mustHull(t, root, "exec", c, "sh", "-c", "ln -s "+hostDir+" /evil-abs && ln -s ../../../../../../../.."+hostDir+" /evil-rel && ln -s "+secret+" /evil-file && ln -s / /tmp/up")

	out := t.TempDir()
	for _, src := range []string{"/evil-abs/secret", "/evil-rel/secret", "/tmp/up/" + secret, "/evil-abs/../../../../" + secret} {
		_, _, err := hull(t, root, "cp", c+":"+src, filepath.Join(out, "got"))
		if b, rerr := os.ReadFile(filepath.Join(out, "got")); rerr == nil && strings.Contains(string(b), "host secret") {
			t.Errorf("cp %s read the host's file", src)
		}
		if err == nil {
			t.Errorf("cp %s: no error for a file that is not in the container", src)
		}
	}
	// -L on a link to a host path follows it inside the container only.
	if _, _, err := hull(t, root, "cp", "-L", c+":/evil-file", filepath.Join(out, "followed")); err == nil {
		t.Error("cp -L through a link to a host path succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(out, "followed")); err == nil && strings.Contains(string(b), "host secret") {
		t.Error("cp -L read the host's file")
	}
	// The link itself copies as a link.
	mustHull(t, root, "cp", c+":/evil-file", filepath.Join(out, "asis"))
	if l, err := os.Readlink(filepath.Join(out, "asis")); err != nil || l != secret {
		t.Errorf("copied link: %q %v", l, err)
	}

	// Writing through the links lands in the container, never on the host.
	payload := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(payload, []byte("pwned\n"), 0o644)
	mustHull(t, root, "exec", c, "mkdir", "-p", hostDir)
	for _, dst := range []string{"/evil-abs/", "/evil-rel/written", "/tmp/up/" + hostDir + "/x", "/evil-file"} {
		hull(t, root, "cp", payload, c+":"+dst)
	}
	ents, _ := os.ReadDir(hostDir)
	if len(ents) != 1 {
		t.Errorf("the host directory changed: %v", ents)
	}
	if b, _ := os.ReadFile(secret); string(b) != "host secret\n" {
		t.Errorf("the host's file was overwritten: %q", b)
	}
	got := mustHull(t, root, "exec", c, "ls", hostDir)
	if !strings.Contains(got, "payload") || !strings.Contains(got, "written") || !strings.Contains(got, "x") {
		t.Errorf("the copies did not land in the container's %s: %q", hostDir, got)
	}
	// An archive entry that climbs out, or goes through a link it made, is refused.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: hostDir})
	tw.WriteHeader(&tar.Header{Name: "l/through-link", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("!"))
	tw.Close()
	hullStdin(t, root, &buf, "cp", "-", c+":/tmp")
	if ents, _ := os.ReadDir(hostDir); len(ents) != 1 {
		t.Errorf("a tar stream wrote through its own link to the host: %v", ents)
	}
}

func TestVolumesNamedAnonymousAndInUse(t *testing.T) {
	root, fx := containerEnv(t)
	if out := mustHull(t, root, "volume", "create", "--label", "team=a", "data"); out != "data\n" {
		t.Fatalf("volume create: %q", out)
	}
	// An empty volume is seeded with what the image has at the mount point.
	out := mustHull(t, root, "run", "--rm", "-v", "data:/etc", fx.Busybox.Ref, "sh", "-c", "cat /etc/group >/dev/null && echo kept > /etc/written")
	if out != "" {
		t.Errorf("run output %q", out)
	}
	mount := filepath.Join(root, "volumes", "data", "_data")
	for _, f := range []string{"passwd", "group", "written"} {
		if _, err := os.Stat(filepath.Join(mount, f)); err != nil {
			t.Errorf("volume lacks %s: %v", f, err)
		}
	}
	// The data outlives the container; a second container sees it.
	if out := mustHull(t, root, "run", "--rm", "-v", "data:/d:ro", fx.Busybox.Ref, "cat", "/d/written"); out != "kept\n" {
		t.Errorf("second container reads %q", out)
	}
	var docs []map[string]any
	if err := json.Unmarshal([]byte(mustHull(t, root, "volume", "inspect", "data")), &docs); err != nil || len(docs) != 1 ||
		docs[0]["Mountpoint"] != mount || docs[0]["Driver"] != "local" || docs[0]["Name"] != "data" {
		t.Errorf("volume inspect: %v %v", docs, err)
	}
	if out := mustHull(t, root, "volume", "ls", "-q", "--filter", "label=team=a"); out != "data\n" {
		t.Errorf("volume ls --filter label: %q", out)
	}
	if _, _, err := hull(t, root, "volume", "inspect", "nosuch"); err == nil || !strings.Contains(err.Error(), "no such volume") {
		t.Errorf("inspect of a missing volume: %v", err)
	}

	// A volume in use is refused unless -f; anonymous volumes go with rm -v.
	mustHull(t, root, "run", "-d", "--name", "user", "-v", "data:/data", "-v", "/scratch", fx.Busybox.Ref, "sleep", "1000")
	_, _, err := hull(t, root, "volume", "rm", "data")
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("volume rm of a volume in use: %v", err)
	}
	all := strings.Fields(mustHull(t, root, "volume", "ls", "-q"))
	if len(all) != 2 {
		t.Fatalf("volumes: %v, want data and one anonymous", all)
	}
	if out := mustHull(t, root, "volume", "ls", "-q", "--filter", "dangling=true"); out != "" {
		t.Errorf("dangling volumes while used: %q", out)
	}
	mustHull(t, root, "rm", "-f", "-v", "user")
	if out := mustHull(t, root, "volume", "ls", "-q"); out != "data\n" {
		t.Errorf("after rm -v: %q, want only the named volume", out)
	}
	mustHull(t, root, "run", "-d", "--name", "user2", "-v", "data:/data", fx.Busybox.Ref, "sleep", "1000")
	if out := mustHull(t, root, "volume", "rm", "-f", "data"); out != "data\n" {
		t.Errorf("volume rm -f: %q", out)
	}
	if _, err := os.Stat(mount); !os.IsNotExist(err) {
		t.Errorf("volume data left: %v", err)
	}

	// --rm takes the container's anonymous volumes with it.
	mustHull(t, root, "run", "--rm", "-v", "/gone", fx.Busybox.Ref, "touch", "/gone/x")
	waitFor(t, func() bool { // the monitor removes it (volume ls would sweep too)
		ents, err := os.ReadDir(filepath.Join(root, "volumes"))
		return err == nil && len(ents) == 0
	})

	// prune: anonymous unused ones by default, all unused ones with -a.
	mustHull(t, root, "volume", "create", "keepme")
	mustHull(t, root, "run", "--name", "anon", "-v", "/scratch", fx.Busybox.Ref, "true")
	mustHull(t, root, "rm", "anon")
	out = mustHull(t, root, "volume", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Volumes:\n") || strings.Contains(out, "keepme") || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("volume prune: %q", out)
	}
	out = mustHull(t, root, "volume", "prune", "-a", "-f")
	if !strings.Contains(out, "keepme") {
		t.Errorf("volume prune -a: %q", out)
	}
	if out := mustHull(t, root, "volume", "ls", "-q"); out != "" {
		t.Errorf("volumes after prune -a: %q", out)
	}
}

func TestContainerPrune(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "--name", "done1", fx.Busybox.Ref, "true")
	mustHull(t, root, "run", "--name", "done2", "--label", "keep=yes", fx.Busybox.Ref, "true")
	mustHull(t, root, "create", "--name", "fresh", fx.Busybox.Ref, "true")
	runDetached(t, root, fx.Busybox.Ref, "alive")
	ids := map[string]string{}
	for _, n := range []string{"done1", "done2", "fresh", "alive"} {
		ids[n] = strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.ID}}", n))
	}
	// Without -f it asks, on stdout as docker; "n" keeps everything.
	out, _, err := hullStdin(t, root, strings.NewReader("n\n"), "container", "prune")
	if err != nil || out != "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] " {
		t.Errorf("prune answered no: %q %v", out, err)
	}
	out = mustHull(t, root, "container", "prune", "-f", "--filter", "label!=keep=yes")
	if !strings.HasPrefix(out, "Deleted Containers:\n") || !strings.Contains(out, ids["done1"]) || !strings.Contains(out, ids["fresh"]) ||
		strings.Contains(out, ids["done2"]) || strings.Contains(out, ids["alive"]) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("container prune --filter label!=keep=yes:\n%s", out)
	}
	if out := mustHull(t, root, "container", "prune", "-f", "--filter", "until=1h"); strings.Contains(out, "Deleted") {
		t.Errorf("until=1h pruned a container made just now:\n%s", out)
	}
	out, _, err = hullStdin(t, root, strings.NewReader("y\n"), "container", "prune")
	if err != nil || !strings.Contains(out, ids["done2"]) {
		t.Errorf("prune answered yes: %q %v", out, err)
	}
	if out := mustHull(t, root, "ps", "-aq"); strings.TrimSpace(out) != ids["alive"][:12] {
		t.Errorf("after prune: %q, want only the running container", out)
	}
}

// extraProc runs hull as its own process (the test binary acting as the
// CLI), for commands that run until stopped.
func extraProc(root string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--root", root, "--run-root", filepath.Join(root, "run")}, append(testenv.ConfigArgs(root), args...)...)...)
	cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func TestEventsPastFilteredAndLive(t *testing.T) {
	root, fx := containerEnv(t)
	start := time.Now()
	mustHull(t, root, "run", "--name", "ev1", fx.Busybox.Ref, "true")
	mustHull(t, root, "volume", "create", "evvol")
	id := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.ID}}", "ev1"))
	until := time.Now().Add(time.Millisecond).Format(time.RFC3339Nano)
	since := start.Format(time.RFC3339Nano)

	out := mustHull(t, root, "events", "--since", since, "--until", until, "--filter", "container=ev1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var actions []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 || f[1] != "container" || f[3] != id || !strings.HasSuffix(f[0], "Z") {
			t.Fatalf("event line %q, want TIME container ACTION %s (...)", l, id)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("event time: %v", err)
		}
		actions = append(actions, f[2])
	}
	if strings.Join(actions, " ") != "create start die" || !strings.HasSuffix(lines[1], "(image="+fx.Busybox.Ref+", name=ev1)") {
		t.Errorf("events of ev1:\n%s", out)
	}
	out = mustHull(t, root, "events", "--since", since, "--until", until, "--filter", "event=die", "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")
	if out != "ev1 0\n" {
		t.Errorf("events --filter event=die --format: %q", out)
	}
	out = mustHull(t, root, "events", "--since", since, "--until", until, "--filter", "type=volume", "--format", "json")
	var msg map[string]any
	if err := json.Unmarshal([]byte(out), &msg); err != nil || msg["Type"] != "volume" || msg["Action"] != "create" {
		t.Errorf("volume events as json: %q (%v)", out, err)
	}
	if _, _, err := hull(t, root, "events", "--filter", "colour=red"); err == nil {
		t.Error("an unknown filter was accepted")
	}
	// A container using a volume mounts it when it starts and unmounts
	// it when it stops, as docker reports.
	mustHull(t, root, "run", "--name", "ev3", "-v", "evvol:/data", fx.Busybox.Ref, "true")
	until = time.Now().Add(time.Millisecond).Format(time.RFC3339Nano)
	out = mustHull(t, root, "events", "--since", since, "--until", until, "--filter", "volume=evvol", "--format", "{{.Action}}")
	if out != "create\nmount\nunmount\n" {
		t.Errorf("events of volume evvol:\n%s", out)
	}
	if out := mustHull(t, root, "events", "--since", since, "--until", until, "--filter", "volume=evvol", "--filter", "event=mount"); !strings.Contains(out, "destination=/data") || !strings.Contains(out, "read/write=true") {
		t.Errorf("volume mount event: %s", out)
	}

	// Live: events appear while they happen.
	mustHull(t, root, "create", "--name", "ev2", fx.Busybox.Ref, "sleep", "1000")
	cmd := extraProc(root, "events", "--filter", "container=ev2")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lineCh := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lineCh <- sc.Text()
		}
		close(lineCh)
	}()
	// The follower starts from the newest event: wait until it is
	// listening, by repeating a harmless event (a rename to the same
	// name) until it shows.
	seen := map[string]bool{}
	for !seen["rename"] {
		select {
		case l, ok := <-lineCh:
			if !ok {
				t.Fatal("events exited")
			}
			seen[strings.Fields(l)[2]] = true
		case <-time.After(50 * time.Millisecond):
			mustHull(t, root, "rename", "ev2", "ev2")
		}
	}
	mustHull(t, root, "start", "ev2")
	mustHull(t, root, "kill", "ev2")
	// kill is recorded by the kill command, die by the monitor: either
	// may come first.
	for !seen["die"] || !seen["kill"] {
		select {
		case l, ok := <-lineCh:
			if !ok {
				t.Fatalf("events exited before die and kill; saw %v", seen)
			}
			seen[strings.Fields(l)[2]] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("live events: %v", seen)
		}
	}
	if !seen["start"] {
		t.Errorf("live events: %v", seen)
	}
}

func TestTopAndStats(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "busy", "-m", "64m")
	mustHull(t, root, "exec", "-d", c, "sh", "-c", "while :; do :; done")
	var lines []string
	waitFor(t, func() bool {
		lines = strings.Split(strings.TrimSpace(mustHull(t, root, "top", c)), "\n")
		return len(lines) == 3
	})
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "UID PID PPID C STIME TTY TIME CMD" {
		t.Errorf("top header: %q", lines[0])
	}
	// Rows come in host pid order, which a pid wrap-around can turn.
	init, loop := lines[1], lines[2]
	if strings.HasSuffix(init, "done") {
		init, loop = loop, init
	}
	if f := strings.Fields(init); len(f) < 9 || f[0] != "root" || f[5] != "?" || strings.Join(f[7:], " ") != "sleep 1000" {
		t.Errorf("top row of pid 1: %q", init)
	}
	if !strings.HasSuffix(loop, "sh -c while :; do :; done") {
		t.Errorf("top row of the exec'd loop: %q", loop)
	}
	// ps options go to the host's ps; only the container's rows are kept.
	out := mustHull(t, root, "top", c, "-o", "pid,comm")
	if rows := strings.Split(strings.TrimSpace(out), "\n"); len(rows) != 3 || strings.Fields(rows[0])[1] != "COMMAND" ||
		!strings.HasSuffix(rows[1], "sleep") && !strings.HasSuffix(rows[2], "sleep") {
		t.Errorf("top -o pid,comm:\n%s", out)
	}

	out = mustHull(t, root, "stats", "--no-stream", c)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	for _, col := range []string{"CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"} {
		if !strings.Contains(rows[0], col) {
			t.Errorf("stats header lacks %q: %q", col, rows[0])
		}
	}
	out = mustHull(t, root, "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}|{{.BlockIO}}", c)
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 6 || f[0] != "busy" || f[4] != "2" || !strings.HasSuffix(f[2], " / 64MiB") {
		t.Fatalf("stats --format: %q", out)
	}
	// Read / written, in docker's decimal units (this host's v1 blkio
	// counts only throttled cgroups, so the values may be 0B).
	if ok, _ := regexp.MatchString(`^[0-9.]+[kMGT]?B / [0-9.]+[kMGT]?B$`, f[5]); !ok {
		t.Errorf("BLOCK I/O %q", f[5])
	}
	// A busy loop shows as CPU use; the exact share depends on the host.
	var cpu float64
	fmt.Sscanf(f[1], "%f%%", &cpu)
	if cpu <= 0 {
		t.Errorf("CPU %% of a busy loop: %s", f[1])
	}
	var memPct float64
	if _, err := fmt.Sscanf(f[3], "%f%%", &memPct); err != nil || memPct <= 0 || memPct >= 100 {
		t.Errorf("MEM %%: %s", f[3])
	}
	// Without names: the running containers; a stopped one only with -a.
	mustHull(t, root, "run", "--name", "stopped", fx.Busybox.Ref, "true")
	if out := mustHull(t, root, "stats", "--no-stream", "--format", "{{.Name}}"); out != "busy\n" {
		t.Errorf("stats: %q", out)
	}
	if out := mustHull(t, root, "stats", "-a", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"); !strings.Contains(out, "stopped 0\n") {
		t.Errorf("stats -a: %q", out)
	}
	mustHull(t, root, "stop", "-t", "0", c)
	if _, _, err := hull(t, root, "top", c); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("top of a stopped container: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// attachAsync runs `hull attach ARGS` in the background with stdin from
// the returned pipe.
func attachAsync(t *testing.T, root string, args ...string) (*io.PipeWriter, *lockedBuffer, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetIn(inR)
		cmd.SetOut(out)
		cmd.SetErr(out)
		cmd.SetArgs(append([]string{"--root", root, "--run-root", filepath.Join(root, "run"), "--config", testenv.NetworkConfig(t, root), "attach"}, args...))
		done <- cmd.Execute()
	}()
	t.Cleanup(func() { inW.Close() })
	return inW, out, done
}

func TestAttachInputOutputDetachAndExit(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "-i", "--name", "echo", fx.Busybox.Ref, "sh", "-c", `while read l; do echo "got $l"; [ "$l" = quit ] && exit 7; done`)

	// Input reaches the container, its output comes back; ctrl-p,ctrl-q
	// detaches (docker's status 1) and leaves it running.
	in, out, done := attachAsync(t, root, "echo")
	waitFor(t, func() bool {
		io.WriteString(in, "hello\n")
		return strings.Contains(out.String(), "got hello")
	})
	in.Write([]byte{0x10, 0x11})
	if err := <-done; exitStatus(err) != 1 || !strings.Contains(out.String(), "read escape sequence") {
		t.Errorf("detach: status %d (%v), output %q", exitStatus(err), err, out.String())
	}
	if st := mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "echo"); st != "running\n" {
		t.Fatalf("after detach the container is %q", st)
	}

	// Other detach keys; a partial sequence is passed on as input.
	in, out, done = attachAsync(t, root, "--detach-keys", "ctrl-a,x", "echo")
	waitFor(t, func() bool {
		io.WriteString(in, "a\x01b\n")
		return strings.Contains(out.String(), "got a\x01b")
	})
	io.WriteString(in, "\x01x")
	if err := <-done; exitStatus(err) != 1 {
		t.Errorf("detach with ctrl-a,x: %v", err)
	}

	// When the container exits, attach returns its status.
	in, out, done = attachAsync(t, root, "echo")
	waitFor(t, func() bool {
		io.WriteString(in, "ping\n")
		return strings.Contains(out.String(), "got ping")
	})
	io.WriteString(in, "quit\n")
	if err := <-done; exitStatus(err) != 7 {
		t.Errorf("attach after the container exited: status %d (%v), want 7; output %q", exitStatus(err), err, out.String())
	}
	if _, _, err := hull(t, root, "attach", "echo"); err == nil || !strings.Contains(err.Error(), "stopped container") {
		t.Errorf("attach to a stopped container: %v", err)
	}
	if _, _, err := hull(t, root, "attach", "--detach-keys", "ctrl-", "echo"); err == nil || !strings.Contains(err.Error(), "--detach-keys") {
		t.Errorf("bad --detach-keys: %v", err)
	}

	// --no-stdin: output only; a kill ends it with the container's status.
	mustHull(t, root, "run", "-d", "-i", "--name", "ticker", fx.Busybox.Ref, "sh", "-c", "while :; do echo tick; sleep 0.05; done")
	in, out, done = attachAsync(t, root, "--no-stdin", "ticker")
	waitFor(t, func() bool { return strings.Contains(out.String(), "tick") })
	mustHull(t, root, "kill", "ticker")
	if err := <-done; exitStatus(err) != 137 {
		t.Errorf("attach --no-stdin when killed: status %d (%v), want 137", exitStatus(err), err)
	}
}

// cp reaches what the container sees under its volume and bind mounts,
// not the root filesystem's directory the mount hides.
func TestCpThroughMounts(t *testing.T) {
	root, fx := containerEnv(t)
	bind := t.TempDir()
	c := runDetached(t, root, fx.Busybox.Ref, "mounts", "-v", "vol:/data", "-v", bind+":/bind")
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("via cp\n"), 0o644)
	mustHull(t, root, "cp", filepath.Join(host, "f"), c+":/data/")
	mustHull(t, root, "cp", filepath.Join(host, "f"), c+":/bind/g")
	if out := mustHull(t, root, "exec", c, "cat", "/data/f", "/bind/g"); out != "via cp\nvia cp\n" {
		t.Errorf("the container sees %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(bind, "g")); err != nil || string(b) != "via cp\n" {
		t.Errorf("bind source: %q %v", b, err)
	}
	mustHull(t, root, "exec", c, "sh", "-c", "echo from-container > /data/h")
	mustHull(t, root, "cp", c+":/data/h", filepath.Join(host, "h"))
	if b, _ := os.ReadFile(filepath.Join(host, "h")); string(b) != "from-container\n" {
		t.Errorf("copied out of the volume: %q", b)
	}
	mustHull(t, root, "cp", c+":/data", filepath.Join(host, "whole"))
	if _, err := os.Stat(filepath.Join(host, "whole", "h")); err != nil {
		t.Errorf("the volume's directory copied out: %v", err)
	}
}

// Without --no-stream, stats prints a fresh table every second until stopped.
func TestStatsStreams(t *testing.T) {
	root, fx := containerEnv(t)
	c := runDetached(t, root, fx.Busybox.Ref, "streamed")
	cmd := extraProc(root, "stats", "--format", "{{.Name}} {{.PIDs}}", c)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for i := 0; i < 3; i++ {
		if !sc.Scan() {
			t.Fatalf("stats stopped after %d readings", i)
		}
		if sc.Text() != "streamed 1" {
			t.Errorf("reading %d: %q", i, sc.Text())
		}
	}
	// Paused, a container refuses exec but still has stats and top.
	mustHull(t, root, "pause", c)
	if _, _, err := hull(t, root, "exec", c, "true"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("exec in a paused container: %v", err)
	}
	if out := mustHull(t, root, "top", c); !strings.Contains(out, "sleep 1000") {
		t.Errorf("top of a paused container:\n%s", out)
	}
	mustHull(t, root, "unpause", c)
}
