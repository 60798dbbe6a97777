package streams

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A client that connects while the server holds (the monitor about to
// exec the shim) is not taken by this server: it waits in the socket's
// backlog and the next server on the same listener (the shim) serves it,
// output and exit status included.
func TestHeldClientsGoToTheNextServer(t *testing.T) {
	first, path := listenT(t)
	first.Accept()
	first.Hold()
	conn := dialT(t, path)
	time.Sleep(50 * time.Millisecond)
	if n := first.Clients(); n != 0 {
		t.Fatalf("a holding server took %d clients", n)
	}

	f, err := first.Listener().(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	next := Serve(ln)
	defer next.Close()
	select {
	case <-next.FirstAttached():
	case <-time.After(5 * time.Second):
		t.Fatal("the next server never got the waiting client")
	}
	next.Tee(FrameStdout)([]byte("hello"))
	next.Exit(3)
	if kind, data, err := ReadFrame(conn); err != nil || kind != FrameStdout || string(data) != "hello" {
		t.Fatalf("output frame: %d %q %v", kind, data, err)
	}
	if kind, data, err := ReadFrame(conn); err != nil || kind != FrameExit || len(data) != 4 || data[3] != 3 {
		t.Fatalf("exit frame: %d %v %v", kind, data, err)
	}

	// Accept after Hold serves again.
	first.Accept()
	again, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	deadline := time.Now().Add(5 * time.Second)
	for first.Clients()+next.Clients() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if first.Clients()+next.Clients() != 1 {
		t.Fatal("no server took the client after Accept")
	}
}

// What a client sends before the container runs (a foreground run
// attaches first; keys typed at once) reaches the container when it
// starts, in order, and so does the end of input.
func TestInputBeforeStartIsKept(t *testing.T) {
	srv, path := listenT(t)
	srv.Accept()
	conn := dialT(t, path)
	WriteFrame(conn, FrameStdin, []byte("ps\n"))
	WriteFrame(conn, FrameStdin, []byte("exit\n"))
	WriteFrame(conn, FrameStdinClose, nil)
	<-srv.FirstAttached()
	time.Sleep(50 * time.Millisecond) // let the server read them, unstarted

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv.SetInput(w, nil)
	read := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); read <- string(b) }() // ends when the kept close is applied
	select {
	case got := <-read:
		if got != "ps\nexit\n" {
			t.Fatalf("the container read %q", got)
		}
	case <-time.After(10 * time.Second):
		w.Close()
		t.Fatalf("the container's input was never closed; it read %q", <-read)
	}
}

// listenT serves an attach socket in a temp dir until the test ends.
func listenT(t *testing.T) (*Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attach.sock")
	srv, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, path
}

// dialT connects to the attach socket at path until the test ends.
func dialT(t *testing.T, path string) net.Conn {
	t.Helper()
	conn, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
