package metadata

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func init() {
	Register(Migration{Package: "metadatatest", Version: 1, Statements: []string{
		`CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)`,
	}})
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO counters VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// The last close keeps the write-ahead log file for the next
	// process's first write (see driverName), everything in it
	// checkpointed into the database.
	if _, err := os.Stat(filepath.Join(dir, FileName+"-wal")); err != nil {
		t.Errorf("write-ahead log after the last close: %v", err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT n FROM counters WHERE name = 'a'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("row lost on reopen: n=%d err=%v", n, err)
	}
	var mode string
	db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
}

// Separate handles stand in for separate hull processes.
func TestConcurrentWritersFromSeparateHandles(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(dir)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			for i := 0; i < 25; i++ {
				err := db.Tx(context.Background(), func(tx *sql.Tx) error {
					var n int
					err := tx.QueryRow(`SELECT n FROM counters WHERE name = 'c'`).Scan(&n)
					if err == sql.ErrNoRows {
						_, err = tx.Exec(`INSERT INTO counters VALUES ('c', 1)`)
						return err
					} else if err != nil {
						return err
					}
					_, err = tx.Exec(`UPDATE counters SET n = ? WHERE name = 'c'`, n+1)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("tx: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	db, _ := Open(dir)
	defer db.Close()
	var n int
	db.QueryRow(`SELECT n FROM counters WHERE name = 'c'`).Scan(&n)
	if n != 200 {
		t.Fatalf("lost updates: n=%d, want 200", n)
	}
}
