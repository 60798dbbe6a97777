// Package engine is the API every front end of hull (the CLI, the CRI
// server, `hull kube`) calls: images (pull, push, list, remove, import,
// mount), the container lifecycle (create, start, stop, kill, remove,
// wait, diagnose), top, stats, disk usage and one garbage collector, over
// the image service, the snapshotter (each container's writable layer),
// the spec generator and the runtime, which Open opens together.
// The engine is daemonless: every hull command opens it, reads and changes
// the containers table in transactions, and leaves. A running container is
// supervised by its monitor process (internal/monitor), which the engine
// spawns and which records into the same table.
//
// Each container has
//
//	<root>/containers/<id>/config.json    its OCI spec (the bundle)
//	<root>/containers/<id>/container.log  its output, CRI format
//	<run-root>/containers/<id>/rootfs      the mounted writable snapshot
//	<run-root>/containers/<id>/attach.sock its monitor's attach socket
//
// A monitor that dies, or a host that reboots, is noticed by the next
// command that looks at the container: it is marked exited with an Error
// saying why, and what it left (processes, cgroups) is cleaned up.
package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"hull/internal/config"
	"hull/internal/image"
	"hull/internal/metadata"
	"hull/internal/network"
	"hull/internal/perm"
	"hull/internal/runtime"
	"hull/internal/shim"
	"hull/internal/snapshot"
	"hull/internal/trace"
)

// Engine manages the containers under one root.
type Engine struct {
	cfg    config.Config
	db     *metadata.DB
	images *image.Service
	snap   *snapshot.Snapshotter
	rt     *runtime.Runtime

	// MonitorCommand returns the command that runs `hull monitor ID`
	// (the CLI re-executes itself). Required for Start.
	MonitorCommand func(id string, waitAttach bool) *exec.Cmd
	// Backoff overrides the restart backoff (kubelet's 10s doubling to
	// 5m) — tests use short ones.
	BackoffBase, BackoffMax time.Duration
	// InitPath is the static binary bind-mounted as the container's init
	// for --init (hull-init).
	InitPath string
	// ShimPath is the static hull-shim a detached container's monitor
	// hands over to once the container runs ("" or missing: the monitor
	// supervises it itself).
	ShimPath string
	// HullCommand returns hull's command line (path first) running args
	// with this engine's global flags: what a supervisor that outlives
	// its caller runs to reach the engine (hull-shim exec records an
	// exec'd process's end with "exec-exited ID STATUS"). nil, or no
	// ShimPath: an exec'd process is its caller's child (see ExecProcess).
	HullCommand func(args ...string) []string
	// Warn receives non-fatal messages for the user.
	Warn func(string)

	ownDB bool // Open opened db, and Close closes it
	// longLived: Options.LongLived.
	longLived bool
	spare     *Spare // see UseSpare
	// unwritten are the containers whose config.json Create left being
	// written (see Create); Close waits for them.
	unwritten []*Container

	mu         sync.Mutex
	background bool                   // see PurgeInBackground
	concurrent bool                   // see PurgeConcurrently
	purging    sync.WaitGroup         // PurgeConcurrently's deletions, for Close
	trash      []string               // set aside, for Close to delete
	swept      bool                   // purge has swept what killed removers left
	net        *network.Manager       // see networks
	netSeen    map[string]seenNetwork // see inspectNetwork

	deferred map[string]*later   // see RemoveDeferred (under mu)
	creating map[string]creation // see deferCreation (under mu)

	podCreatesMu sync.Mutex // RecordPodCreate's read-modify-write of a pod's refusals
	// podRefused holds the ids of the pods with recorded create refusals
	// (see LoadPodCreates), so that a create that succeeds in any other
	// pod touches no file and takes no lock.
	podRefused     sync.Map // pod id → struct{}
	podRefusedOnce sync.Once

	holders holderCache // see podHolder
}

