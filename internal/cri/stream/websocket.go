package stream

import (
	"net/http"

	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The remote command protocols over a websocket: each message starts
// with its channel's number, 0 stdin, 1 stdout, 2 stderr, 3 error,
// 4 resize (base64 variants: the number as a digit, the data base64).
// v5.channel.k8s.io adds the close signal (255, channel) with which the
// client ends stdin; v4 the metav1.Status on the error channel. kubectl
// ≥ 1.30 asks for v5 over a websocket first, and SPDY after.
const (
	wsStdin = iota
	wsStdout
	wsStderr
	wsError
	wsResize
)

// openWebSocket accepts the websocket and opens the channels the
// request asked for (error and resize always). nil: the handshake failed
// and the client was answered.
func (s *Server) openWebSocket(w http.ResponseWriter, r *http.Request, o remoteOptions) *remoteSession {
	channels := []wsstream.ChannelType{
		wsStdin:  pick(o.stdin, wsstream.ReadChannel),
		wsStdout: pick(o.stdout, wsstream.WriteChannel),
		wsStderr: pick(o.stderr, wsstream.WriteChannel),
		wsError:  wsstream.WriteChannel,
		wsResize: wsstream.ReadChannel,
	}
	binary := wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	base64 := wsstream.ChannelProtocolConfig{Binary: false, Channels: channels}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"":                                      binary,
		wsstream.ChannelWebSocketProtocol:       binary,
		wsstream.Base64ChannelWebSocketProtocol: base64,
		"v4." + wsstream.ChannelWebSocketProtocol:       binary,
		"v4." + wsstream.Base64ChannelWebSocketProtocol: base64,
		protocolV5: binary,
	})
	conn.SetIdleTimeout(s.cfg.IdleTimeout)
	protocol, chans, err := conn.Open(w, r)
	if err != nil {
		s.cfg.Log.Debug("websocket handshake refused", "path", r.URL.Path, "error", err)
		return nil
	}
	// An empty message on the first output channel tells the client the
	// streams are up.
	switch {
	case o.stdout:
		chans[wsStdout].Write(nil)
	case o.stderr:
		chans[wsStderr].Write(nil)
	default:
		chans[wsError].Write(nil)
	}
	sess := &remoteSession{}
	if o.stdin {
		sess.stdin = chans[wsStdin]
	}
	if o.stdout {
		sess.stdout = chans[wsStdout]
	}
	if o.stderr && !o.tty {
		sess.stderr = chans[wsStderr]
	}
	// The resize channel is read whether or not there is a tty: it ends
	// only when the connection does, which tells the session the client
	// is gone.
	resize, gone := readResizes(chans[wsResize])
	if o.tty {
		sess.resize = resize
	}
	sess.gone = gone
	jsonStatus := protocol == protocolV5 || protocol == "v4."+wsstream.ChannelWebSocketProtocol || protocol == "v4."+wsstream.Base64ChannelWebSocketProtocol
	sess.finish = func(st status) {
		writeStatus(chans[wsError], st, jsonStatus)
		conn.Close()
	}
	return sess
}

// pick is t when asked for, else a channel nothing crosses.
func pick(asked bool, t wsstream.ChannelType) wsstream.ChannelType {
	if asked {
		return t
	}
	return wsstream.IgnoreChannel
}
