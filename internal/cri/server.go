// Package cri is hull's Container Runtime Interface: a gRPC server for
// k8s.io/cri-api v1 (RuntimeService and ImageService) over the engine,
// for kubelet, crictl and critest. It is the engine behind a gRPC front
// end: the same database, image store, snapshots and monitors the CLI
// uses, so an image kubelet pulls is one `hull images` lists.
//
// Lifecycle: New takes an open engine; Serve listens on a unix socket
// (removing a stale one a killed server left), serves until its context
// ends (hull-cri cancels it on SIGTERM/SIGINT), then stops gracefully and
// removes the socket. The streaming server (the URLs of Exec, Attach and
// PortForward) listens on TCP for the same span. Containers do not depend
// on the server: each has its monitor, so they keep running while it is
// stopped or restarted.
//
// What is served today: Version, Status, RuntimeConfig, every
// ImageService RPC, the pod
// sandbox RPCs (sandbox.go), the container RPCs, ExecSync and
// UpdateContainerResources (containers.go) with image volumes
// (imagevolume.go), Exec, Attach and PortForward (streaming.go, over
// package stream), container and sandbox stats (stats.go, podstats.go),
// metrics (metrics.go), GetContainerEvents (events.go), the pod network
// and UpdateRuntimeConfig (cninet.go),
// ReopenContainerLog (logs.go), the Stream* lists (streams.go), and
// CheckpointContainer and CheckpointPod (checkpoint.go, with CRIU); every
// other RPC answers codes.Unimplemented saying so (see docs/cri.md for
// the plan and its order). With Options.NRI, Serve also serves NRI
// plugins (nri.go) until it returns.
package cri

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/stream"
	"hull/internal/engine"
	"hull/internal/trace"
)

// DefaultListen is where kubelet's containerRuntimeEndpoint points.
const DefaultListen = "unix:///run/hull/cri.sock"

// RuntimeName and APIVersion are what Version reports.
const (
	RuntimeName = "hull"
	APIVersion  = "v1"
)

// Options configure a Server.
type Options struct {
	// Version is hull's version (Version's runtime_version).
	Version string
	// Root and RunRoot are the engine's roots: ImageFsInfo reports the
	// filesystem of Root, Status's verbose info both.
	Root, RunRoot string
	// RemovalIntents makes RemoveContainer answer before its claim, once
	// the removal is recorded in the intents file under Root (intents.go):
	// for the one long-lived server of a root (hull cri serve), whose
	// Recover carries out what a killed one answered for. Without it (an
	// in-process server: hull kube's supervisors, several per root) the
	// answer waits for the claim.
	RemovalIntents bool
	// PinnedImages are image names kubelet's image GC must never remove
	// (ImageStatus and ListImages report them pinned), as CRI-O's
	// pinned_images.
	PinnedImages []string
	// CNIConfDir is the CNI configuration directory whose first
	// conflist is the pod network (cninet.go); "" puts sandboxes on
	// hull's default network. CNIBinDirs are the plugin directories the
	// engine searches, for Status to report.
	CNIConfDir string
	CNIBinDirs []string
	// NRI, when set, serves NRI plugins (nri.go).
	NRI *NRIOptions
	// StreamingAddress is the TCP address the streaming server (Exec,
	// Attach, PortForward URLs) listens on (default 127.0.0.1:0: the
	// loopback, on a port the kernel picks).
	StreamingAddress string
	// Spares is how many warm spare monitors the server keeps for
	// CreateContainer to bind and StartContainer to hand its container
	// (spares.go); 0: none, each start starts its monitor.
	Spares int
	// Log receives one debug line per call (method, time, code) and a
	// warning per failed call other than not-found and unimplemented
	// (default: discard).
	Log *slog.Logger
}

// Server is the CRI service over one open engine. Its methods may run
// concurrently, as gRPC calls them.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	eng  *engine.Engine
	opts Options
	cpu  cpuRates // previous CPU readings (stats.go)
	// imageVolumes serializes mounting and releasing image volumes
	// (imagevolume.go).
	imageVolumes sync.Mutex
	net          podNet         // the pod network's state (cninet.go)
	nri          *nriRuntime    // nil: NRI is off
	stream       *stream.Server // from Serve on (streaming.go)
	// users keeps each container's process user (ContainerStatus reads
	// it from config.json, which a status call would otherwise parse
	// whole every time): container ID -> *runtimeapi.ContainerUser,
	// dropped by RemoveContainer and RemovePodSandbox (groups.go).
	users sync.Map
	// spares are the warm spare monitors (spares.go; nil: none).
	spares *sparePool
	// records is the in-memory view the status and list calls answer
	// from (records.go), made on first use; recordsMu guards its making.
	recordsMu sync.Mutex
	records   *engine.View
	// pulls hands back the memory image pulls took (pullmem.go).
	pulls pullMemory
	// intents records the removals RemoveContainer answered before
	// claiming them (intents.go), opened at the first; nil without a
	// root (Options.Root) or if it cannot be: removals claim first then.
	intentsOnce sync.Once
	intents     *removalIntents
	// listedContainers and listedPods keep the list calls' messages
	// (listcache.go).
	listedContainers listCache[*engine.Container, *runtimeapi.Container]
	listedPods       listCache[*engine.Pod, *runtimeapi.PodSandbox]
}

