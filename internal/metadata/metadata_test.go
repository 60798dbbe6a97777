package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// The database holds every container's environment: it and its log are
// 0600 from the first open, and an older hull's 0644 file is tightened.
func TestDatabaseIsPrivate(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO counters VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v, want 0600", name, st.Mode().Perm())
			}
		}
	}
	check()
	db.Close()
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		os.Chmod(filepath.Join(dir, name), 0o644)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check()
}

// A database emptied or overwritten beside the state it recorded is
// refused with a message that says what to do, and left as it was: a new
// empty one would silently orphan every image, snapshot and container.
func TestDamagedDatabaseIsRefused(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "garbage": strings.Repeat("not a database ", 500)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.MkdirAll(filepath.Join(dir, "containers", "abc"), 0o700); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, FileName+"-wal"))
			os.Remove(filepath.Join(dir, FileName+"-shm"))
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir)
			var damaged *DamagedError
			if !errors.As(err, &damaged) || !strings.Contains(err.Error(), "system check --repair") {
				t.Fatalf("open a damaged database: %v, want a DamagedError naming the repair", err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, FileName)); string(b) != content {
				t.Errorf("the damaged file was changed: %d bytes, had %d", len(b), len(content))
			}
		})
	}
	// An empty file in an empty root is a new database, not a damaged one.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), nil, 0o600)
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("empty file in an empty root: %v", err)
	}
	db.Close()
}

// An empty database file that another hull is making (the lock of its
// making held until its schema is written) is waited for, not refused as
// emptied: `system check --repair` sets the damaged file aside while a
// resumed monitor may make a new one. Released still empty, it is refused.
func TestDatabaseBeingMadeIsWaitedFor(t *testing.T) {
	for _, written := range []bool{true, false} {
		t.Run(fmt.Sprintf("written %v", written), func(t *testing.T) {
			// A database with its schema, to stand for the other hull's.
			src := t.TempDir()
			db, err := Open(src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			schema, err := os.ReadFile(filepath.Join(src, FileName))
			if err != nil || len(schema) == 0 {
				t.Fatalf("read the schema's file: %d bytes, %v", len(schema), err)
			}

			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "containers", "abc"), 0o700); err != nil {
				t.Fatal(err)
			}
			made, err := checkFile(dir, filepath.Join(dir, FileName))
			if err != nil || made == nil {
				t.Fatalf("checkFile of a missing file: %v, %v; want it made and locked", made, err)
			}
			opened := make(chan error, 1)
			go func() {
				db, err := Open(dir)
				if err == nil {
					db.Close()
				}
				opened <- err
			}()
			select {
			case err := <-opened:
				t.Fatalf("Open returned while the file was being made: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			if written {
				if err := os.WriteFile(filepath.Join(dir, FileName), schema, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			made.Close()
			err = <-opened
			var damaged *DamagedError
			switch {
			case written && err != nil:
				t.Errorf("Open once the schema was written: %v", err)
			case !written && !errors.As(err, &damaged):
				t.Errorf("Open of a file left empty: %v, want a DamagedError", err)
			}
		})
	}
}

// A write on a full disk first spends the reserve kept beside the
// database; when even that is gone, the error says the disk is full and
// where, and the database is intact once there is room again.
func TestFullDiskSpendsTheReserveThenSaysSo(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, reserveName)); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	for { // the last pages, byte by byte
		if _, err := filler.Write(make([]byte, 512)); err != nil {
			break
		}
	}
	big := strings.Repeat("x", 256<<10)
	var n int
	for n = 0; n < 100; n++ {
		if _, err = db.Exec(`INSERT INTO counters VALUES (?, 1)`, fmt.Sprint(n)+big); err != nil {
			break
		}
	}
	if n == 0 {
		t.Errorf("no write made it on a full disk: the reserve was not spent (%v)", err)
	}
	var full *DiskFullError
	if !errors.As(err, &full) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("write %d on a full disk: %v, want a DiskFullError naming %s", n, err, dir)
	}
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO counters VALUES ('tx', 1)` + strings.Repeat(" ", 10) + `;`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE counters SET name = name || ? WHERE name = 'tx'`, big)
		return err
	}); !errors.As(err, &full) {
		t.Errorf("transaction on a full disk: %v", err)
	}
	filler.Close()
	os.Remove(filler.Name())
	if _, err := db.Exec(`INSERT INTO counters VALUES ('after', 1)`); err != nil {
		t.Fatalf("after space came back: %v", err)
	}
	var count int
	if err := db.QueryRow(`SELECT count(*) FROM counters`).Scan(&count); err != nil || count != n+1 {
		t.Errorf("%d rows (%v), want %d", count, err, n+1)
	}
}

// A root whose name holds URI syntax ('#', '?', '%') keeps its database
// inside it (the fault suite's roots are named after subtests, "x#01").
func TestOpenRootWithURICharacters(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a#1?b%2")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE probe (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(root, FileName)); err != nil || st.Size() == 0 {
		t.Errorf("database not in the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "a")); !os.IsNotExist(err) {
		t.Errorf("a database was opened at the truncated path: %v", err)
	}
}

// A write that meets another connection's transaction waits in short
// steps (fineBusyWait), not SQLite's busy timeout's 1, 2, 5, 10 ms...:
// held for 5 ms, the lock is tried again tens of times, and the write
// goes through once it is released.
func TestBusyWriterWaitsInShortSteps(t *testing.T) {
	dir := t.TempDir()
	holder, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	other, err := Open(dir) // as another process's
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := holder.Begin() // _txlock=immediate: the write lock, now
	if err != nil {
		t.Fatal(err)
	}
	before := busyWaits()
	done := make(chan error, 1)
	go func() {
		_, err := other.Exec(`INSERT INTO counters VALUES ('busy', 1)`)
		done <- err
	}()
	// The other write waits once the busy handler is called (never, with
	// SQLite's own: it counts nothing); then the lock is held 5 ms more.
	for deadline := time.Now().Add(10 * time.Second); busyWaits() == before; {
		if time.Now().After(deadline) {
			t.Fatal("the other write never waited in hull's busy handler")
		}
		time.Sleep(100 * time.Microsecond)
	}
	before = busyWaits()
	time.Sleep(5 * time.Millisecond)
	if _, err := tx.Exec(`INSERT INTO counters VALUES ('holder', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiting write: %v", err)
	}
	// SQLite's own handler would have waited 3 times in 5 ms (1, 2, 5).
	if n := busyWaits() - before; n < 10 {
		t.Errorf("the waiting write waited %d times in 5 ms; want the busy handler's short steps", n)
	}
}
