package cri

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// `hull cri serve` end to end: the command execs hull-cri, which serves
// until SIGTERM and removes its socket (TestCrictl drives it with crictl).
func TestHullCRIServe(t *testing.T) {
	hull := os.Getenv("HULL_BIN")
	if hull == "" || os.Geteuid() != 0 {
		t.Skip("needs root and HULL_BIN (make build; see the Makefile's test target)")
	}
	criBin := filepath.Join(filepath.Dir(hull), "hull-cri")
	if _, err := os.Stat(criBin); err != nil {
		t.Skipf("no hull-cri next to HULL_BIN (%v): make build builds it", err)
	}
	root := t.TempDir()
	sock := filepath.Join(root, "cri.sock")
	cmd, exited, stderr := startServe(t, hull, criBin, root, sock)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "hull" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	// The server starts without huge pages for its heap, which hull's
	// other processes start with (package hugeheap, cmd/hull-cri
	// hugeheap.c): a huge page's unused part would stay for the node's life.
	if smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid)); err != nil {
		t.Error(err)
	} else if strings.Contains(string(smaps), " hg") {
		t.Errorf("the CRI server has a mapping marked for huge pages (VmFlags hg); want none")
	}

	// NRI is on by default: plugins can connect to --nri-socket.
	nriSock := filepath.Join(root, "nri.sock")
	if c, err := net.Dial("unix", nriSock); err != nil {
		t.Errorf("NRI socket: %v; want NRI served by default", err)
	} else {
		c.Close()
	}

	// Killed, it leaves its sockets; the next server replaces them.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("a killed server's socket: %v; want it left behind", err)
	}
	cmd, exited, stderr = startServe(t, hull, criBin, root, sock)
	// A second server cannot take the NRI socket of a live one.
	second := exec.Command(hull, "--root", root, "--run-root", filepath.Join(root, "run"), "cri", "serve", "--listen", "unix://"+filepath.Join(root, "cri2.sock"), "--nri-socket", nriSock)
	second.Env = append(os.Environ(), "HULL_CRI="+criBin, "HULL_CONFIG=")
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "another runtime serves NRI there") {
		t.Errorf("a second server on the same NRI socket: %v\n%s\nwant refused", err, out)
	}
	stopServe(t, cmd, exited, stderr)
	for _, s := range []string{sock, nriSock} {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("socket %s left after SIGTERM: %v", s, err)
		}
	}

	// --nri=false: no NRI socket.
	cmd, exited, stderr = startServe(t, hull, criBin, root, sock, "--nri=false")
	if _, err := os.Stat(nriSock); !os.IsNotExist(err) {
		t.Errorf("NRI socket with --nri=false: %v; want none", err)
	}
	stopServe(t, cmd, exited, stderr)
}

// stopServe stops a server with SIGTERM and checks it exits cleanly.
func stopServe(t *testing.T, cmd *exec.Cmd, exited chan error, stderr *strings.Builder) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("hull cri serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hull cri serve did not stop on SIGTERM")
	}
}

// startServe starts `hull cri serve` on sock (with flags) and waits until it answers
// Version; the cleanup kills it if the test has not stopped it.
// NRI is served on <root>/nri.sock (never the host's default socket),
// with no pre-installed plugins; extra are more serve flags.
func startServe(t *testing.T, hull, criBin, root, sock string, extra ...string) (*exec.Cmd, chan error, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(hull, append([]string{"--root", root, "--run-root", filepath.Join(root, "run"), "cri", "serve", "--listen", "unix://" + sock,
		"--nri-socket", filepath.Join(root, "nri.sock"), "--nri-plugin-path", filepath.Join(root, "nri-plugins")}, extra...)...)
	cmd.Env = append(os.Environ(), "HULL_CRI="+criBin, "HULL_CONFIG=")
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return cmd, exited, stderr
		}
		select {
		case err := <-exited:
			t.Fatalf("hull cri serve exited: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hull cri serve does not answer after 10s: %v\n%s", err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
