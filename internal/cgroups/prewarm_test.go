package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// While warm, one thread of this process sits in hull's own freezer
// cgroup, rewriting its tid there; stopped (or past its time), it has
// moved back and the cgroup it made is gone.
func TestKeepWarm(t *testing.T) {
	mnt := filepath.Join(DefaultMountpoint, "freezer")
	if _, err := os.Stat(filepath.Join(mnt, "tasks")); err != nil {
		t.Skip("no cgroup v1 freezer on this host")
	}
	dir := filepath.Join(mnt, "hull-warm")
	tasks := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "tasks"))
		return strings.TrimSpace(string(b))
	}
	ours := func(tid string) bool {
		_, err := os.Stat(filepath.Join("/proc/self/task", tid))
		return tid != "" && err == nil
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	stop := KeepWarm(time.Minute)
	waitFor("a thread of ours in "+dir, func() bool { return ours(tasks()) })
	stop(true)
	if tid := tasks(); ours(tid) {
		t.Fatalf("after stop, thread %s is still in %s", tid, dir)
	}
	if _, err := os.Stat(dir); err == nil && tasks() == "" {
		t.Errorf("%s is left behind, empty", dir)
	}

	// Past max it ends by itself.
	KeepWarm(20 * time.Millisecond)
	waitFor("a thread of ours in "+dir, func() bool { return ours(tasks()) })
	waitFor("the warm-up to end by itself", func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
}