// Options are what the front end that opens an engine decides for it.
type Options struct {
	// InitPath is the static hull-init: bind-mounted as the container's
	// init for --init, and, when it is an executable file, what the
	// runtime starts every container's first process from (it starts
	// several times faster than hull re-executing itself).
	InitPath string
	// ShimPath is the static hull-shim (see Engine.ShimPath).
	ShimPath string
	// Warn receives non-fatal messages for the user (default: stderr).
	Warn func(string)
	// MonitorCommand is Engine.MonitorCommand; a front end whose command
	// needs the open engine may set that field after Open instead.
	MonitorCommand func(id string, waitAttach bool) *exec.Cmd
	// BackoffBase and BackoffMax override the restart back-off.
	BackoffBase, BackoffMax time.Duration
	// NoSweep leaves what crashed processes left in the snapshotter for
	// the next command to remove: a spare monitor opens the engine while
	// the command that started it, which has just swept, is making a
	// snapshot it would wait for (see snapshot.Options.NoSweep).
	NoSweep bool
	// LongLived says the engine serves many calls (hull-cri's server):
	// work after an answer may go on in the background, such as
	// dropping a stopped pod's network records once the kernel has
	// deleted its veth (network.Manager.DeferReleasedVeths). A command
	// finishes such work before it returns.
	LongLived bool
}

