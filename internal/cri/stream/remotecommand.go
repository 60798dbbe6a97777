package stream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The remote command protocols (exec, attach) over SPDY, newest first.
// Each version keeps the streams of the one before:
//
//   - channel.k8s.io (v1): error, stdin, stdout, stderr streams, told
//     apart by their streamType header; an error is its message on the
//     error stream. The server closes its side of stdin at once (the v1
//     client waits for that);
//   - v2.channel.k8s.io: stdin's end no longer closes it from the server;
//   - v3.channel.k8s.io: a resize stream with a tty (TermSize JSON);
//   - v4.channel.k8s.io: the error stream carries a metav1.Status, with
//     the command's exit status (status.go);
//   - v5.channel.k8s.io: v4 plus, over websockets only, a close signal
//     for stdin (SPDY has half-close already).
const (
	protocolV1 = "channel.k8s.io"
	protocolV2 = "v2.channel.k8s.io"
	protocolV3 = "v3.channel.k8s.io"
	protocolV4 = "v4.channel.k8s.io"
	protocolV5 = "v5.channel.k8s.io"
)

var remoteCommandProtocols = []string{protocolV5, protocolV4, protocolV3, protocolV2, protocolV1}

// The streamType header's values.
const (
	streamError  = "error"
	streamStdin  = "stdin"
	streamStdout = "stdout"
	streamStderr = "stderr"
	streamResize = "resize"
)

// remoteOptions are the streams a request asked for.
type remoteOptions struct{ stdin, stdout, stderr, tty bool }

// remoteStreams are what a Runtime call gets: nil for a stream not asked
// for.
type remoteStreams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	resize         <-chan TermSize
}

// remoteSession is an open remote command connection, of either
// transport.
type remoteSession struct {
	remoteStreams
	// gone is closed when the client's connection has closed.
	gone <-chan struct{}
	// finish reports st on the error stream and closes the connection.
	finish func(st status)
}

// serveRemoteCommand opens the session the request asks for (a websocket
// or SPDY upgrade), runs the command or attachment over its streams, and
// ends it with the status run returns. A run still going when the client
// goes away sees its context end.
func (s *Server) serveRemoteCommand(w http.ResponseWriter, r *http.Request, o remoteOptions, what string, run func(context.Context, *remoteStreams) error) {
	var sess *remoteSession
	if wsstream.IsWebSocketRequest(r) {
		sess = s.openWebSocket(w, r, o)
	} else {
		sess = s.openSPDY(w, r, o)
	}
	if sess == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sess.gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := run(ctx, &sess.remoteStreams)
	var exit *ExitError
	if err != nil && !errors.As(err, &exit) {
		s.cfg.Log.Warn("streaming session failed", "path", r.URL.Path, "error", err)
	}
	sess.finish(statusOf(err, what))
}

// arrival is a stream the client opened, and the channel closed once the
// server's reply to it is sent.
type arrival struct {
	stream    httpstream.Stream
	replySent <-chan struct{}
}

// acceptInto accepts the client's streams into ch, refusing those beyond
// its room: the SPDY connection calls it on its reading goroutine, which
// must never block.
func acceptInto(ch chan<- arrival) httpstream.NewStreamHandler {
	return func(st httpstream.Stream, replySent <-chan struct{}) error {
		select {
		case ch <- arrival{st, replySent}:
			return nil
		default:
			return errors.New("more streams than the protocol has")
		}
	}
}

// closedWhen is a channel closed when the SPDY connection closes.
func closedWhen(conn httpstream.Connection) <-chan struct{} {
	gone := make(chan struct{})
	go func() { <-conn.CloseChan(); close(gone) }()
	return gone
}

// openSPDY negotiates the protocol version, upgrades the connection to
// SPDY and waits (StreamCreationTimeout at most) for the client to open
// the streams the request asked for: error always, stdin, stdout, and
// stderr without a tty, resize with one (v3 on). Streams it did not ask
// for are accepted and left unused. nil: the client was answered or the
// connection closed, nothing to run.
func (s *Server) openSPDY(w http.ResponseWriter, r *http.Request, o remoteOptions) *remoteSession {
	protocol, err := httpstream.Handshake(r, w, remoteCommandProtocols)
	if err != nil {
		s.cfg.Log.Debug("streaming handshake refused", "path", r.URL.Path, "error", err)
		return nil
	}
	arrivals := make(chan arrival, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, acceptInto(arrivals))
	if conn == nil {
		return nil // the upgrader answered
	}
	conn.SetIdleTimeout(s.cfg.IdleTimeout)
	gone := closedWhen(conn)

	want := map[string]bool{streamError: true, streamStdin: o.stdin, streamStdout: o.stdout, streamStderr: o.stderr && !o.tty,
		streamResize: o.tty && protocol != protocolV1 && protocol != protocolV2}
	n := 0
	for _, asked := range want {
		if asked {
			n++
		}
	}
	got := map[string]httpstream.Stream{}
	var replies []<-chan struct{}
	var unused []httpstream.Stream // streams it did not ask for
	timeout := time.NewTimer(s.cfg.StreamCreationTimeout)
	defer timeout.Stop()
	for len(got) < n {
		select {
		case a := <-arrivals:
			typ := a.stream.Headers().Get("streamType")
			if want[typ] && got[typ] == nil {
				got[typ] = a.stream
				replies = append(replies, a.replySent)
			} else {
				unused = append(unused, a.stream)
			}
		case <-timeout.C:
			s.cfg.Log.Warn("streaming client did not open its streams in time", "path", r.URL.Path, "protocol", protocol, "timeout", s.cfg.StreamCreationTimeout)
			conn.Close()
			return nil
		case <-gone:
			return nil
		}
	}
	// Nothing is written on a stream before the client has its reply.
	for _, sent := range replies {
		select {
		case <-sent:
		case <-gone:
			return nil
		}
	}
	sess := &remoteSession{gone: gone}
	if st := got[streamStdin]; st != nil {
		sess.stdin = st
		if protocol == protocolV1 {
			st.Close() // our side: the v1 client waits for it
		}
	}
	if st := got[streamStdout]; st != nil {
		sess.stdout = st
	}
	if st := got[streamStderr]; st != nil {
		sess.stderr = st
	}
	if st := got[streamResize]; st != nil {
		sess.resize, _ = readResizes(st)
	}
	errStream := got[streamError]
	jsonStatus := protocol == protocolV4 || protocol == protocolV5
	// The status goes first: a v1 client returns as soon as its output
	// streams end, and sees the error only if its error stream ended
	// before (a race in that client, which kubelet's server has too).
	sess.finish = func(st status) {
		writeStatus(errStream, st, jsonStatus)
		errStream.Close()
		for _, typ := range []string{streamStdout, streamStderr} {
			if s := got[typ]; s != nil {
				s.Close()
			}
		}
		// The streams it did not ask for end too (the client waits for
		// the end of each it opened), also those that came late.
		for more := true; more; {
			select {
			case a := <-arrivals:
				unused = append(unused, a.stream)
			default:
				more = false
			}
		}
		for _, s := range unused {
			s.Close()
		}
		// The client closes the connection once it has the status and
		// the end of every stream it opened. Closing it first, while
		// the client still wrote its own streams' ends, made that write
		// fail ("broken pipe") now and then after a command that exits
		// at once; so the client goes first (in well under a
		// millisecond here), given closeGrace.
		select {
		case <-gone:
		case <-time.After(closeGrace):
		}
		conn.Close()
	}
	return sess
}

// closeGrace is how long a finished session waits for the client to close
// the connection before it closes it itself.
const closeGrace = time.Second