// New makes the service over eng, which the caller keeps open while the
// server serves and closes afterwards.
func New(eng *engine.Engine, o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	eng.LoadPodCreates() // which pods have create refusals (recordCreate)
	return &Server{eng: eng, opts: o, spares: newSparePool(eng, o.Spares)}
}

// SocketPath is the path of a "unix://PATH" (or bare PATH) endpoint.
func SocketPath(listen string) (string, error) {
	p := listen
	if scheme, rest, ok := strings.Cut(listen, "://"); ok {
		if scheme != "unix" {
			return "", fmt.Errorf("--listen %q: only unix:// endpoints are served (kubelet's containerRuntimeEndpoint is a unix socket)", listen)
		}
		p = rest
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("--listen %q: give an absolute socket path, e.g. %s", listen, DefaultListen)
	}
	return p, nil
}

// Serve serves the CRI on the unix socket listen names until ctx ends,
// then stops (letting calls in flight finish for a few seconds) and
// removes the socket. ready, if not nil, is called once the socket
// accepts connections.
func (s *Server) Serve(ctx context.Context, listen string, ready func()) error {
	path, err := SocketPath(listen)
	if err != nil {
		return err
	}
	l, err := listenUnix(path)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.spares.fill()
	defer s.spares.close() // after the calls in flight
	if err := s.startNRI(ctx); err != nil {
		l.Close()
		return err
	}
	defer s.nri.stop()
	stopStreaming, err := s.startStreaming()
	if err != nil {
		l.Close()
		return err
	}
	defer stopStreaming()
	g := s.GRPCServer()
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	if ready != nil {
		ready()
	}
	select {
	case err := <-done:
		return fmt.Errorf("cri: serve %s: %w", path, err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		g.Stop() // a PullImage of a large image does not hold the exit
	}
	return nil
}

// GRPCServer is a gRPC server with both CRI services registered, for
// callers that bring their own listener.
func (s *Server) GRPCServer() *grpc.Server {
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.unaryErrors),
		grpc.ChainStreamInterceptor(s.streamErrors),
		// kubelet's client sends and accepts up to 16 MiB.
		grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20),
	)
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	return g
}

// listenUnix listens on path, replacing a socket nothing answers on (a
// killed server's) and refusing one a live server holds.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("cri: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("cri: %s exists and is not a socket: remove it or choose another --listen", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("cri: %s: another server is listening there (stop it, or choose another --listen)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cri: remove stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cri: listen on %s: %w", path, err)
	}
	// Only root may drive the runtime: the socket is as powerful as root.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("cri: %w", err)
	}
	return l, nil
}

// unaryErrors gives every error a gRPC status (see grpcError) and logs
// the call.
func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	if trace.On() {
		m := path.Base(info.FullMethod)
		trace.Mark("rpc: " + m)
		defer trace.Mark("rpc: " + m + " answered")
	}
	resp, err := handler(ctx, req)
	if err != nil {
		err = grpcError(info.FullMethod, err)
		resp = nil
	}
	s.logCall(info.FullMethod, start, err)
	return resp, err
}

func (s *Server) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	if err != nil {
		err = grpcError(info.FullMethod, err)
	}
	s.logCall(info.FullMethod, start, err)
	return err
}

func (s *Server) logCall(method string, start time.Time, err error) {
	st := status.Convert(err)
	s.opts.Log.Debug("rpc", "method", path.Base(method), "took", time.Since(start), "code", st.Code())
	switch st.Code() {
	case codes.OK, codes.NotFound, codes.Unimplemented, codes.Canceled, codes.DeadlineExceeded:
	default:
		s.opts.Log.Warn("rpc failed", "method", path.Base(method), "code", st.Code(), "error", st.Message())
	}
}

// notYet is the message of an RPC hull does not serve yet.
func notYet(method string) string {
	return fmt.Sprintf("hull cri: %s is not implemented yet (see docs/cri.md for what this server serves and what comes next)", method)
}

// errNotYet is the Unimplemented status for method (the short name).
func errNotYet(method string) error { return status.Error(codes.Unimplemented, notYet(method)) }
