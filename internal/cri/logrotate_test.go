package cri

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/streams"
)

// Log lines lost or torn around kubelet's rotation (kubernetes#64760,
// containerd#5282): a container writes numbered lines as fast as it can
// while the log is rotated kubelet's way (rename, ReopenContainerLog)
// every 5 ms; every line must be in exactly one file, whole, in order
// (the files read in the order they were renamed). Two writers: one
// write per line (busybox awk), and a file of lines made first and then
// copied out in bulk (cat: 64 KB writes, lines cut anywhere), which is
// as fast as the log can take them. The throughput is the log's own:
// its bytes over the span of its records' timestamps.
func TestLogRotationLosesNoLine(t *testing.T) {
	for _, w := range []struct {
		name  string
		lines int
		pad   int
		bulk  bool
	}{
		{"line by line", 300000, 120, false},
		{"in bulk", 100000, 1000, true},
	} {
		t.Run(w.name, func(t *testing.T) {
			pad := strings.Repeat("x", w.pad)
			gen := fmt.Sprintf(`awk 'BEGIN { for (i = 1; i <= %d; i++) printf "%%d %s\n", i }'`, w.lines, pad)
			if w.bulk {
				gen += " >/tmp/lines && cat /tmp/lines"
			}
			rotateWhileWriting(t, w.lines, pad, gen+"; sleep 600")
		})
	}
}

// rotateWhileWriting runs script, which writes lines numbered 1 to lines
// followed by a space and pad, rotates its log meanwhile, and checks that
// every line is there once, whole, in order.
func rotateWhileWriting(t *testing.T, lines int, pad, script string) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "rotate")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "writer", nil, "sh", "-c", script)
	startContainer(t, c, id)
	path := containerStatus(t, c, id).LogPath

	var rotated []string
	const interval = 5 * time.Millisecond // kubelet's: 10 s
	last := func(p string) string {       // the file's last line (its tail only)
		f, err := os.Open(p)
		if err != nil {
			return ""
		}
		defer f.Close()
		buf := make([]byte, 8<<10)
		st, _ := f.Stat()
		n, _ := f.ReadAt(buf, max(0, st.Size()-int64(len(buf))))
		s := strings.TrimRight(string(buf[:n]), "\n")
		return s[strings.LastIndexByte(s, '\n')+1:]
	}
	// The writer moves to the new file by its next line at most 10 ms
	// after the rename (streams.followEvery), so the last line can be in
	// any of the files renamed meanwhile (two seconds' worth: a loaded
	// host).
	end := fmt.Sprintf(" %d %s", lines, pad)
	finished := func() bool {
		files := append(rotated[max(0, len(rotated)-int(2*time.Second/interval)):], path)
		for _, p := range files {
			if strings.HasSuffix(last(p), end) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(50 * time.Second); !finished(); {
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not finish within 50 s (%d rotations)", len(rotated))
		}
		time.Sleep(interval)
		next := fmt.Sprintf("%s.%d", path, len(rotated)+1)
		if err := os.Rename(path, next); err != nil {
			continue // not made again yet
		}
		rotated = append(rotated, next)
		if _, err := c.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}

	want, size, holding := 1, int64(0), 0
	var first, final time.Time
	for _, p := range append(rotated, path) {
		file, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := file.Stat()
		size += st.Size()
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		if st.Size() > 0 {
			holding++
		}
		for sc.Scan() {
			rec, err := streams.ParseLine(sc.Text())
			if err != nil || rec.Stream != "stdout" || rec.Partial {
				t.Fatalf("%s: torn or bad line %q: %v", p, sc.Text(), err)
			}
			num, rest, _ := strings.Cut(rec.Line, " ")
			if n, err := strconv.Atoi(num); err != nil || n != want || rest != pad {
				t.Fatalf("%s: line %.80q, want line %d whole", p, rec.Line, want)
			}
			if first.IsZero() {
				first = rec.Time
			}
			final = rec.Time
			want++
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		file.Close()
	}
	if want != lines+1 {
		t.Errorf("%d lines read, want %d", want-1, lines)
	}
	if holding < 2 {
		// (It did before the writer checked every 10 ms: once a second.)
		t.Errorf("every line is in one file: the writer never moved to the reopened log")
	}
	span := final.Sub(first)
	t.Logf("%d lines, %d MB of log in %v (%.0f MB/s, by its timestamps) in %d of %d files: none lost or torn",
		lines, size>>20, span.Round(time.Millisecond), float64(size)/1e6/span.Seconds(), holding, len(rotated)+1)
}

// A symbolic link put at the log's path in the rotation's window (between
// kubelet's rename and the reopen) is not written through: the reopen
// fails, and the file it names stays as it was.
func TestReopenContainerLogRefusesSymlink(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "symlink")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "talker", nil, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	startContainer(t, c, id)
	path := containerStatus(t, c, id).LogPath
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("untouched\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	_, err := c.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("reopen through a symlink: %v; want FailedPrecondition naming the link", err)
	}
	time.Sleep(1500 * time.Millisecond) // past the writer's own check
	if b, _ := os.ReadFile(victim); string(b) != "untouched\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}
