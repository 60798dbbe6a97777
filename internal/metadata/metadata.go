// Package metadata is hull's transactional state: image names, snapshot
// reference counts, containers. It is one SQLite database in WAL mode under
// the persistent root, so several hull processes (CLI invocations, the CRI
// server, monitors) can read and write at once and a crash at any point
// leaves either the old or the new state, never a mix.
//
// Each package that keeps state registers its schema as a Migration under
// its own name; Open applies the ones not yet applied, in order.
package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// FileName is the database's name under the persistent root.
const FileName = "hull.db"

// Migration is one schema step of one package. Steps of a package apply in
// Version order; a step's statements run in one transaction.
type Migration struct {
	Package    string
	Version    int
	Statements []string
}

var (
	regMu      sync.Mutex
	registered []Migration
)

// Register adds schema steps; packages call it from init.
func Register(m ...Migration) {
	regMu.Lock()
	defer regMu.Unlock()
	registered = append(registered, m...)
}

// DB is the open metadata database.
type DB struct {
	*sql.DB
	path string
}

// Open opens (creating if needed) the database under root and brings its
// schema up to date.
func Open(root string) (*DB, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("metadata: create %s: %w", root, err)
	}
	path := filepath.Join(root, FileName)
	// _txlock=immediate: writers take the lock at BEGIN, so two processes
	// never both read then fail to upgrade (SQLITE_BUSY mid-transaction).
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=30000&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate"
	sdb, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w", path, err)
	}
	db := &DB{DB: sdb, path: path}
	if err := db.migrate(); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// driverName is sqlite3 with every connection keeping the write-ahead log
// file when it closes (SQLITE_FCNTL_PERSIST_WAL), bounded to 4 MB: the
// last connection of a hull process otherwise deletes it, and the first
// write of the next command (every container start) creates it again, half
// a millisecond of file creation on its path.
const driverName = "sqlite3_hull"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if err := c.SetFileControlInt("main", sqlite3.SQLITE_FCNTL_PERSIST_WAL, 1); err != nil {
			return err
		}
		_, err := c.Exec("PRAGMA journal_size_limit = 4194304", nil)
		return err
	}})
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

func (db *DB) migrate() error {
	regMu.Lock()
	steps := append([]Migration(nil), registered...)
	regMu.Unlock()
	sort.SliceStable(steps, func(i, j int) bool {
		if steps[i].Package != steps[j].Package {
			return steps[i].Package < steps[j].Package
		}
		return steps[i].Version < steps[j].Version
	})
	if db.upToDate(steps) {
		return nil
	}
	return db.Tx(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_versions (package TEXT PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("metadata: schema table: %w", err)
		}
		for _, m := range steps {
			var have int
			err := tx.QueryRow(`SELECT version FROM schema_versions WHERE package = ?`, m.Package).Scan(&have)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("metadata: read schema version of %s: %w", m.Package, err)
			}
			if m.Version <= have {
				continue
			}
			for _, st := range m.Statements {
				if _, err := tx.Exec(st); err != nil {
					return fmt.Errorf("metadata: migrate %s to v%d: %w", m.Package, m.Version, err)
				}
			}
			if _, err := tx.Exec(`INSERT INTO schema_versions(package, version) VALUES(?, ?)
				ON CONFLICT(package) DO UPDATE SET version = excluded.version`, m.Package, m.Version); err != nil {
				return fmt.Errorf("metadata: record schema version of %s: %w", m.Package, err)
			}
		}
		return nil
	})
}

// upToDate reports, with one read, that every step is applied already:
// the common case, which then costs no write lock at every hull start.
func (db *DB) upToDate(steps []Migration) bool {
	rows, err := db.Query(`SELECT package, version FROM schema_versions`)
	if err != nil {
		return false // no table yet
	}
	defer rows.Close()
	have := map[string]int{}
	for rows.Next() {
		var p string
		var v int
		if rows.Scan(&p, &v) != nil {
			return false
		}
		have[p] = v
	}
	for _, m := range steps {
		if have[m.Package] < m.Version {
			return false
		}
	}
	return rows.Err() == nil
}

// Tx runs fn in one write transaction, committing if it returns nil. A busy
// database (another process mid-write past the busy timeout) is retried.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tx(ctx, fn)
		if err == nil || !isBusy(err) || attempt >= 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("metadata: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("metadata: commit: %w", err)
	}
	return nil
}

func isBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}
