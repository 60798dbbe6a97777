package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"hull/internal/testenv"
)

// `hull pull` goes through a registry's mirrors: a first mirror that is
// down is passed over for the next, and a mirror that speaks plain HTTP
// is used only once listed in registries.insecure. The image's own
// registry is down too (a closed local port), so only the mirror can
// have served the pull; with mirrors_only it is not tried at all.
//
// A plain-HTTP mirror on 127.0.0.1 would be trusted as loopback; the
// pulling hull runs instead in a network namespace of the test's own
// (mirrorNetns) and reaches the registry at 198.51.100.1, not loopback. No
// name is resolved, and that namespace has no route off the machine.
func TestCLIPullThroughMirrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace)")
	}
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	upstream, firstMirror := testenv.ClosedAddr(t), testenv.ClosedAddr(t)
	netnsPath, mirror := mirrorNetns(t, reg.Addr)
	image := upstream + strings.TrimPrefix(fx.Busybox.Ref, reg.Addr)
	root := t.TempDir()
	pull := func(insecure string, mirrorsOnly bool) (string, error) {
		t.Helper()
		cfg := filepath.Join(root, "mirrors.toml")
		data := fmt.Sprintf("[registries]\ninsecure = [%s]\nmirrors_only = %t\n[registries.mirrors]\n%q = [%q, %q]\n", insecure, mirrorsOnly, upstream, firstMirror, mirror)
		if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("nsenter", "--net="+netnsPath,
			os.Args[0], "--root", root, "--run-root", filepath.Join(root, "run"), "--config", cfg, "pull", image)
		cmd.Env = append(os.Environ(), "HULL_TEST_AS_CLI=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Not listed insecure: the mirror is tried over HTTPS only, and the
	// error names all three registries, the mirror's with its remedy.
	out, err := pull("", false)
	for _, want := range []string{"tried 3 registries", "mirror " + firstMirror + "/hull-test/busybox: registry unreachable",
		"mirror " + mirror + "/hull-test/busybox: insecure registry", "; " + upstream + "/hull-test/busybox: registry unreachable"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("pull through a plain-HTTP mirror not listed insecure: %v\n%s\nwant it to say %q", err, out, want)
		}
	}
	// With mirrors_only the registry itself is left out, and the error
	// says so.
	out, err = pull("", true)
	if err == nil || !strings.Contains(out, "tried 2 registries") || strings.Contains(out, "; "+upstream+"/") ||
		!strings.Contains(out, upstream+" itself is not tried (registries.mirrors_only)") {
		t.Errorf("mirrors_only pull through mirrors that cannot serve it: %v\n%s\nwant 2 registries tried, %s not", err, out, upstream)
	}
	out, err = pull(fmt.Sprintf("%q", mirror), true)
	if err != nil || !strings.Contains(out, "Digest: "+fx.Busybox.Digest) || !strings.Contains(out, "Status: Downloaded newer image for "+image) {
		t.Fatalf("pull through the insecure mirror: %v\n%s", err, out)
	}
	if out := mustHull(t, root, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != image {
		t.Errorf("images after the pull through mirrors = %q; want the image under its own name %s", out, image)
	}
}

// mirrorNetns makes a network namespace holding only lo (up) with
// 198.51.100.1 (TEST-NET-2: not loopback, and not on this machine) on it,
// and a listener on 198.51.100.1 in it that forwards each connection to
// target, dialled from the test's own namespace. It returns a path
// nsenter --net enters the namespace by and the listener's address. The
// namespace is held only by the test's descriptor and the listener, both
// closed when the test ends: nothing is left to delete, even on a crash.
func mirrorNetns(t *testing.T, target string) (path, addr string) {
	t.Helper()
	var l net.Listener
	ns, err := func() (netns.NsHandle, error) {
		// The new namespace is this thread's until it switches back; the
		// listener's socket, made here, stays in it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return 0, fmt.Errorf("get network namespace: %w", err)
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			return 0, fmt.Errorf("new network namespace: %w", err)
		}
		defer func() {
			if err := netns.Set(orig); err != nil {
				// The thread must not run anything else in ns: end it.
				panic(fmt.Sprintf("restore network namespace: %v", err))
			}
		}()
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			ns.Close()
			return 0, fmt.Errorf("netlink in the mirror's namespace: %w", err)
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err == nil {
			err = h.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 51, 100, 1), Mask: net.CIDRMask(32, 32)}})
		}
		if err == nil {
			l, err = net.Listen("tcp", "198.51.100.1:0")
		}
		if err != nil {
			ns.Close()
			return 0, fmt.Errorf("mirror's namespace: %w", err)
		}
		return ns, nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	// Each connection's pair is closed at the end too, so that none can
	// hold the cleanup.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		ns.Close()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				track(up)
				defer up.Close()
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, up)
			}()
		}
	}()
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns)), l.Addr().String()
}
