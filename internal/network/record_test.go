package network

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A record is written whole even while another process's Reclaim removes
// the container's directory it finds without records (a concurrent
// `hull run` saw exactly this: "attachment record: open …/bridge.json.tmp:
// no such file or directory"), and no temporary file is ever seen in the
// container's directory.
func TestWriteRecordSurvivesReclaimRemovingItsDirectory(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(filepath.Join(dir, "root"), filepath.Join(dir, "run"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	var seenTemp atomic.Value
	go func() { // what Reclaim does to a directory without records
		defer close(done)
		for !stop.Load() {
			entries, _ := os.ReadDir(m.attachDir)
			for _, e := range entries {
				recs, _ := os.ReadDir(filepath.Join(m.attachDir, e.Name()))
				for _, r := range recs {
					if filepath.Ext(r.Name()) != ".json" {
						seenTemp.Store(r.Name())
					}
				}
				os.Remove(filepath.Join(m.attachDir, e.Name())) // if empty
			}
		}
	}()
	for i := 0; i < 2000; i++ {
		a := &Attachment{ContainerID: fmt.Sprintf("%064x", i), Network: "bridge"}
		if err := m.writeRecord(a); err != nil {
			stop.Store(true)
			<-done
			t.Fatalf("write %d: %v", i, err)
		}
		if _, err := m.readRecord(a.ContainerID, a.Network); err != nil {
			t.Errorf("read %d back: %v", i, err)
		}
		m.removeRecord(a)
	}
	stop.Store(true)
	<-done
	if name := seenTemp.Load(); name != nil {
		t.Errorf("a temporary file in a container's directory: %v", name)
	}
	if left, _ := os.ReadDir(m.tmpDir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
