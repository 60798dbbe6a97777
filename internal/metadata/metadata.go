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
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	sqlite3 "github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"

	"hull/internal/perm"
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
//
// The file is the record of every container and image under root, so a
// damaged one (emptied, or not a database) is refused rather than made
// anew: a fresh database would silently orphan the images, snapshots and
// running containers that are still there. `hull system check --repair`
// rebuilds it from them. The database holds every container's environment,
// so it and its log are 0600.
func Open(root string) (*DB, error) {
	if err := os.MkdirAll(root, perm.RootDir); err != nil {
		return nil, fmt.Errorf("metadata: create %s: %w", root, err)
	}
	path := filepath.Join(root, FileName)
	made, err := checkFile(root, path)
	if err != nil {
		return nil, err
	}
	// A file this process made stays locked until its schema is written
	// (see checkFile).
	defer made.Close()
	// _txlock=immediate: writers take the lock at BEGIN, so two processes
	// never both read then fail to upgrade (SQLITE_BUSY mid-transaction).
	// The path is escaped for the URI: a '?' or '#' in it (a root named
	// "a#1") would end the path there, and the database would be opened
	// at the shortened path, outside the root.
	dsn := "file:" + uriPath.Replace(path) + "?_journal_mode=WAL&_busy_timeout=30000&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=64"
	sdb, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w", path, err)
	}
	db := &DB{DB: sdb, path: path}
	db.keepReserve()
	if err := db.migrate(); err != nil {
		sdb.Close()
		if isDamaged(err) {
			return nil, &DamagedError{Path: path, Err: err}
		}
		return nil, err
	}
	return db, nil
}

// DamagedError is a database hull will not open: its content is lost or
// unreadable, and opening it anew would hide what is still on disk. Its
// class is errdefs.ErrDataLoss.
type DamagedError struct {
	Path string
	Err  error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("metadata: %s is damaged (%v); hull will not start on it, so that the images, snapshots and containers it recorded are not orphaned: "+
		"run `hull system check --repair` to rebuild it from what is on disk (it keeps the damaged file as %s.damaged-TIME), or restore it from a backup", e.Path, e.Err, filepath.Base(e.Path))
}

// Unwrap gives the class before the cause: errdefs.Resolve (which maps
// errors to gRPC codes) takes the first class it finds.
func (e *DamagedError) Unwrap() []error { return []error{errdefs.ErrDataLoss, e.Err} }

// ErrEmpty is the cause of a DamagedError for a database file left empty
// beside state it must have recorded.
var ErrEmpty = errors.New("the file is empty but the root holds images, snapshots, volumes or containers")

// checkFile makes a missing database file 0600 before SQLite creates it
// (SQLite gives its log files the database's mode), tightens one an older
// hull made 0644, and refuses one emptied beside the state it recorded.
//
// For a file it makes, it returns the lock of its making (createLocked),
// which the caller holds until it has written the schema: another hull
// finding the file empty meanwhile (a monitor resumed while
// `system check --repair` rebuilds the database) waits for that rather
// than taking a database being made for an emptied one.
func checkFile(root, path string) (made *os.File, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == unix.ENOENT {
		made, err := createLocked(path)
		if made != nil || err != nil {
			return made, err
		}
		// Made meanwhile by another hull.
		if err := unix.Stat(path, &st); err != nil {
			return nil, fmt.Errorf("metadata: %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", path, err)
	}
	if st.Mode&0o077 != 0 {
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, perm.File); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("metadata: make %s private: %w", p, err)
			}
		}
	}
	if st.Size == 0 && holdsState(root) && !madeMeanwhile(path) {
		return nil, &DamagedError{Path: path, Err: ErrEmpty}
	}
	return nil, nil
}

// createLocked makes the database file at path, empty and 0600, holding
// the lock of its making (makeLock) from before it appears until the
// caller closes what it returns, once the schema is written. nil, nil:
// another hull made it first.
//
// The lock is a file of its own: SQLite's locks on the database are
// POSIX (fcntl) locks, which a process loses on all its descriptors of
// the file as soon as it closes any one of them.
func createLocked(path string) (*os.File, error) {
	lock, err := makeLock(path, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(perm.File))
	if err != nil {
		lock.Close()
		if err == unix.EEXIST {
			return nil, nil
		}
		return nil, fmt.Errorf("metadata: create %s: %w", path, err)
	}
	unix.Close(fd)
	return lock, nil
}

// makeLock opens the lock of the making of the database at path and
// takes it (how: unix.LOCK_EX, blocking, or LOCK_SH|LOCK_NB).
func makeLock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path+".make-lock", os.O_RDWR|os.O_CREATE, perm.File)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("metadata: lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// madeMeanwhile reports whether the empty database file at path was being
// made by another hull: once that one's lock (createLocked's) is
// released, the file or its write-ahead log holds the schema. An emptied
// file has no such lock, and stays empty. A schema is written in
// milliseconds; a holder that takes longer than 5 s (stopped, or stuck)
// is not waited for.
func madeMeanwhile(path string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if lock, err := makeLock(path, unix.LOCK_SH|unix.LOCK_NB); err == nil {
			lock.Close()
			break
		}
	}
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return true
	}
	wal, err := os.Stat(path + "-wal")
	return err == nil && wal.Size() > 0
}

