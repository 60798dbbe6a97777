package streams

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"
)

// Output written before the deadline is read even when the reading starts
// after it; what a writer that stays open writes after the deadline is
// not waited for.
func TestUntilDeadlineKeepsWhatWasWritten(t *testing.T) {
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
	u := UntilDeadline(r)
	head := make([]byte, 10)
	if _, err := io.ReadFull(u, head); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("written after the deadline\n"))
	rest, err := io.ReadAll(u)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written before the deadline", len(got), len(want))
	}

	// CopyBuffered is the same as a copy.
	w.Write(want)
	r.SetReadDeadline(time.Now().Add(-time.Second))
	var got bytes.Buffer
	if _, err := CopyBuffered(&got, r); err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("written after the deadline\n"), want...); !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("CopyBuffered copied %d bytes, want the %d held", got.Len(), len(want))
	}
}
