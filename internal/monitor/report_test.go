package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What WriteReport and WriteError write, ParseReport reads back: the
// word, and for a failure its status and one-line message.
func TestReportRoundTrip(t *testing.T) {
	var b strings.Builder
	WriteReport(&b, ReportListening)
	WriteReport(&b, ReportOK)
	WriteError(&b, 127, errors.New("exec: \"nope\":\nnot found"))
	lines := strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("report %q: want 3 lines", b.String())
	}
	for i, want := range []struct {
		word string
		code int
		msg  string
	}{{ReportListening, 0, ""}, {ReportOK, 0, ""}, {ReportError, 127, `exec: "nope": not found`}} {
		word, code, msg := ParseReport(lines[i])
		if word != want.word || code != want.code || msg != want.msg {
			t.Errorf("line %q: %q %d %q, want %+v", lines[i], word, code, msg, want)
		}
	}
	if word, code, msg := ParseReport("error oops\n"); word != ReportError || code != 125 || msg != "oops" {
		t.Errorf("a failure without a status: %q %d %q", word, code, msg)
	}
}

// ReaderGone tells a report pipe whose reader has exited from one still
// read, and is false for what is not a pipe.
func TestReaderGone(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ReaderGone(w) {
		t.Fatal("ReaderGone with the reader open")
	}
	r.Close()
	if !ReaderGone(w) {
		t.Fatal("ReaderGone false once the reader closed")
	}
	if ReaderGone(&strings.Builder{}) {
		t.Fatal("ReaderGone of a strings.Builder")
	}
}

// What was opened ahead for another container than the one the monitor
// is given goes, socket file included; Close is safe on nil and twice.
func TestPreparedKeepDropsAnotherContainers(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "attach.sock")
	for _, tc := range []struct {
		keep  string
		kept  bool
		label string
	}{{"c1", true, "its own"}, {"c2", false, "another's"}} {
		p := &Prepared{}
		p.SetSpec("c1", nil)
		if err := p.Open(filepath.Join(dir, "log"), 1<<20, 1, socket); err != nil {
			t.Fatal(err)
		}
		p.Keep(tc.keep)
		_, err := os.Stat(socket)
		if kept := p.Log != nil && p.Server != nil && err == nil; kept != tc.kept {
			t.Errorf("%s: kept %v (socket: %v), want %v", tc.label, kept, err, tc.kept)
		}
		p.Close()
		p.Close()
		if _, err := os.Stat(socket); !os.IsNotExist(err) {
			t.Errorf("%s: after Close the socket is still there (%v)", tc.label, err)
		}
	}
	var none *Prepared
	none.Close()
	none.Keep("c1")
}
