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

// A ReleaseAndWait told Busy while it waits goes on waiting, no longer
// timing out to drop the pages, and still returns once its descriptor has
// data.
func TestReleaseAndWaitBusy(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	done := make(chan struct{})
	go func() {
		ReleaseAndWait(int(r.Fd()))
		close(done)
	}()
	time.Sleep(150 * time.Millisecond) // past its first time-out
	Busy()
	select {
	case <-done:
		t.Fatal("returned before anything was written")
	case <-time.After(400 * time.Millisecond):
	}
	w.Write([]byte("x"))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting")
	}
}
