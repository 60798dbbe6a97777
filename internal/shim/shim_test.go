package shim

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The pipes the monitor hands over arrive in blocking mode; the shim's
// files on them still take a read deadline, which is what ends the copy
// of a container's output after its exit (streams.AwaitOutputs).
func TestHandedOverPipesTakeADeadline(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil { // blocking
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	f := pollable(p[0], "stdout")
	defer f.Close()
	if err := f.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatalf("a handed-over pipe takes no read deadline: %v", err)
	}
}
