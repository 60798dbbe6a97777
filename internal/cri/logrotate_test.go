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
// every 50 ms; every line must be in exactly one file, whole, in order
// (the files read in the order they were renamed).
func TestLogRotationLosesNoLine(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "rotate")
	podID := runSandbox(t, c, pod)
	const lines = 100000
	pad := strings.Repeat("x", 120)
	script := fmt.Sprintf(`awk 'BEGIN { for (i = 1; i <= %d; i++) printf "%%d %s\n", i }'; sleep 600`, lines, pad)
	id := createContainer(t, c, f, podID, pod, "writer", nil, "sh", "-c", script)
	startContainer(t, c, id)
	path := containerStatus(t, c, id).LogPath

	var rotated []string
	const interval = 50 * time.Millisecond // kubelet's: 10 s
	start := time.Now()
	last := func(p string) string {
		data, _ := os.ReadFile(p)
		s := strings.TrimRight(string(data), "\n")
		return s[strings.LastIndexByte(s, '\n')+1:]
	}
	// The writer moves to the new file by its next line after at most a
	// second (streams.LogWriter.follow), so the last line can be in any
	// of the files renamed in that second.
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
	elapsed := time.Since(start)

	want, size := 1, int64(0)
	for _, p := range append(rotated, path) {
		file, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := file.Stat()
		size += st.Size()
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			rec, err := streams.ParseLine(sc.Text())
			if err != nil || rec.Stream != "stdout" || rec.Partial {
				t.Fatalf("%s: torn or bad line %q: %v", p, sc.Text(), err)
			}
			num, rest, _ := strings.Cut(rec.Line, " ")
			if n, err := strconv.Atoi(num); err != nil || n != want || rest != pad {
				t.Fatalf("%s: line %q, want line %d whole", p, rec.Line, want)
			}
			want++
		}
		file.Close()
	}
	if want != lines+1 {
		t.Errorf("%d lines read, want %d", want-1, lines)
	}
	t.Logf("%d lines, %d MB of log in %v (%.0f MB/s) through %d rotations: none lost or torn",
		lines, size>>20, elapsed.Round(time.Millisecond), float64(size)/1e6/elapsed.Seconds(), len(rotated))
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