// holdsState reports whether root has what only a database that recorded
// it should sit beside: a container, a volume, a snapshot or an image.
func holdsState(root string) bool {
	for _, d := range []string{"containers", "volumes", "snapshots", "images/blobs/sha256"} {
		if entries, err := os.ReadDir(filepath.Join(root, d)); err == nil {
			for _, e := range entries {
				switch e.Name() {
				case "tmp", "locks", "trash":
					continue
				}
				return true
			}
		}
	}
	return false
}

// isDamaged reports SQLite errors that mean the file is not a usable
// database (as opposed to busy, full or read-only).
func isDamaged(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt
	}
	return false
}

// driverName is sqlite3 with every connection keeping the write-ahead log
// file when it closes (SQLITE_FCNTL_PERSIST_WAL), bounded to 4 MB: the
// last connection of a hull process otherwise deletes it, and the first
// write of the next command (every container start) creates it again, half
// a millisecond of file creation on its path.
const driverName = "sqlite3_hull"

func init() {
	sql.Register(driverName, &hullDriver{sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if err := c.SetFileControlInt("main", sqlite3.SQLITE_FCNTL_PERSIST_WAL, 1); err != nil {
			return err
		}
		fineBusyWait(c) // after the DSN's busy_timeout, which it replaces
		_, err := c.Exec("PRAGMA journal_size_limit = 4194304", nil)
		return err
	}}})
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
// database (another process mid-write past the busy timeout) is retried,
// and so is one that found the disk full, once the reserve is released.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tx(ctx, fn)
		if db.Full(err) {
			if db.releaseReserve() {
				continue
			}
			return db.fullError(err)
		}
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

// The reserve: a file of reserveSize bytes beside the database that is
// deleted the moment a write finds the disk full, so that what must be
// recorded then (a container's exit, a removal that frees the space) still
// is. The next Open that finds room makes it again. Without it a container
// that fills the disk leaves every monitor unable to record an exit and
// every command unable to make a claim.
const (
	reserveName = FileName + "-reserve"
	reserveSize = 2 << 20
)

// keepReserve makes the reserve if it is missing and there is room.
func (db *DB) keepReserve() {
	path := filepath.Join(filepath.Dir(db.path), reserveName)
	if _, err := os.Lstat(path); err == nil {
		return
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(perm.File))
	if err != nil {
		return
	}
	err = unix.Fallocate(fd, 0, 0, reserveSize)
	unix.Close(fd)
	if err != nil {
		os.Remove(path) // no room (or no fallocate): try again next time
	}
}

// releaseReserve deletes the reserve; false if there was none to free.
func (db *DB) releaseReserve() bool {
	return os.Remove(filepath.Join(filepath.Dir(db.path), reserveName)) == nil
}

// Full reports an error of a write that found the disk full.
func (db *DB) Full(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrFull || se.Code == sqlite3.ErrIoErr && errors.Is(se.SystemErrno, unix.ENOSPC)
	}
	var fe *DiskFullError
	return errors.As(err, &fe) || errors.Is(err, unix.ENOSPC)
}

// ExecContext is sql.DB's, retried once the reserve is released when the
// disk is full, and with an error that says so.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.DB.ExecContext(ctx, query, args...)
	if db.Full(err) {
		if db.releaseReserve() {
			res, err = db.DB.ExecContext(ctx, query, args...)
		}
		if db.Full(err) {
			return res, db.fullError(err)
		}
	}
	return res, err
}

// Exec is ExecContext without a context.
func (db *DB) Exec(query string, args ...any) (sql.Result, error) {
	return db.ExecContext(context.Background(), query, args...)
}

// RetryFull is for a write made another way (an UPDATE ... RETURNING read
// through QueryRow): after err, it reports whether to try once more (the
// reserve was released).
func (db *DB) RetryFull(err error) bool {
	return db.Full(err) && db.releaseReserve()
}

// DiskFullError is a write that found the disk holding the database full.
// Its class is errdefs.ErrResourceExhausted.
type DiskFullError struct {
	Dir  string
	Free uint64 // bytes free to unprivileged writers when it failed
	Err  error
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("the disk holding %s is full (%d bytes free): hull could not record the change (%v); "+
		"free space: remove the container that filled it (hull rm -f), unused images (hull image prune -a) or other files, and try again", e.Dir, e.Free, e.Err)
}

// Unwrap gives the class before the cause (see DamagedError.Unwrap).
func (e *DiskFullError) Unwrap() []error { return []error{errdefs.ErrResourceExhausted, e.Err} }

func (db *DB) fullError(err error) error {
	var fe *DiskFullError
	if errors.As(err, &fe) {
		return err
	}
	dir := filepath.Dir(db.path)
	var st unix.Statfs_t
	unix.Statfs(dir, &st)
	return &DiskFullError{Dir: dir, Free: st.Bavail * uint64(st.Bsize), Err: err}
}

// uriPath escapes the characters that end or change a path in an SQLite
// file: URI.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