// Open opens the engine under cfg's roots: the metadata database, the
// image store, the snapshotter (attached to the image service, so pulls
// and loads unpack layers as they arrive) and the runtime. Every hull
// command opens one and closes it (Close) before it exits.
func Open(cfg config.Config, o Options) (*Engine, error) {
	db, err := metadata.Open(cfg.Root)
	if err != nil {
		return nil, err
	}
	trace.Mark("db open")
	images, err := image.Open(cfg, db)
	trace.Mark("image store open")
	if err != nil {
		db.Close()
		return nil, err
	}
	snap, err := snapshot.Open(db, cfg.Root, snapshot.Options{
		Driver: cfg.Storage.Snapshotter, NoSweep: o.NoSweep,
		Limits: snapshot.Limits{MaxBytes: int64(cfg.Storage.MaxLayerSize), MaxImageBytes: int64(cfg.Storage.MaxImageSize)},
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	images.SetUnpacker(snap)
	trace.Mark("snapshotter open")
	e, err := openOver(cfg, db, images, snap)
	if err != nil {
		db.Close()
		return nil, err
	}
	e.ownDB = true
	e.longLived = o.LongLived
	e.InitPath, e.ShimPath, e.Warn = o.InitPath, o.ShimPath, o.Warn
	e.rt.InitPath = runtime.InitBinary(o.InitPath)
	e.MonitorCommand = o.MonitorCommand
	e.BackoffBase, e.BackoffMax = o.BackoffBase, o.BackoffMax
	return e, nil
}

// openOver makes the engine over services already open (tests give nil
// ones for what they do not use).
func openOver(cfg config.Config, db *metadata.DB, images *image.Service, snap *snapshot.Snapshotter) (*Engine, error) {
	e := &Engine{cfg: cfg, db: db, images: images, snap: snap}
	e.rt = &runtime.Runtime{Root: filepath.Join(cfg.RunRoot, "runtime"), Warn: func(m string) { e.warn("%s", m) }}
	// Every container makes and removes directories in these. They hold
	// container content and state: no other user may reach into them.
	for _, d := range []string{e.persistDir(""), e.runDir(""), e.rt.Root} {
		if err := snapshot.MkdirSpread(d, perm.Dir); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	return e, nil
}

// Mark records that a front end reached the stage label, for HULL_TRACE
// timings and HULL_FAULT crash tests (see internal/trace).
func Mark(label string) { trace.Mark(label) }

func (e *Engine) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if e.Warn != nil {
		e.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "WARNING:", msg)
}

func (e *Engine) persistDir(id string) string { return filepath.Join(e.cfg.Root, "containers", id) }
func (e *Engine) runDir(id string) string     { return filepath.Join(e.cfg.RunRoot, "containers", id) }
func (e *Engine) rootfs(id string) string     { return filepath.Join(e.runDir(id), "rootfs") }

// LogPath is where a container's output is logged.
func (e *Engine) LogPath(id string) string { return filepath.Join(e.persistDir(id), "container.log") }

// AttachSocket is the monitor's attach socket for a container.
func (e *Engine) AttachSocket(id string) string { return filepath.Join(e.runDir(id), "attach.sock") }

func snapshotKey(id string) string { return "container-" + id }
func ownerKey(id string) string    { return "container:" + id }

// Get returns a container by name, ID or ID prefix, with its state checked
// against reality (a dead monitor or a reboot is recorded).
func (e *Engine) Get(ctx context.Context, ref string) (*Container, error) {
	c, err := e.lookup(ctx, e.db, ref)
	if err != nil {
		return nil, err
	}
	return e.reconcile(ctx, c)
}

// List returns every container, newest first, reconciled.
func (e *Engine) List(ctx context.Context) ([]*Container, error) {
	return e.listWhere(ctx, "1")
}

// listWhere is List of the containers whose row matches the SQL condition
// where (with args).
func (e *Engine) listWhere(ctx context.Context, where string, args ...any) ([]*Container, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT `+containerColumns+` FROM containers WHERE `+where+` ORDER BY created DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	rows.Close()
	for i, c := range out {
		if out[i], err = e.reconcile(ctx, c); err != nil {
			return nil, err
		}
	}
	e.fillHealth(out)
	return out, nil
}

// Event is one entry of `hull events`.
type Event struct {
	Seq    int64             `json:"-"`
	Time   time.Time         `json:"time"`
	Type   string            `json:"Type"`
	Action string            `json:"Action"`
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Attrs  map[string]string `json:"Attributes,omitempty"`
}

func (e *Engine) emit(ctx context.Context, c *Container, action string, attrs map[string]string) {
	e.emitIn(ctx, e.db, c, action, attrs)
}

// execer runs a statement: the database (one transaction of its own) or
// a transaction that groups several.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// emitIn is emit as part of x.
func (e *Engine) emitIn(ctx context.Context, x execer, c *Container, action string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"] = c.Name
	attrs["image"] = c.Image
	logEvent(ctx, x, "container", action, c.ID, c.Name, attrs)
}

// logEvent appends one event for `hull events`.
func logEvent(ctx context.Context, x execer, typ, action, id, name string, attrs map[string]string) {
	data, _ := json.Marshal(attrs)
	ctx = context.WithoutCancel(ctx)
	res, err := x.ExecContext(ctx, `INSERT INTO events(time, type, action, id, name, attrs) VALUES(?,?,?,?,?,?)`,
		time.Now().UnixNano(), typ, action, id, name, string(data))
	if err != nil {
		return
	}
	// Keep the newest eventsKept events (docker keeps a bounded log too);
	// trimming every hundredth insert keeps the cost negligible.
	if seq, err := res.LastInsertId(); err == nil && seq%100 == 0 {
		x.ExecContext(ctx, `DELETE FROM events WHERE seq <= ?`, seq-eventsKept)
	}
}

// eventsKept bounds the events table.
const eventsKept = 10000

// Events returns events after seq (0: all kept), oldest first.
func (e *Engine) Events(ctx context.Context, afterSeq int64) ([]Event, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT seq, time, type, action, id, name, attrs FROM events WHERE seq > ? ORDER BY seq`, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		var t int64
		var attrs string
		if err := rows.Scan(&ev.Seq, &t, &ev.Type, &ev.Action, &ev.ID, &ev.Name, &attrs); err != nil {
			return nil, err
		}
		ev.Time = time.Unix(0, t).UTC()
		json.Unmarshal([]byte(attrs), &ev.Attrs)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// bootID identifies this boot of the host: a container recorded running
// under another boot ID was running before a reboot.
func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// procStart is a process's start time (shim.ProcStart): with the pid it
// names one process for all time, so a recycled pid is never taken for
// ours.
func procStart(pid int) uint64 { return shim.ProcStart(pid) }

// ContainersUsing names the containers created from the image manifest.
func (e *Engine) ContainersUsing(ctx context.Context, manifest string) ([]string, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT name FROM containers WHERE image_digest = ? ORDER BY name`, manifest)
	if err != nil {
		return nil, fmt.Errorf("containers using %s: %w", manifest, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
