package metadata

import (
	"context"
	"database/sql/driver"

	"github.com/mattn/go-sqlite3"
)

// The driver hull opens its database with: go-sqlite3's, with writes that
// run on the calling goroutine.
//
// go-sqlite3 runs a statement given a context that can be cancelled (every
// gRPC call's is) on a goroutine of its own, and waits for it on a channel
// so that it can interrupt it on cancellation: a goroutine started and a
// hand-off on the path of every such write (CreateContainer's BEGIN, for
// one; RemoveContainer's claim passes a context without cancellation for
// the same reason). hull's writes are a few rows and a few pages of log,
// and a busy database is bounded by the busy handler (busy.go, 30 s), not
// by the caller's deadline; so writes (Exec, BEGIN) drop the context's
// cancellation and run in place. Queries keep it: go-sqlite3 watches
// theirs without a goroutine (context.AfterFunc), and a long listing can
// still be interrupted.
type hullDriver struct{ sqlite3.SQLiteDriver }

func (d *hullDriver) Open(dsn string) (driver.Conn, error) {
	c, err := d.SQLiteDriver.Open(dsn)
	if err != nil {
		return nil, err
	}
	return &conn{c.(*sqlite3.SQLiteConn)}, nil
}

// conn is a go-sqlite3 connection whose writes run in place.
type conn struct{ *sqlite3.SQLiteConn }

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.SQLiteConn.ExecContext(context.WithoutCancel(ctx), query, args)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.SQLiteConn.BeginTx(context.WithoutCancel(ctx), opts)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.SQLiteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &stmt{s.(*sqlite3.SQLiteStmt)}, nil
}

// stmt is a prepared go-sqlite3 statement whose Exec runs in place.
type stmt struct{ *sqlite3.SQLiteStmt }

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.SQLiteStmt.ExecContext(context.WithoutCancel(ctx), args)
}
