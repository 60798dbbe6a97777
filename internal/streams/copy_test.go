package streams

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// Output written before the deadline is copied even when the copy starts
// after it; a writer that stays open does not keep the copy waiting.
func TestCopyBufferedKeepsWhatWasWritten(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The writer is held open, as by a process left in the background;
	// what it wrote fits in the pipe's buffer.
	defer w.Close()
	want := bytes.Repeat([]byte("output\n"), 5000)
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(-time.Second))
	var got bytes.Buffer
	if _, err := CopyBuffered(&got, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("copied %d bytes, want the %d written", got.Len(), len(want))
	}
}
