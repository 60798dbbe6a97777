package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Two writers of one file (the command and a monitor making a missing
// config.json again) each put a whole file in place, never a mix or a
// truncated one, and leave no temporary file.
func TestWriteFileWholeWithTwoWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	a, b := bytes.Repeat([]byte("a"), 1<<18), bytes.Repeat([]byte("b"), 1<<12)
	var wg sync.WaitGroup
	for _, data := range [][]byte{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if err := writeFile(path, data); err != nil {
					t.Error(err)
					return
				}
				got, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					t.Errorf("read %d bytes (%v), want one whole file", len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 1 {
		t.Errorf("files left: %v", m)
	}
}
