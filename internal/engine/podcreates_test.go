package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"hull/internal/config"
)

// A pod's create refusals outlive hull-cri: an engine opened again over
// the same root (a restart) knows the pods that have them, so a create
// that then succeeds clears its refusal; a success in a pod without
// refusals writes nothing, and the last refusal cleared removes the file.
func TestRecordPodCreateAcrossARestart(t *testing.T) {
	root := t.TempDir()
	for _, id := range []string{"refused", "clean"} {
		if err := os.MkdirAll(filepath.Join(root, "pods", id), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	before := &Engine{cfg: config.Config{Root: root}}
	if err := before.RecordPodCreate("refused", "app", "busybox", errors.New("no such image"), "pull it"); err != nil {
		t.Fatal(err)
	}
	file := before.podCreateFile("refused")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the refusal was not recorded: %v", err)
	}

	after := &Engine{cfg: config.Config{Root: root}} // hull-cri started again
	after.LoadPodCreates()
	if err := after.RecordPodCreate("clean", "app", "busybox", nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(after.podCreateFile("clean")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a success in a pod without refusals left %s (%v)", after.podCreateFile("clean"), err)
	}
	if err := after.RecordPodCreate("refused", "app", "busybox", nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the restart, a create that succeeded left its refusal in %s (%v)", file, err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "pods", "*", "*")); len(m) != 0 {
		t.Errorf("files left: %v", m)
	}
}
