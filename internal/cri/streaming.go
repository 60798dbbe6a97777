package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/stream"
	"hull/internal/engine"
)

// Exec, Attach and PortForward answer with a URL on the streaming server
// (package stream), which the client connects to within a minute, once;
// the streams then run over the engine (streamRuntime below). The server
// listens on Options.StreamingAddress from Serve on.

// startStreaming starts the streaming server; stop stops it.
func (s *Server) startStreaming() (stop func(), err error) {
	srv, err := stream.Listen(stream.Config{Addr: s.opts.StreamingAddress, Runtime: streamRuntime{s.eng}, Log: s.opts.Log})
	if err != nil {
		return nil, err
	}
	s.stream = srv
	go func() {
		if err := srv.Serve(); err != nil {
			s.opts.Log.Error("streaming server stopped", "error", err)
		}
	}()
	s.opts.Log.Info("streaming server listening", "addr", srv.Addr())
	return func() { srv.Close() }, nil
}

// Exec issues the URL of an exec in a running container.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req.ContainerId = c.ID
	return s.stream.GetExec(req)
}

// Attach issues the URL of an attachment to a running container.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req.ContainerId = c.ID
	return s.stream.GetAttach(req)
}

// PortForward issues the URL for forwarding ports of a ready sandbox.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	p, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if p.State != engine.PodRunning {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("sandbox %s is not ready (it is %s)", p.ID, p.State))
	}
	req.PodSandboxId = p.ID
	return s.stream.GetPortForward(req)
}

// runningContainer is the CRI container id names, which must be running
// (containerd's "container is in CONTAINER_EXITED state").
func (s *Server) runningContainer(ctx context.Context, id string) (*engine.Container, error) {
	c, err := s.container(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.State != engine.StateRunning {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running (it is %s)", c.ID, c.State))
	}
	return c, nil
}

// streamRuntime runs the streaming server's sessions over the engine.
type streamRuntime struct{ eng *engine.Engine }

// firstSizeWait bounds how long a tty exec waits for the client's first
// terminal size before it starts the process without one.
const firstSizeWait = time.Second

// Exec runs cmd as engine.Exec does for `hull exec`. A client that goes
// away takes the process with it (SIGKILL, as containerd), since nobody
// could read its output or give it input any more.
//
// With a tty, the process starts on a terminal of the client's size: the
// client (kubectl, crictl exec -it) sends it as soon as the streams are
// up, and a size set only once the process runs is too late for one that
// reads it at start (busybox `stty size` fails on the new pty's 0x0 with
// "stty: standard input"). A client that sends none within
// firstSizeWait gets the process on an unsized terminal.
func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan stream.TermSize) error {
	s := engine.ExecSpec{Args: cmd, TTY: tty}
	if tty && resize != nil {
		select {
		case sz, ok := <-resize:
			if ok {
				s.Rows, s.Cols = sz.Height, sz.Width
			}
		case <-time.After(firstSizeWait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	x, err := r.eng.Exec(ctx, id, s, engine.ExecIO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return err
	}
	followSizes(resize, x.Resize)
	done := make(chan int, 1)
	go func() { done <- x.Wait() }()
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		x.Kill(unix.SIGKILL)
		code = <-done
	}
	if code != 0 {
		return &stream.ExitError{Cmd: cmd, Code: code}
	}
	return nil
}

// Attach attaches to the container's streams as `hull attach` does
// (input only if it was created with stdin) until it exits or the client
// goes away (a detach: it runs on). The end of the client's input closes
// the container's stdin only when it was created with stdin_once and no
// tty; otherwise it ends the attachment and the container keeps its
// input open for the next one, as containerd.
func (r streamRuntime) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan stream.TermSize) error {
	c, err := r.eng.Get(ctx, id)
	if err != nil {
		return err
	}
	var inputEnded <-chan struct{}
	if stdin != nil && !(c.Config.Labels[labelStdinOnce] == "1" && !c.Config.Spec.TTY) {
		in := &heldInput{r: stdin, ended: make(chan struct{}), release: make(chan struct{})}
		defer close(in.release)
		stdin, inputEnded = in, in.ended
	}
	a, err := r.eng.Attach(ctx, c.ID, engine.AttachOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return err
	}
	followSizes(resize, a.Resize)
	done := make(chan error, 1)
	go func() { _, err := a.Wait(); done <- err }()
	select {
	case err = <-done:
	case <-inputEnded:
		a.Detach()
		err = <-done
	case <-ctx.Done():
		a.Detach()
		err = <-done
	}
	if errors.Is(err, engine.ErrDetached) {
		return nil
	}
	return err
}

// heldInput is a client's input whose end is not passed on: at its end
// (or a read error) ended is closed and Read waits for release, so the
// attachment detaches before its reader could close the container's
// stdin.
type heldInput struct {
	r       io.Reader
	once    sync.Once
	ended   chan struct{}
	release chan struct{}
}

func (h *heldInput) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err != nil && n > 0 {
		return n, nil // the end comes with the next read
	}
	if err != nil {
		h.once.Do(func() { close(h.ended) })
		<-h.release
	}
	return n, err
}

// PortForward copies conn to and from port in the pod's network
// namespace. The client's end of input is passed on as a half-close, so
// a request-response protocol gets its answer; the forwarding ends when
// the pod's side has nothing more to send (or, after the client's input
// ended, a second later at most), or the client goes away.
func (r streamRuntime) PortForward(ctx context.Context, podID string, port int32, conn io.ReadWriteCloser) error {
	c, err := r.eng.DialPod(ctx, podID, int(port))
	if err != nil {
		return err
	}
	defer c.Close()
	toPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, conn)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		toPod <- err
	}()
	fromPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, c)
		fromPod <- err
	}()
	select {
	case err = <-fromPod:
	case err = <-toPod:
		select {
		case err = <-fromPod:
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	return err
}

// followSizes passes the terminal sizes the client sends to set until it
// stops sending them (nil: no terminal).
func followSizes(resize <-chan stream.TermSize, set func(rows, cols uint16) error) {
	if resize == nil {
		return
	}
	go func() {
		for sz := range resize {
			set(sz.Height, sz.Width)
		}
	}()
}
