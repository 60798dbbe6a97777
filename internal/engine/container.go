package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/metadata"
	"hull/internal/monitor"
	"hull/internal/spec"
)

// States a container moves through. Transitions are guarded by
// transactions on the containers table, so concurrent commands agree.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StatePaused     = "paused"
	StateRestarting = "restarting"
	StateExited     = "exited"
	StateDead       = "dead"
	StateRemoving   = "removing"
)

// Lifecycle stages `hull why` reports: where a container got to.
const (
	StagePull   = "image pull"
	StageCreate = "create"
	StageStart  = "start"
	// StageNetwork: the container's networks could not be set up (its
	// process never ran).
	StageNetwork = monitor.StageNetwork
	StageRunning = "running"
	StageExited  = "exited"
)

func init() {
	metadata.Register(metadata.Migration{Package: "engine", Version: 1, Statements: []string{
		`CREATE TABLE containers (
			id             TEXT PRIMARY KEY,
			name           TEXT NOT NULL UNIQUE,
			image          TEXT NOT NULL,
			image_id       TEXT NOT NULL DEFAULT '',
			image_digest   TEXT NOT NULL DEFAULT '',
			created        INTEGER NOT NULL,
			state          TEXT NOT NULL,
			stage          TEXT NOT NULL,
			pid            INTEGER NOT NULL DEFAULT 0,
			pid_start      INTEGER NOT NULL DEFAULT 0,
			monitor_pid    INTEGER NOT NULL DEFAULT 0,
			monitor_start  INTEGER NOT NULL DEFAULT 0,
			boot_id        TEXT NOT NULL DEFAULT '',
			exit_code      INTEGER NOT NULL DEFAULT 0,
			signal         INTEGER NOT NULL DEFAULT 0,
			oom_killed     INTEGER NOT NULL DEFAULT 0,
			memory_peak    INTEGER NOT NULL DEFAULT 0,
			memory_limit   INTEGER NOT NULL DEFAULT 0,
			error          TEXT NOT NULL DEFAULT '',
			started        INTEGER NOT NULL DEFAULT 0,
			finished       INTEGER NOT NULL DEFAULT 0,
			restart_count  INTEGER NOT NULL DEFAULT 0,
			backoff_until  INTEGER NOT NULL DEFAULT 0,
			stop_requested INTEGER NOT NULL DEFAULT 0,
			config         TEXT NOT NULL
		)`,
		`CREATE TABLE events (
			seq    INTEGER PRIMARY KEY AUTOINCREMENT,
			time   INTEGER NOT NULL,
			type   TEXT NOT NULL,
			action TEXT NOT NULL,
			id     TEXT NOT NULL,
			name   TEXT NOT NULL,
			attrs  TEXT NOT NULL
		)`,
	}})
	// A transitional state (a start's claim, a removal) records the
	// process that owns it, so that one whose owner died is seen at once
	// and taken over, never left for ever (see claimAbandoned).
	metadata.Register(metadata.Migration{Package: "engine", Version: 2, Statements: []string{
		`ALTER TABLE containers ADD COLUMN claim_pid INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE containers ADD COLUMN claim_start INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE containers ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0`,
	}})
}

// Config is what a container was created with; only `update` changes it
// (the limits in Spec and the restart policy).
type Config struct {
	Image       string                `json:"Image"` // as the user named it
	Spec        spec.Options          `json:"Spec"`
	Restart     monitor.RestartPolicy `json:"RestartPolicy"`
	AutoRemove  bool                  `json:"AutoRemove"`
	StopSignal  string                `json:"StopSignal"`
	StopTimeout int                   `json:"StopTimeout"` // seconds
	Labels      map[string]string     `json:"Labels"`
	// Annotations are --annotation's, in the OCI spec with the labels.
	Annotations map[string]string `json:"Annotations,omitempty"`
	OpenStdin   bool              `json:"OpenStdin"`
	Pull        string            `json:"Pull"`
	Platform    string            `json:"Platform"`
	// VolumesFrom are the containers whose volumes and bind mounts this
	// one mounts too (--volumes-from), resolved at create into Spec.Mounts.
	VolumesFrom []VolumesFrom `json:"VolumesFrom,omitempty"`
	// LogConfig is the log driver and its options (--log-driver,
	// --log-opt); empty: hull's default.
	LogConfig LogConfig `json:"LogConfig"`
	// Net is the container's networks, published ports and name
	// resolution; its mode is Spec.Network (see netconfig.go).
	Net NetConfig `json:"Net"`
	// Pod is the ID of the pod the container is in (its namespaces and
	// /etc files are the pod's; see pods.go), "" for none.
	Pod string `json:"Pod,omitempty"`
	// Healthcheck is the container's health check (see health.go): the
	// --health-* flags given to Create, the image's HEALTHCHECK laid under
	// them once created; nil: none.
	Healthcheck *HealthConfig `json:"Healthcheck,omitempty"`
	// Path and Args are the process that runs (entrypoint + command).
	Path string   `json:"Path"`
	Args []string `json:"Args"`
	// Effective is the options laid over the image's config (inspect's
	// Config block); nil in records made before hull kept it.
	Effective *spec.Effective `json:"Effective,omitempty"`
	// Restore is set for a container created from a checkpoint: its first
	// start restores the checkpoint's processes (restore.go).
	Restore *RestoreConfig `json:"Restore,omitempty"`
}

