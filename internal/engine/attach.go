package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"hull/internal/streams"
	"hull/internal/trace"
)

// AttachOptions connect a front end to a container's streams.
type AttachOptions struct {
	// Stdin is copied to the container's input until it ends (then the
	// input is closed) or the detach keys are read; nil: no input.
	Stdin io.Reader
	// Stdout and Stderr receive the container's output (with a terminal,
	// all of it arrives on Stdout).
	Stdout, Stderr io.Writer
	// DetachKeys is docker's key list (e.g. "ctrl-p,ctrl-q"): typed on
	// Stdin, they detach and leave the container running. "": none.
	DetachKeys string
}

// ErrDetached is Attached.Wait's error after the detach keys were typed
// or Detach was called: the container runs on.
var ErrDetached = errors.New("detached")

// Attached is a front end attached to a container through its monitor's
// attach socket: from Wait on, output is copied to the options' writers
// and input from Stdin until the container exits, or the front end
// detaches.
//
// The front end keeps what is its own: the terminal (raw mode, its size,
// which it passes on with Resize) and the signals it receives (Signal).
type Attached struct {
	e     *Engine
	c     *Container
	conn  net.Conn
	stdin bool

	detached chan struct{} // closed by the detach keys or Detach
	once     sync.Once
	start    func() // starts copying, once (Wait)
	started  sync.Once
	done     chan struct{} // closed when the output ended
	code     int
	err      error
}

// Attach attaches to a running container. Input is attached only when the
// container keeps its stdin open (created with -i), as docker's.
func (e *Engine) Attach(ctx context.Context, ref string, o AttachOptions) (*Attached, error) {
	keys, err := ParseDetachKeys(o.DetachKeys)
	if err != nil {
		return nil, err
	}
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch c.State {
	case StateRunning:
	case StatePaused:
		return nil, fmt.Errorf("you cannot attach to a paused container %s, unpause it first", c.Name)
	default:
		return nil, fmt.Errorf("you cannot attach to a stopped container %s, start it first", c.Name)
	}
	conn, err := streams.Dial(e.AttachSocket(c.ID))
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", c.Name, err)
	}
	if !c.Config.OpenStdin {
		o.Stdin = nil
	}
	return e.attached(ctx, c, conn, o, keys), nil
}

// StartAttached starts a container (as Start) with a client attached from
// the first byte of its output: a foreground run, or start -a. An error
// the start reports says what failed (a *StartError). Input is
// attached when o.Stdin is set.
func (e *Engine) StartAttached(ctx context.Context, ref string, so StartOptions, o AttachOptions) (*Attached, error) {
	keys, err := ParseDetachKeys(o.DetachKeys)
	if err != nil {
		return nil, err
	}
	so.WaitAttach = true
	st, err := e.Start(ctx, ref, so)
	if err != nil {
		return nil, err
	}
	c := so.Created
	if c == nil {
		if c, err = e.Get(ctx, ref); err != nil {
			if st != nil {
				st.file.Close()
			}
			return nil, err
		}
	}
	if st == nil {
		return nil, fmt.Errorf("container %s is already running", c.Name)
	}
	conn, err := streams.Dial(st.Socket)
	if err != nil {
		st.file.Close()
		return nil, fmt.Errorf("attach to %s: %w", c.Name, err)
	}
	if err := st.Ready(); err != nil {
		conn.Close()
		return nil, err
	}
	return e.attached(ctx, c, conn, o, keys), nil
}

// attached makes the Attached of conn; copying starts with Wait.
func (e *Engine) attached(ctx context.Context, c *Container, conn net.Conn, o AttachOptions, keys []byte) *Attached {
	a := &Attached{e: e, c: c, conn: conn, stdin: o.Stdin != nil,
		detached: make(chan struct{}), done: make(chan struct{})}
	a.start = func() {
		if o.Stdin != nil {
			go func() {
				if forwardInput(conn, o.Stdin, keys) {
					a.Detach()
				}
			}()
		}
		go func() {
			defer close(a.done)
			a.code, a.err = a.copyOutput(ctx, o.Stdout, o.Stderr)
		}()
	}
	return a
}

