package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The test binary is its own name server process: Ensure starts it with
// testServerEnv naming the test's directory, where the file "attached"
// stands for the network's attachments.
const testServerEnv = "HULL_DNS_TEST_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(testServerEnv); dir != "" && os.Getenv(InheritedEnv) != "" {
		err := Run(RunOptions{
			Dir: dir, Network: "testnet", Poll: 50 * time.Millisecond, Linger: 200 * time.Millisecond,
			Zone: ZoneFunc(func(netip.Addr) (View, error) { return View{Records: testRecords}, nil }),
			Idle: func() bool {
				_, err := os.Stat(filepath.Join(dir, "attached"))
				return errors.Is(err, os.ErrNotExist)
			},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// dyingEnv makes the test binary a killed server's likeness for
// TestEnsureReplacesDyingServer: its leader thread ends at once, during
// package initialization (the only time Go runs on it for sure), while
// another thread goes on for dyingFor with the files it was given, the
// pidfile's lock and the port's sockets: a multithreaded server killed on
// a loaded host is such a process until all its threads have ended.
const dyingEnv = "HULL_DNS_TEST_DYING"

const dyingFor = 700 * time.Millisecond

func init() {
	if os.Getenv(dyingEnv) == "" {
		return
	}
	go func() {
		time.Sleep(dyingFor)
		os.Exit(0)
	}()
	syscall.Syscall(syscall.SYS_EXIT, 0, 0, 0)
}

// testAddr is the loopback address the lifecycle test's servers listen
// on (port 53).
var testAddr = netip.MustParseAddr("127.0.0.153")

// gone says whether process pid has ended (a zombie counts: the server is
// its starter's parent's child, see Ensure).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverTest readies a test of servers (the test binary) on testAddr, in
// its directory dir, the network attached; o starts them.
func serverTest(t *testing.T) (dir string, o StartOptions) {
	if os.Getuid() != 0 {
		t.Skip("binds port 53: needs root")
	}
	dir = t.TempDir()
	t.Setenv(testServerEnv, dir)
	if err := os.WriteFile(filepath.Join(dir, "attached"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, StartOptions{Dir: dir, Network: "testnet", Addr: testAddr, Command: []string{os.Args[0], "-test.run=^$", "dns", "testnet"}}
}

// askWeb asks the server on testAddr for web's address, over UDP.
func askWeb(t *testing.T) {
	t.Helper()
	r := query(t, "udp", netip.AddrPortFrom(testAddr, 53).String(), "web.", dns.TypeA)
	if strings.Join(answers(r), ",") != "A 10.200.0.2" {
		t.Fatalf("web: %s %q", dns.RcodeToString[r.Rcode], answers(r))
	}
}

// TestLifecycle: racing Ensures start one server, which answers at once
// (its sockets are bound before it starts); killed, the next Ensure
// starts another; the network idle, it exits by itself and the next
// Ensure starts a new one.
func TestLifecycle(t *testing.T) {
	dir, o := serverTest(t)
	var pids []int
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second) // and its sockets, for the next test
		}
	})
	started := func() int {
		t.Helper()
		var pid int
		waitFor(t, "the server's pid", func() bool { pid = Running(dir, "testnet"); return pid != 0 })
		pids = append(pids, pid)
		return pid
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- Ensure(o) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	askWeb(t)
	first := started()
	time.Sleep(300 * time.Millisecond)
	if n := servers(t, dir); n != 1 {
		t.Fatalf("%d servers after racing starts, want 1", n)
	}

	syscall.Kill(first, syscall.SIGKILL)
	waitFor(t, "the killed server to go", func() bool { return gone(first) })
	if err := Ensure(o); err != nil {
		t.Fatal(err)
	}
	askWeb(t)
	second := started()
	if second == first {
		t.Fatal("the killed server's pid is reported")
	}

	os.Remove(filepath.Join(dir, "attached"))
	waitFor(t, "the idle server to exit", func() bool { return gone(second) && Running(dir, "testnet") == 0 })
	if err := os.WriteFile(filepath.Join(dir, "attached"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(o); err != nil {
		t.Fatal(err)
	}
	askWeb(t)
	third := started()
	os.Remove(filepath.Join(dir, "attached"))
	waitFor(t, "the idle server to exit", func() bool { return gone(third) })
	log, _ := os.ReadFile(filepath.Join(dir, "testnet.log"))
	if !strings.Contains(string(log), "exiting") {
		t.Errorf("log:\n%s", log)
	}

	// The whole directory removed (a run root deleted), a server exits.
	if err := os.WriteFile(filepath.Join(dir, "attached"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(o); err != nil {
		t.Fatal(err)
	}
	fourth := started()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server of a removed directory to exit", func() bool { return gone(fourth) })
}

// TestEnsureReplacesDyingServer: the pidfile held by a server that is
// dying (its leader a zombie, its other threads still ending), Ensure
// waits for it to be gone and starts a new server, which answers.
func TestEnsureReplacesDyingServer(t *testing.T) {
	dir, o := serverTest(t)

	// The dying server holds what Ensure hands a server.
	pidfile, err := os.OpenFile(filepath.Join(dir, "testnet.pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(pidfile.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	udp, tcp, err := listen(testAddr)
	if err != nil {
		t.Fatal(err)
	}
	dying := exec.Command(o.Command[0], o.Command[1:]...)
	dying.Env = append(os.Environ(), dyingEnv+"=1")
	dying.ExtraFiles = []*os.File{pidfile, udp, tcp}
	if err := dying.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dying.Process.Kill(); dying.Wait() })
	fmt.Fprintf(pidfile, "%d\n", dying.Process.Pid)
	pidfile.Close()
	udp.Close()
	tcp.Close()
	waitFor(t, "the dying server's leader to end", func() bool { return gone(dying.Process.Pid) })
	if Running(dir, "testnet") != 0 {
		t.Fatal("a dying server is reported running")
	}

	start := time.Now()
	if err := Ensure(o); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > dyingFor+time.Second {
		t.Errorf("Ensure took %v", time.Since(start))
	}
	var pid int
	waitFor(t, "the new server's pid", func() bool { pid = Running(dir, "testnet"); return pid != 0 })
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	})
	if pid == dying.Process.Pid {
		t.Fatal("the dying server is reported running")
	}
	askWeb(t)
}

// servers counts the live processes serving the test's directory.
func servers(t *testing.T, dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || gone(pid) {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if strings.Contains(string(env), testServerEnv+"="+dir+"\x00") && strings.Contains(string(env), InheritedEnv+"=") {
			n++
		}
	}
	return n
}

// TestEnsurePortTaken: port 53 of the gateway taken, the start fails with
// an error that says what to look at, and nothing is started.
func TestEnsurePortTaken(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("binds port 53: needs root")
	}
	addr := netip.MustParseAddr("127.0.0.152")
	taken, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 53).String())
	if err != nil {
		t.Skipf("127.0.0.152:53 not free: %v", err)
	}
	defer taken.Close()
	dir := t.TempDir()
	err = Ensure(StartOptions{Dir: dir, Network: "testnet", Addr: addr, Command: []string{"/bin/false"}})
	if err == nil || !strings.Contains(err.Error(), "another DNS server") || !strings.Contains(err.Error(), "testnet") {
		t.Errorf("Ensure with the port taken: %v", err)
	}
	if pid := Running(dir, "testnet"); pid != 0 {
		t.Errorf("a server (pid %d) runs", pid)
	}
}

// BenchmarkEnsureRunning is what a container attaching to a network whose
// server runs pays for it: two opens and two flocks.
func BenchmarkEnsureRunning(b *testing.B) {
	dir := b.TempDir()
	held, err := os.OpenFile(filepath.Join(dir, "testnet.pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX); err != nil {
		b.Fatal(err)
	}
	o := StartOptions{Dir: dir, Network: "testnet", Addr: testAddr, Command: []string{"/bin/false"}}
	for b.Loop() {
		if err := Ensure(o); err != nil {
			b.Fatal(err)
		}
	}
}
