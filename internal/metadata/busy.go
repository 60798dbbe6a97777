package metadata

/*
#include <unistd.h>

// The SQLite symbol used, declared here rather than through a header: the
// library is go-sqlite3's (its amalgamation, or the system's with -tags
// libsqlite3), linked into the same binary.
typedef struct sqlite3 sqlite3;
typedef int (*hull_busy_fn)(void *, int);
int sqlite3_busy_handler(sqlite3 *, hull_busy_fn, void *);

static long hull_busy_waits; // for the tests

// hull_busy is called by SQLite, with the number of times it was called
// before for this lock, while another connection holds the lock it
// needs. It waits 50 us at first, then 250 us, then a millisecond, and
// gives up (the statement fails with SQLITE_BUSY) after about 30 s, as
// busy_timeout 30000 did.
static int hull_busy(void *arg, int n) {
	(void)arg;
	if (n >= 100 + 30000) {
		return 0;
	}
	__atomic_add_fetch(&hull_busy_waits, 1, __ATOMIC_RELAXED);
	usleep(n < 20 ? 50 : n < 100 ? 250 : 1000);
	return 1;
}

static int hull_set_busy(sqlite3 *db) { return sqlite3_busy_handler(db, hull_busy, 0); }
static long hull_busy_count(void) { return __atomic_load_n(&hull_busy_waits, __ATOMIC_RELAXED); }
*/
import "C"

import (
	"reflect"

	"github.com/mattn/go-sqlite3"
)

// fineBusyWait gives connection c a busy handler that waits in steps of
// 50 us where SQLite's busy timeout waits 1, 2, 5, 10, 15 ms...: a write
// that meets another process's transaction (a monitor recording an exit,
// a spare recording a start: a fraction of a millisecond) then goes on
// as soon as it ends, where it slept a millisecond at least, and 8 at
// the third try (a CRI StopContainer took 13 ms so). false: go-sqlite3's
// connection no longer has the field this reads (the busy timeout set by
// the DSN then stays).
func fineBusyWait(c *sqlite3.SQLiteConn) bool {
	f := reflect.ValueOf(c).Elem().FieldByName("db")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return false
	}
	return C.hull_set_busy((*C.sqlite3)(f.UnsafePointer())) == 0
}

// busyWaits is how many times this process's busy handler has waited.
func busyWaits() int64 { return int64(C.hull_busy_count()) }
