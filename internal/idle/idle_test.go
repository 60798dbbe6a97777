package idle

import (
	"os"
	"testing"
	"time"
)

// ReleaseAndWait returns once its descriptor has data, and once its writer
// is gone, and not before either.
func TestReleaseAndWaitReturnsOnDataAndOnEnd(t *testing.T) {
	for _, end := range []string{"data", "writer closed"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			ReleaseAndWait(int(r.Fd()))
			close(done)
		}()
		select {
		case <-done:
			t.Fatalf("%s: returned before anything was written", end)
		case <-time.After(200 * time.Millisecond):
		}
		if end == "data" {
			w.Write([]byte("x"))
		} else {
			w.Close()
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting", end)
		}
		r.Close()
		w.Close()
	}
}
