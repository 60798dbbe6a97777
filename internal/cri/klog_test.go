package cri

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// A closed connection's read error is debug, any other error stays one.
func TestClosedConnErrorsAreDebug(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(closedConnDebug{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	log.Error("Error on socket receive", "err", fmt.Errorf("read tcp: %w", net.ErrClosed))
	if buf.Len() != 0 {
		t.Errorf("a closed connection's error at info level: %q; want nothing", buf.String())
	}
	log.Error("Unable to write frame", "err", errors.New("broken"))
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "broken") {
		t.Errorf("another error: %q; want it logged as an error", buf.String())
	}
}
