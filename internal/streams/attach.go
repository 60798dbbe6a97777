package streams

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// The attach protocol between the container's supervisor (its monitor, or
// hull-shim once a detached container was handed over, serving the same
// socket) and `hull run`/`attach`/`start -a` on a unix socket: frames of
// [1 byte kind][4 bytes big-endian length][data].
// Monitor to client: stdout, stderr, exit (4 bytes status). Client to
// monitor: stdin, stdin-close, resize (2×uint16 rows, cols).
const (
	FrameStdout     byte = 1
	FrameStderr     byte = 2
	FrameExit       byte = 3
	FrameStdin      byte = 0
	FrameStdinClose byte = 4
	FrameResize     byte = 5
)

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, kind byte, data []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > 1<<20 {
		return 0, nil, errors.New("attach: frame too large")
	}
	data := make([]byte, n)
	_, err := io.ReadFull(r, data)
	return hdr[0], data, err
}

// hub fans container output out to attached clients and their input in.
type hub struct {
	mu      sync.Mutex
	clients map[net.Conn]bool
	first   chan struct{} // closed when the first client attaches
	once    sync.Once
}

func newHub() *hub { return &hub{clients: map[net.Conn]bool{}, first: make(chan struct{})} }

func (h *hub) add(c net.Conn) {
	h.mu.Lock()
	h.clients[c] = true
	h.mu.Unlock()
	h.once.Do(func() { close(h.first) })
}

func (h *hub) remove(c net.Conn) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	c.Close()
}

func (h *hub) broadcast(kind byte, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if err := WriteFrame(c, kind, data); err != nil {
			delete(h.clients, c)
			c.Close()
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.Close()
	}
	h.clients = map[net.Conn]bool{}
}

// sockPath returns a path for a unix socket at path short enough for
// sockaddr_un (108 bytes): long paths go through /proc/self/fd of their
// opened directory. The returned func releases the directory.
func sockPath(path string) (string, func(), error) {
	if len(path) < 100 {
		return path, func() {}, nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)), func() { dir.Close() }, nil
}

// Dial connects to an attach socket, whatever the length of its path.
func Dial(path string) (net.Conn, error) {
	short, release, err := sockPath(path)
	if err != nil {
		return nil, err
	}
	defer release()
	return net.Dial("unix", short)
}
