package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// portForwardProtocol is port forwarding over SPDY: for each connection
// the client forwards, it opens an error stream and then a data stream,
// both with headers port (the pod's port) and requestID (the pair's
// key; clients before requestID are paired by stream IDs: the data
// stream's is the error stream's + 2). The server dials the port in the
// pod's network namespace and copies the data stream to and from it; a
// failure is its message on the error stream. Both streams close when the
// connection in the pod ends.
const portForwardProtocol = "portforward.k8s.io"

// portForward serves one port forward URL in whichever form the client
// asks for: SPDY, SPDY tunnelled in a websocket, or websocket channels.
func (s *Server) portForward(w http.ResponseWriter, r *http.Request, podID string) {
	switch {
	case wsstream.IsWebSocketRequestWithTunnelingProtocol(r):
		s.portForwardTunnel(w, r, podID)
	case wsstream.IsWebSocketRequest(r):
		s.portForwardWebSocket(w, r, podID)
	default:
		if _, err := httpstream.Handshake(r, w, []string{portForwardProtocol}); err != nil {
			s.cfg.Log.Debug("port forward handshake refused", "path", r.URL.Path, "error", err)
			return
		}
		in := newPortStreams()
		conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, in.accept)
		if conn == nil {
			return // the upgrader answered
		}
		s.servePortForwardSPDY(conn, in, podID)
	}
}

// portStreams hands the streams a port forward connection accepts to
// its pairing loop (servePortForwardSPDY). The connection's reading
// goroutine calls accept; once the loop has returned (done), streams are
// refused, so that goroutine never waits on a loop that is gone.
type portStreams struct {
	arrived chan httpstream.Stream
	done    chan struct{}
}

func newPortStreams() *portStreams {
	return &portStreams{arrived: make(chan httpstream.Stream), done: make(chan struct{})}
}

// accept checks a stream's headers (refused streams are reset) and hands
// it to the pairing loop.
func (in *portStreams) accept(st httpstream.Stream, _ <-chan struct{}) error {
	if _, err := portHeader(st); err != nil {
		return err
	}
	switch typ := st.Headers().Get("streamType"); typ {
	case "data", "error":
	default:
		return fmt.Errorf("invalid stream type %q (want data or error)", typ)
	}
	select {
	case in.arrived <- st:
		return nil
	case <-in.done:
		return errors.New("the port forwarding has ended")
	}
}

// portHeader is the stream's port header.
func portHeader(st httpstream.Stream) (int32, error) {
	v := st.Headers().Get("port")
	if v == "" {
		return 0, fmt.Errorf("%q header is required", "port")
	}
	p, err := strconv.ParseUint(v, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("unable to parse %q as a port: want 1-65535", v)
	}
	return int32(p), nil
}

// streamPair is one forwarded connection's streams as they arrive.
type streamPair struct {
	id          string
	data, error httpstream.Stream
	complete    chan struct{} // closed when both are there
}

// servePortForwardSPDY pairs the streams arriving on conn and forwards
// each complete pair, until the connection closes. A pair not complete
// within StreamCreationTimeout is dropped with an error. When the
// connection closes, the forwards under way end with it.
func (s *Server) servePortForwardSPDY(conn httpstream.Connection, in *portStreams, podID string) {
	conn.SetIdleTimeout(s.cfg.IdleTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		close(in.done)
		cancel()
		wg.Wait()
	}()
	var mu sync.Mutex
	pairs := map[string]*streamPair{}
	drop := func(p *streamPair) {
		mu.Lock()
		delete(pairs, p.id)
		mu.Unlock()
	}
	for {
		var st httpstream.Stream
		select {
		case <-conn.CloseChan():
			return
		case st = <-in.arrived:
		}
		id := requestID(st)
		mu.Lock()
		p := pairs[id]
		if p == nil {
			p = &streamPair{id: id, complete: make(chan struct{})}
			pairs[id] = p
			wg.Go(func() {
				t := time.NewTimer(s.cfg.StreamCreationTimeout)
				defer t.Stop()
				select {
				case <-p.complete:
				case <-t.C:
					drop(p)
					s.cfg.Log.Warn("port forward: timed out waiting for the streams of a connection", "request", id)
					if p.error != nil {
						fmt.Fprintf(p.error, "timed out waiting for the streams of request %s", id)
						p.error.Close()
					}
					if p.data != nil {
						p.data.Reset()
					}
				case <-ctx.Done():
				}
			})
		}
		var dup bool
		if st.Headers().Get("streamType") == "data" {
			dup, p.data = p.data != nil, st
		} else {
			dup, p.error = p.error != nil, st
		}
		done := p.data != nil && p.error != nil
		mu.Unlock()
		if dup {
			s.cfg.Log.Warn("port forward: a connection's stream arrived twice", "request", id)
			st.Reset()
			continue
		}
		if done {
			close(p.complete)
			drop(p)
			port, _ := portHeader(p.data)
			wg.Go(func() { s.forward(ctx, podID, port, p.data, p.error) })
		}
	}
}

// requestID is the key of a stream's pair: its requestID header, or from
// a client too old to send one, the error stream's ID.
func requestID(st httpstream.Stream) string {
	if id := st.Headers().Get("requestID"); id != "" {
		return id
	}
	id := st.Identifier()
	if st.Headers().Get("streamType") == "data" {
		id -= 2
	}
	return strconv.FormatUint(uint64(id), 10)
}

// forward connects data to port in the pod and copies until either
// side ends; a failure is written on errStream, in kubelet's words (the
// pod named by its sandbox ID, no uid).
func (s *Server) forward(ctx context.Context, podID string, port int32, data io.ReadWriteCloser, errStream io.WriteCloser) {
	defer data.Close()
	defer errStream.Close()
	if err := s.cfg.Runtime.PortForward(ctx, podID, port, data); err != nil {
		s.cfg.Log.Warn("port forward failed", "pod", podID, "port", port, "error", err)
		fmt.Fprintf(errStream, "error forwarding port %d to pod %s, uid : %v", port, podID, err)
	}
}
