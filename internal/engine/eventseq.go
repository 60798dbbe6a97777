package engine

import (
	"context"
	"fmt"
)

// LastEventSeq is the sequence number of the newest event (0: none), for
// a follower that wants only what happens from now on: Events(ctx, seq)
// then returns the events after it.
func (e *Engine) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := e.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read events: %w", err)
	}
	return seq, nil
}
