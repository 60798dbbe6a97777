// Package stream is the CRI's streaming server: the HTTP endpoint that
// Exec, Attach and PortForward answer with a URL to, and the protocols
// kubelet, crictl and kubectl speak on it (what kubelet's former
// pkg/cri/streaming served for containerd and CRI-O).
//
// Lifecycle: the CRI server asks GetExec, GetAttach or GetPortForward for
// a URL, http://ADDR/{exec,attach,portforward}/TOKEN, naming a request
// kept in a token cache: a token is good for one connection within a
// minute of its issue. The client connects, upgrades the connection to
// SPDY/3.1 or to a websocket and negotiates a protocol version; the
// server opens the streams the request asked for and runs the command,
// the attachment or the forwarding through the Runtime until it ends,
// reports how it ended on the error stream, and closes the connection.
//
//   - remote commands (exec, attach): remotecommand.go (SPDY, channel.k8s.io
//     and v2..v5.channel.k8s.io), websocket.go (the same over websocket
//     channels, as kubectl ≥ 1.30 tries first), status.go (the error
//     stream), resize.go (terminal sizes);
//   - port forwarding: portforward.go (portforward.k8s.io over SPDY: a data
//     and an error stream per connection), portforward_websocket.go (the
//     websocket channel form, and SPDY tunnelled in a websocket).
//
// Only the transport primitives come from k8s.io/streaming (the
// handshake, SPDY connections, websocket channels); the protocols' server
// side is here.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultAddr is where the server listens unless told otherwise: the
// loopback only, on a port the kernel picks (kubelet proxies the streams
// of its node's runtime, so nothing else needs to reach it).
const DefaultAddr = "127.0.0.1:0"

// Runtime runs what the streams connect to. Its methods block until the
// command, the attachment or the forwarding has ended; ctx ends when the
// client's connection closes.
type Runtime interface {
	// Exec runs cmd in the container. stdin (nil: none) ends when the
	// client closes it; stdout and stderr are nil when not asked for
	// (with tty, all output goes to stdout); resize delivers the
	// terminal's sizes (tty only) and is closed when the client stops
	// sending them. A command that exits with a status other than 0
	// returns an *ExitError.
	Exec(ctx context.Context, containerID string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TermSize) error
	// Attach connects to the container's own streams until it exits or
	// ctx ends.
	Attach(ctx context.Context, containerID string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TermSize) error
	// PortForward connects conn to port on the loopback of the pod
	// sandbox's network namespace and copies both ways until either side
	// ends; an error says why the port could not be reached.
	PortForward(ctx context.Context, podSandboxID string, port int32, conn io.ReadWriteCloser) error
}

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on (default DefaultAddr).
	Addr string
	// Runtime serves the requests.
	Runtime Runtime
	// TokenTTL is how long an issued URL stays good (default a minute,
	// as kubelet's).
	TokenTTL time.Duration
	// StreamCreationTimeout bounds the wait for the client to open the
	// streams after the upgrade (default 30 s, kubelet's).
	StreamCreationTimeout time.Duration
	// IdleTimeout closes a connection nothing has crossed for that long
	// (default 4 h, kubelet's streamingConnectionIdleTimeout).
	IdleTimeout time.Duration
	// Log receives the errors of sessions (default: discard).
	Log *slog.Logger
}

// Server is a streaming server listening on its address. Its methods may
// run concurrently.
type Server struct {
	cfg   Config
	l     net.Listener
	http  *http.Server
	cache *tokenCache
	base  url.URL
}

