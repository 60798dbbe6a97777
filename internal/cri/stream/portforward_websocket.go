package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/websocket"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// tunnelProtocol is SPDY port forwarding carried in a websocket's binary
// messages (client-go's NewSPDYOverWebsocketDialer, kubectl's default
// since 1.31, `crictl port-forward --transport websocket`): once the
// websocket is up, the SPDY streams are those of portForwardProtocol.
const tunnelProtocol = "SPDY/3.1+" + portForwardProtocol

// portForwardTunnel accepts the websocket and serves SPDY port
// forwarding inside it until either side closes.
func (s *Server) portForwardTunnel(w http.ResponseWriter, r *http.Request, podID string) {
	websocket.Server{
		Handshake: func(c *websocket.Config, _ *http.Request) error {
			for _, p := range c.Protocol {
				if strings.TrimSpace(p) == tunnelProtocol {
					c.Protocol = []string{tunnelProtocol}
					return nil
				}
			}
			return fmt.Errorf("websocket protocols %v: this server tunnels only %s", c.Protocol, tunnelProtocol)
		},
		Handler: func(ws *websocket.Conn) {
			ws.PayloadType = websocket.BinaryFrame
			in := newPortStreams()
			conn, err := spdy.NewServerConnection(ws, in.accept)
			if err != nil {
				s.cfg.Log.Warn("port forward: SPDY in the websocket", "error", err)
				return
			}
			s.servePortForwardSPDY(conn, in, podID)
			conn.Close()
		},
	}.ServeHTTP(w, r)
}

// portForwardWebSocket is kubelet's websocket form of port forwarding:
// the ports are the request's port parameters (?port=80&port=443, or
// 80,443); each gets a data channel (2i) and an error channel (2i+1),
// whose first message is the port (2 bytes, little endian). One
// connection per port; the websocket closes when all have ended.
func (s *Server) portForwardWebSocket(w http.ResponseWriter, r *http.Request, podID string) {
	var ports []int32
	for _, v := range r.URL.Query()["port"] {
		for _, f := range strings.Split(v, ",") {
			p, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
			if err != nil || p == 0 {
				http.Error(w, fmt.Sprintf("port %q: want a port 1-65535", f), http.StatusBadRequest)
				return
			}
			ports = append(ports, int32(p))
		}
	}
	if len(ports) == 0 {
		http.Error(w, "give the ports to forward as query parameters (?port=80)", http.StatusBadRequest)
		return
	}
	channels := make([]wsstream.ChannelType, 0, 2*len(ports))
	for range ports {
		channels = append(channels, wsstream.ReadWriteChannel, wsstream.WriteChannel)
	}
	binaryProto := wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"":                         binaryProto,
		"v4.channel.k8s.io":        binaryProto,
		"v4.base64.channel.k8s.io": {Binary: false, Channels: channels},
	})
	conn.SetIdleTimeout(s.cfg.IdleTimeout)
	_, chans, err := conn.Open(w, r)
	if err != nil {
		s.cfg.Log.Debug("port forward websocket refused", "path", r.URL.Path, "error", err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i, port := range ports {
		data, errCh := chans[2*i], chans[2*i+1]
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], uint16(port))
		data.Write(b[:])
		errCh.Write(b[:])
		wg.Go(func() { s.forward(ctx, podID, port, data, errCh) })
	}
	wg.Wait()
}