// Container is the container attached to.
func (a *Attached) Container() *Container { return a.c }

// TTY reports whether the container has a terminal: then the front end
// passes its terminal's size (Resize) and, with input, puts it in raw
// mode; without one it forwards its signals (Signal).
func (a *Attached) TTY() bool { return a.c.Config.Spec.TTY }

// Stdin reports whether input is attached.
func (a *Attached) Stdin() bool { return a.stdin }

// Resize sets the size of the container's terminal.
func (a *Attached) Resize(rows, cols uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[0:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	return streams.WriteFrame(a.conn, streams.FrameResize, b[:])
}

// Signal sends a signal to the container's process.
func (a *Attached) Signal(ctx context.Context, sig unix.Signal) error {
	return a.e.Kill(ctx, a.c.ID, sig)
}

// Detach ends the attachment and leaves the container running: Wait
// returns ErrDetached.
func (a *Attached) Detach() {
	a.once.Do(func() { close(a.detached) })
	a.conn.Close()
}

// Wait copies the container's output, and the input, and returns the
// container's exit status once its output has ended, or ErrDetached.
// Nothing is copied before Wait: the front end sets its terminal up first.
func (a *Attached) Wait() (int, error) {
	a.started.Do(a.start)
	<-a.done
	return a.code, a.err
}

// Close releases the connection (a detach, unless the container has
// exited already).
func (a *Attached) Close() error {
	a.Detach()
	a.started.Do(func() { close(a.done) })
	<-a.done
	return nil
}

// copyOutput copies the container's output frames to stdout and stderr
// until the exit frame (its status), a detach, or the monitor going away
// without one (then the record has the status).
func (a *Attached) copyOutput(ctx context.Context, stdout, stderr io.Writer) (int, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		kind, data, err := streams.ReadFrame(a.conn)
		if err != nil {
			select {
			case <-a.detached:
				return 0, ErrDetached
			default:
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return a.e.Wait(ctx, a.c.ID)
			}
			return 0, fmt.Errorf("attach to %s: %w", a.c.Name, err)
		}
		switch kind {
		case streams.FrameStdout:
			stdout.Write(data)
		case streams.FrameStderr:
			stderr.Write(data)
		case streams.FrameExit:
			trace.Mark("cli: exit frame")
			if len(data) == 4 {
				return int(int32(binary.BigEndian.Uint32(data))), nil
			}
			return 0, nil
		}
	}
}

// forwardInput copies input to the container until EOF (then closes the
// container's stdin) or until the detach keys arrive (true). Bytes that
// begin the key sequence are held until it is clear they do not finish it.
func forwardInput(conn net.Conn, in io.Reader, keys []byte) bool {
	buf := make([]byte, 32*1024)
	matched := 0
	for {
		n, err := in.Read(buf)
		var send []byte
		for _, b := range buf[:n] {
			if len(keys) > 0 && b == keys[matched] {
				matched++
				if matched == len(keys) {
					if len(send) > 0 {
						streams.WriteFrame(conn, streams.FrameStdin, send)
					}
					return true
				}
				continue
			}
			send = append(send, keys[:matched]...)
			matched = 0
			if len(keys) > 0 && b == keys[0] {
				matched = 1
				continue
			}
			send = append(send, b)
		}
		if len(send) > 0 && streams.WriteFrame(conn, streams.FrameStdin, send) != nil {
			return false
		}
		if err != nil {
			streams.WriteFrame(conn, streams.FrameStdinClose, nil)
			return false
		}
	}
}

// ParseDetachKeys reads docker's key list: letters, or ctrl-<key> for
// ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_. "" is
// no keys.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		key, isCtrl := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case isCtrl && len(key) == 1 && key[0] >= 'a' && key[0] <= 'z':
			keys = append(keys, key[0]-'a'+1)
		case isCtrl && len(key) == 1 && strings.Contains("@[\\]^_", key):
			keys = append(keys, key[0]-'@')
		default:
			return nil, fmt.Errorf("--detach-keys %q: %q is not a key: use a letter or ctrl-<letter> (e.g. ctrl-p,ctrl-q)", s, k)
		}
	}
	return keys, nil
}