// Listen makes a server listening on cfg.Addr; it serves once Serve runs.
func Listen(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Minute
	}
	if cfg.StreamCreationTimeout == 0 {
		cfg.StreamCreationTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 4 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Runtime == nil {
		return nil, errors.New("stream: no runtime")
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("streaming server: listen on %s: %w (give another --streaming-address)", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, l: l, cache: newTokenCache(cfg.TokenTTL)}
	s.base = url.URL{Scheme: "http", Host: urlHost(l.Addr().(*net.TCPAddr))}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{token}", s.serveExec)
	mux.HandleFunc("/attach/{token}", s.serveAttach)
	mux.HandleFunc("/portforward/{token}", s.servePortForward)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	return s, nil
}

// urlHost is the host:port URLs name: the address listened on, with an
// unspecified address (0.0.0.0, ::) named as the loopback, which reaches
// it from this machine.
func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Serve serves connections until Close; it then returns nil.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("streaming server: %w", err)
	}
	return nil
}

// Close stops listening. Sessions under way (their connections are
// hijacked from the HTTP server) run on until they end.
func (s *Server) Close() error { return s.http.Close() }

// url issues a token for req and returns the URL of kind naming it.
func (s *Server) url(kind string, req any) (string, error) {
	tok, err := s.cache.Insert(req)
	if err != nil {
		return "", grpcstatus.Error(codes.ResourceExhausted, err.Error())
	}
	u := s.base
	u.Path = "/" + kind + "/" + tok
	return u.String(), nil
}

// checkStreams is kubelet's check of an exec or attach request's
// streams.
func checkStreams(stdin, stdout, stderr, tty bool) error {
	switch {
	case !stdin && !stdout && !stderr:
		return grpcstatus.Error(codes.InvalidArgument, "one of stdin, stdout, or stderr must be set")
	case tty && stderr:
		return grpcstatus.Error(codes.InvalidArgument, "tty and stderr cannot both be true (a terminal has one output)")
	}
	return nil
}

// GetExec issues the URL of an exec request (the caller has checked the
// container).
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := checkStreams(req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty()); err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, grpcstatus.Error(codes.InvalidArgument, "no command to exec given")
	}
	u, err := s.url("exec", req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecResponse{Url: u}, nil
}

// GetAttach issues the URL of an attach request.
func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := checkStreams(req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty()); err != nil {
		return nil, err
	}
	u, err := s.url("attach", req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.AttachResponse{Url: u}, nil
}

// GetPortForward issues the URL of a port forward request (the ports
// come with each connection the client makes on it).
func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	u, err := s.url("portforward", req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PortForwardResponse{Url: u}, nil
}

// consume returns the request behind the URL's token, answering 404 when
// there is none (unknown, used or expired).
func consume[T any](s *Server, w http.ResponseWriter, r *http.Request) (T, bool) {
	var zero T
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return zero, false
	}
	req, ok := s.cache.Consume(r.PathValue("token"))
	if t, isT := req.(T); ok && isT {
		return t, true
	}
	http.Error(w, "unknown, used or expired streaming token: ask the runtime for a new URL", http.StatusNotFound)
	return zero, false
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	req, ok := consume[*runtimeapi.ExecRequest](s, w, r)
	if !ok {
		return
	}
	o := remoteOptions{stdin: req.Stdin, stdout: req.Stdout, stderr: req.Stderr, tty: req.Tty}
	s.serveRemoteCommand(w, r, o, "error executing command in container", func(ctx context.Context, st *remoteStreams) error {
		return s.cfg.Runtime.Exec(ctx, req.ContainerId, req.Cmd, st.stdin, st.stdout, st.stderr, req.Tty, st.resize)
	})
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	req, ok := consume[*runtimeapi.AttachRequest](s, w, r)
	if !ok {
		return
	}
	o := remoteOptions{stdin: req.Stdin, stdout: req.Stdout, stderr: req.Stderr, tty: req.Tty}
	s.serveRemoteCommand(w, r, o, "error attaching to container", func(ctx context.Context, st *remoteStreams) error {
		return s.cfg.Runtime.Attach(ctx, req.ContainerId, st.stdin, st.stdout, st.stderr, req.Tty, st.resize)
	})
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	req, ok := consume[*runtimeapi.PortForwardRequest](s, w, r)
	if !ok {
		return
	}
	s.portForward(w, r, req.PodSandboxId)
}