// VolumesFrom is one --volumes-from: a container, and "ro" or "rw" to
// override the read-only flag of its mounts ("" keeps each mount's).
type VolumesFrom struct {
	Container string `json:"Container"`
	Mode      string `json:"Mode,omitempty"`
}

// stopSignal is the signal stop sends first: the container's, else its
// image's (STOPSIGNAL), else SIGTERM.
func (c *Container) stopSignal() unix.Signal {
	name := c.Config.StopSignal
	if name == "" && c.Config.Effective != nil {
		name = c.Config.Effective.StopSignal
	}
	if s, err := ParseSignal(name); name != "" && err == nil {
		return s
	}
	return unix.SIGTERM
}

// Container is one container's record.
type Container struct {
	ID            string
	Name          string
	Image         string
	ImageID       string
	ImageDigest   string
	Created       time.Time
	State         string
	Stage         string
	Pid           int
	PidStart      uint64
	MonitorPid    int
	MonitorStart  uint64
	BootID        string
	ExitCode      int
	Signal        int
	OOMKilled     bool
	MemoryPeak    int64
	MemoryLimit   int64
	Error         string
	Started       time.Time
	Finished      time.Time
	RestartCount  int
	BackoffUntil  time.Time
	StopRequested bool
	Config        Config
	// ClaimPid and ClaimStart are the process that owns the container's
	// transitional state: the command that claimed it to start it, or the
	// command or monitor removing it.
	ClaimPid   int
	ClaimStart uint64
	// ClaimUntil is when the owner of a stop would have sent SIGKILL: a
	// stop whose command died is finished by the next command after it.
	ClaimUntil time.Time

	// Health is the container's health (nil: no health check), filled by
	// List (not stored in the record: its prober keeps it, see health.go).
	Health *Health
	// ImageUser is the image's USER, known on the Container Create
	// returns (not stored).
	ImageUser string
	// config, on the Container Create returns, writes its config.json
	// when Create left that to later (the spare monitor has the spec; see
	// Start).
	config *configWrite
	// cannotRun is why the command cannot run, found by Create (as
	// docker, the container is created and its start fails).
	cannotRun error
}

const containerColumns = `id, name, image, image_id, image_digest, created, state, stage, pid, pid_start, monitor_pid, monitor_start,
	boot_id, exit_code, signal, oom_killed, memory_peak, memory_limit, error, started, finished, restart_count, backoff_until, stop_requested, config,
	claim_pid, claim_start, claim_until`

type scanner interface{ Scan(...any) error }

func scanContainer(row scanner) (*Container, error) {
	c, cfg, err := scanContainerRow(row)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(cfg), &c.Config); err != nil {
		return nil, fmt.Errorf("container %s: config: %w", c.ID, err)
	}
	return c, nil
}

// scanContainerRow reads a container's row (containerColumns) but for
// its configuration, which it returns as stored (View decodes only the
// ones that changed).
func scanContainerRow(row scanner) (*Container, string, error) {
	var c Container
	var created, started, finished, backoff, claimUntil int64
	var cfg string
	if err := row.Scan(&c.ID, &c.Name, &c.Image, &c.ImageID, &c.ImageDigest, &created, &c.State, &c.Stage, &c.Pid, &c.PidStart,
		&c.MonitorPid, &c.MonitorStart, &c.BootID, &c.ExitCode, &c.Signal, &c.OOMKilled, &c.MemoryPeak, &c.MemoryLimit,
		&c.Error, &started, &finished, &c.RestartCount, &backoff, &c.StopRequested, &cfg, &c.ClaimPid, &c.ClaimStart, &claimUntil); err != nil {
		return nil, "", err
	}
	c.Created = fromNanos(created)
	c.Started = fromNanos(started)
	c.Finished = fromNanos(finished)
	c.BackoffUntil = fromNanos(backoff)
	c.ClaimUntil = fromNanos(claimUntil)
	return &c, cfg, nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// NotFoundError is a container name or ID that matches nothing. Its class
// is errdefs.ErrNotFound.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("No such container: %s (list containers with: hull ps -a)", e.Ref)
}

func (e *NotFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// IsNotFound reports whether err is a missing container (errdefs.IsNotFound
// is true of any missing object: a container, an image, a volume ...).
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// lookup finds a container by full ID, name, or unique ID prefix.
func (e *Engine) lookup(ctx context.Context, q queryer, ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	row := q.QueryRowContext(ctx, `SELECT `+containerColumns+` FROM containers WHERE id = ? OR name = ?`, ref, ref)
	c, err := scanContainer(row)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("look up container %s: %w", ref, err)
	}
	if len(ref) == 0 || len(ref) > 64 || strings.Trim(ref, "0123456789abcdef") != "" {
		return nil, &NotFoundError{Ref: ref}
	}
	rows, err := q.QueryContext(ctx, `SELECT `+containerColumns+` FROM containers WHERE id LIKE ?`, ref+"%")
	if err != nil {
		return nil, fmt.Errorf("look up container %s: %w", ref, err)
	}
	defer rows.Close()
	var found *Container
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			return nil, err
		}
		if found != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container ID prefix %q is ambiguous: give more characters", ref))
		}
		found = c
	}
	if found == nil {
		return nil, &NotFoundError{Ref: ref}
	}
	return found, rows.Err()
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}
