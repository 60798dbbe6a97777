package cri

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"k8s.io/klog/v2"
)

// routeKlog sends what the streaming transports (k8s.io/streaming,
// spdystream) report through klog into log, instead of klog's own format
// on stderr. A read that failed because this process closed the
// connection (the server ends every websocket session so) is not an
// error: it is logged at debug level.
func routeKlog(log *slog.Logger) {
	klog.SetSlogLogger(slog.New(closedConnDebug{log.Handler()}))
}

// closedConnDebug lowers records whose error is net.ErrClosed to debug.
type closedConnDebug struct{ slog.Handler }

func (h closedConnDebug) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		closed := false
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && errors.Is(err, net.ErrClosed) {
				closed = true
			}
			return !closed
		})
		if closed {
			if !h.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			r.Level = slog.LevelDebug
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h closedConnDebug) WithAttrs(as []slog.Attr) slog.Handler {
	return closedConnDebug{h.Handler.WithAttrs(as)}
}

func (h closedConnDebug) WithGroup(name string) slog.Handler {
	return closedConnDebug{h.Handler.WithGroup(name)}
}
