package streams

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Lines become CRI records: whole lines F, a line longer than maxLine in
// P pieces, CRLF trimmed, an unterminated tail flushed at the end.
func TestCopyStreamRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := OpenLog(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLine+10)
	var teed strings.Builder
	in := "one\r\ntwo\n" + long + "\ntail"
	l.CopyStream("stdout", strings.NewReader(in), func(b []byte) { teed.Write(b) })
	l.Close()
	if teed.String() != in {
		t.Errorf("tee got %d bytes, want %d", teed.Len(), len(in))
	}
	b, _ := os.ReadFile(path)
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		r, err := ParseLine(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		kind := "F"
		if r.Partial {
			kind = "P"
		}
		got = append(got, r.Stream+" "+kind+" "+r.Line[:min(len(r.Line), 5)])
	}
	want := []string{"stdout F one", "stdout F two", "stdout P xxxxx", "stdout F xxxxx", "stdout F tail"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("records %q, want %q", got, want)
	}
}

// The shim runs with its collector idle until a small limit: a log line
// must not allocate, or a chatty container would grow its supervisor.
func TestLogWriteDoesNotAllocate(t *testing.T) {
	l, err := OpenLog(filepath.Join(t.TempDir(), "log"), 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line := []byte("a line of output")
	l.write("stdout", line, false)
	if n := testing.AllocsPerRun(1000, func() { l.write("stdout", line, false) }); n != 0 {
		t.Errorf("%v allocations per log line", n)
	}
}
