package stream

import (
	"encoding/json"
	"io"
)

// TermSize is a terminal's size in characters, as the client's resize
// stream sends it: one JSON object per change, {"Width":W,"Height":H}.
type TermSize struct {
	Width  uint16
	Height uint16
}

// readResizes decodes the resize stream into sizes, a channel that is
// closed when the stream ends or holds something other than sizes; ended
// is closed once the stream has ended. A size nobody has taken yet is
// replaced by a newer one: only the last size matters, and the reader
// never blocks the connection.
func readResizes(r io.Reader) (sizes <-chan TermSize, ended <-chan struct{}) {
	ch := make(chan TermSize, 1)
	end := make(chan struct{})
	go func() {
		defer close(ch)
		dec := json.NewDecoder(r)
		for {
			var size TermSize
			if err := dec.Decode(&size); err != nil {
				io.Copy(io.Discard, r)
				close(end)
				return
			}
			select {
			case ch <- size:
			default:
				select {
				case <-ch:
				default:
				}
				ch <- size
			}
		}
	}()
	return ch, end
}
