package streams

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Server is a container's attach endpoint, held by whoever supervises the
// container (the monitor, or the shim it hands over to): clients connect
// to the unix socket, receive its output frames and the exit status, and
// send input and terminal sizes.
type Server struct {
	ln  net.Listener
	hub *hub
	// accepting is closed when the accept loop started by Accept ends;
	// nil while no loop runs.
	accepting chan struct{}

	mu       sync.Mutex
	input    io.WriteCloser // the container's stdin or pty master, while running
	master   *os.File       // the pty master, for resizes
	inputSet bool           // SetInput was called: the container runs
	// Until then (a foreground run attaches before the container starts,
	// and the terminal's first size and typed-ahead keys arrive at once)
	// input, its end and the size are kept for the container.
	early      []byte
	earlyClose bool
	earlySize  *unix.Winsize
}

// maxEarly bounds the input kept for a container that has not started.
const maxEarly = 64 << 10

// Listen binds a new attach socket at path. Clients can connect at once
// but wait in the socket's backlog until Accept: a supervisor that is about
// to hand the listener over to another program (the monitor exec'ing the
// shim) must not take a client whose connection the exec would drop.
func Listen(path string) (*Server, error) {
	os.Remove(path)
	short, release, err := sockPath(path)
	if err != nil {
		return nil, fmt.Errorf("attach socket %s: %w", path, err)
	}
	defer release()
	ln, err := net.Listen("unix", short)
	if err != nil {
		return nil, fmt.Errorf("attach socket %s: %w", path, err)
	}
	return &Server{ln: ln, hub: newHub()}, nil
}

// Serve serves attach clients on an existing listener (one inherited
// across an exec).
func Serve(ln net.Listener) *Server {
	s := &Server{ln: ln, hub: newHub()}
	s.Accept()
	return s
}

// Accept starts taking clients (again, after Hold).
func (s *Server) Accept() {
	if s.accepting != nil {
		return
	}
	done := make(chan struct{})
	s.accepting = done
	go func() {
		defer close(done)
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.hub.add(c)
			go s.serveClient(c)
		}
	}()
}

// Hold stops taking clients without closing the socket: new ones wait in
// its backlog for whoever accepts next (the shim, after an exec).
func (s *Server) Hold() {
	if s.accepting == nil {
		return
	}
	if dl, ok := s.ln.(interface{ SetDeadline(time.Time) error }); ok {
		dl.SetDeadline(time.Unix(1, 0))
		<-s.accepting
		dl.SetDeadline(time.Time{})
		s.accepting = nil
	}
}

// Listener is the socket the server accepts on.
func (s *Server) Listener() net.Listener { return s.ln }

// FirstAttached is closed when the first client attaches.
func (s *Server) FirstAttached() <-chan struct{} { return s.hub.first }

// Clients is how many clients are attached.
func (s *Server) Clients() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.hub.clients)
}

// SetInput routes client input to w (the container's stdin pipe, or the
// pty master, which also takes resizes).
func (s *Server) SetInput(w io.WriteCloser, master *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.input, s.master, s.inputSet = w, master, true
	// Under the lock, so nothing a client sends now overtakes it.
	if s.earlySize != nil && master != nil {
		unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, s.earlySize)
	}
	if len(s.early) > 0 && w != nil {
		w.Write(s.early)
	}
	if s.earlyClose && w != nil && master == nil {
		w.Close()
	}
	s.early, s.earlySize = nil, nil
}

// CloseInput closes the container's input, if any.
func (s *Server) CloseInput() {
	s.mu.Lock()
	in, master := s.input, s.master
	s.input, s.master = nil, nil
	s.mu.Unlock()
	if in != nil {
		in.Close()
	}
	_ = master // closed as the input
}

// Tee returns a function that sends output bytes to every client.
func (s *Server) Tee(kind byte) func([]byte) {
	return func(b []byte) { s.hub.broadcast(kind, b) }
}

// Exit sends the container's exit status to every client and closes them.
func (s *Server) Exit(code int) {
	s.hub.broadcast(FrameExit, []byte{byte(code >> 24), byte(code >> 16), byte(code >> 8), byte(code)})
	s.hub.closeAll()
}

// Close stops accepting clients and disconnects those attached.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.ln.Close()
	s.hub.closeAll()
}

func (s *Server) serveClient(c net.Conn) {
	defer s.hub.remove(c)
	for {
		kind, data, err := ReadFrame(c)
		if err != nil {
			return
		}
		s.mu.Lock()
		if !s.inputSet {
			switch {
			case kind == FrameStdin && len(s.early)+len(data) <= maxEarly:
				s.early = append(s.early, data...)
			case kind == FrameStdinClose:
				s.earlyClose = true
			case kind == FrameResize && len(data) == 4:
				s.earlySize = winsize(data)
			}
			s.mu.Unlock()
			continue
		}
		in, master := s.input, s.master
		s.mu.Unlock()
		switch kind {
		case FrameStdin:
			if in != nil {
				in.Write(data)
			}
		case FrameStdinClose:
			if in != nil && master == nil {
				in.Close()
			}
		case FrameResize:
			if master != nil && len(data) == 4 {
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, winsize(data))
			}
		}
	}
}

// Pump copies a container's output into the log and to attached clients
// (srv may be nil), and routes client input to in or the pty master. With
// a terminal, master is the only stream; otherwise out and errf are the
// output pipes. It returns when started; the channel closes when the
// output ends, or once what the pipes hold at their read deadline is
// copied (EndReadsBy).
func Pump(log *LogWriter, srv *Server, out, errf, master, in *os.File) <-chan struct{} {
	var wg sync.WaitGroup
	done := make(chan struct{})
	ended := func() <-chan struct{} {
		go func() { wg.Wait(); close(done) }()
		return done
	}
	copyFrom := func(stream string, f *os.File, kind byte) {
		var tee func([]byte)
		if srv != nil {
			tee = srv.Tee(kind)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.CopyStream(stream, UntilDeadline(f), tee)
			if f != master {
				f.Close()
			}
		}()
	}
	if master != nil {
		if srv != nil {
			srv.SetInput(master, master)
		}
		copyFrom("stdout", master, FrameStdout)
		return ended()
	}
	if in != nil && srv != nil {
		srv.SetInput(in, nil)
	}
	copyFrom("stdout", out, FrameStdout)
	copyFrom("stderr", errf, FrameStderr)
	return ended()
}

// winsize decodes a resize frame: rows and columns, big-endian uint16s.
func winsize(data []byte) *unix.Winsize {
	return &unix.Winsize{Row: uint16(data[0])<<8 | uint16(data[1]), Col: uint16(data[2])<<8 | uint16(data[3])}
}
