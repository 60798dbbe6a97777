package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"hull/internal/metadata"
	"hull/internal/perm"
	"hull/internal/spec"
)

// Volumes are directories hull owns, <root>/volumes/<name>/_data, that
// outlive containers: named ones (-v NAME:/path, hull volume create) until
// removed, anonymous ones (-v /path, a random name) until the container
// that made them is removed with -v, or with --rm. A new volume is seeded
// with what the image has at its mount point, as docker does.

func init() {
	metadata.Register(metadata.Migration{Package: "volume", Version: 1, Statements: []string{
		`CREATE TABLE volumes (
			name        TEXT PRIMARY KEY,
			created     INTEGER NOT NULL,
			labels      TEXT NOT NULL DEFAULT '{}',
			anonymous   INTEGER NOT NULL DEFAULT 0,
			owner       TEXT NOT NULL DEFAULT '',
			auto_remove INTEGER NOT NULL DEFAULT 0
		)`,
	}})
}

// Volume is one volume's record.
type Volume struct {
	Name       string
	Created    time.Time
	Labels     map[string]string
	Anonymous  bool
	Owner      string // the container an anonymous volume was made for
	AutoRemove bool   // that container had --rm: the volume goes with it
	Mountpoint string
	// Options are the local driver's (docker's volume create -o): type,
	// device, o (see volumeopts.go); empty for a plain directory.
	Options map[string]string
}

// VolumeNotFoundError is a volume name that matches nothing. Its class is
// errdefs.ErrNotFound.
type VolumeNotFoundError struct{ Name string }

func (e *VolumeNotFoundError) Error() string {
	return fmt.Sprintf("no such volume: %s (list volumes with: hull volume ls)", e.Name)
}

func (e *VolumeNotFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// VolumePath is the host directory holding a volume's data.
func (e *Engine) VolumePath(name string) string {
	return filepath.Join(e.cfg.Root, "volumes", name, "_data")
}

// CreateVolume makes a volume, or returns the existing one of that name
// (as docker does; with other options it is a conflict). An empty name
// makes an anonymous-style random one. options are the local driver's
// (type, device, o): a tmpfs, a bind of a host directory, a device's
// filesystem; the volume's filesystem is mounted at once, so options the
// kernel refuses fail the creation.
func (e *Engine) CreateVolume(ctx context.Context, name string, labels, options map[string]string) (*Volume, error) {
	if err := checkVolumeOptions(options); err != nil {
		return nil, err
	}
	v, created, err := e.createVolume(ctx, name, labels, options, nil)
	if err != nil {
		return nil, err
	}
	if !created && optionsString(v.Options) != optionsString(options) && len(options) > 0 {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("volume %s already exists with other options (%s): remove it first, or use another name", v.Name, optionsString(v.Options)))
	}
	if err := mountVolume(v); err != nil {
		if created {
			e.deleteVolume(context.WithoutCancel(ctx), v.Name)
		}
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return v, nil
}

// createVolume records and makes the volume; created says it is new.
// owner, if set, is the container an anonymous volume is made for.
func (e *Engine) createVolume(ctx context.Context, name string, labels, options map[string]string, owner *Container) (*Volume, bool, error) {
	anonymous := name == ""
	if anonymous {
		name = NewID()
	}
	if !spec.ValidVolumeName(name) {
		return nil, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid volume name %q: use [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least two characters)", name))
	}
	if labels == nil {
		labels = map[string]string{}
	}
	if options == nil {
		options = map[string]string{}
	}
	data, _ := json.Marshal(labels)
	opts, _ := json.Marshal(options)
	ownerID, autoRemove := "", false
	if owner != nil && anonymous {
		ownerID, autoRemove = owner.ID, owner.Config.AutoRemove
	}
	res, err := e.db.ExecContext(ctx, `INSERT OR IGNORE INTO volumes(name, created, labels, anonymous, owner, auto_remove, options) VALUES(?,?,?,?,?,?,?)`,
		name, time.Now().UnixNano(), string(data), anonymous, ownerID, autoRemove, string(opts))
	if err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	// volumes/ is private: what a container leaves in a volume (a setuid
	// binary, a device node) must not be reachable by other local users.
	if err := perm.PrivateDir(filepath.Dir(filepath.Dir(e.VolumePath(name)))); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.MkdirAll(e.VolumePath(name), 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	v, err := e.Volume(ctx, name)
	if err != nil {
		return nil, false, err
	}
	if n > 0 {
		e.emitVolume(ctx, v.Name, "create")
	}
	return v, n > 0, nil
}

func (e *Engine) emitVolume(ctx context.Context, name, action string) {
	logEvent(ctx, e.db, "volume", action, name, name, map[string]string{"driver": "local"})
}

const volumeColumns = `name, created, labels, anonymous, owner, auto_remove, options`

func (e *Engine) scanVolume(row scanner) (*Volume, error) {
	var v Volume
	var created int64
	var labels, options string
	if err := row.Scan(&v.Name, &created, &labels, &v.Anonymous, &v.Owner, &v.AutoRemove, &options); err != nil {
		return nil, err
	}
	v.Created = fromNanos(created)
	json.Unmarshal([]byte(labels), &v.Labels)
	json.Unmarshal([]byte(options), &v.Options)
	v.Mountpoint = e.VolumePath(v.Name)
	return &v, nil
}

// Volume returns one volume.
func (e *Engine) Volume(ctx context.Context, name string) (*Volume, error) {
	v, err := e.scanVolume(e.db.QueryRowContext(ctx, `SELECT `+volumeColumns+` FROM volumes WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &VolumeNotFoundError{Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return v, nil
}

// Volumes lists every volume by name, after removing the anonymous ones
// whose --rm container is gone.
func (e *Engine) Volumes(ctx context.Context) ([]*Volume, error) {
	e.sweepAnonymous(ctx)
	rows, err := e.db.QueryContext(ctx, `SELECT `+volumeColumns+` FROM volumes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	defer rows.Close()
	var out []*Volume
	for rows.Next() {
		v, err := e.scanVolume(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VolumeUsers returns the IDs of the containers (any state) that mount
// the volume.
func (e *Engine) VolumeUsers(ctx context.Context, name string) ([]string, error) {
	users, err := e.volumeUsers(ctx)
	if err != nil {
		return nil, err
	}
	return users[name], nil
}

// volumeName is the name of the volume m mounts, "" if it mounts none.
func (e *Engine) volumeName(m spec.Mount) string {
	rest, ok := strings.CutPrefix(m.Source, filepath.Join(e.cfg.Root, "volumes")+"/")
	if !ok || m.Type != "volume" {
		return ""
	}
	return strings.TrimSuffix(rest, "/_data")
}

// emitVolumeMounts records docker's volume mount and unmount events for
// the volumes c uses (action "mount" when it starts, "unmount" when it
// stops).
func (e *Engine) emitVolumeMounts(ctx context.Context, x execer, c *Container, action string) {
	for _, m := range c.Config.Spec.Mounts {
		name := e.volumeName(m)
		if name == "" {
			continue
		}
		attrs := map[string]string{"driver": "local", "container": c.ID}
		if action == "mount" {
			attrs["destination"] = m.Destination
			attrs["read/write"] = fmt.Sprint(!m.ReadOnly)
			attrs["propagation"] = ""
		}
		logEvent(ctx, x, "volume", action, name, name, attrs)
	}
}

// volumeUsers maps volume names to the containers mounting them.
func (e *Engine) volumeUsers(ctx context.Context) (map[string][]string, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT id, config FROM containers ORDER BY created`)
	if err != nil {
		return nil, fmt.Errorf("find volume users: %w", err)
	}
	defer rows.Close()
	users := map[string][]string{}
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		var cfg Config
		if json.Unmarshal([]byte(data), &cfg) != nil {
			continue
		}
		for _, m := range cfg.Spec.Mounts {
			if name := e.volumeName(m); name != "" {
				users[name] = append(users[name], id)
			}
		}
	}
	return users, rows.Err()
}

// RemoveVolume deletes a volume and its data. One that a container
// mounts is refused unless force.
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	if _, err := e.Volume(ctx, name); err != nil {
		return err
	}
	users, err := e.VolumeUsers(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 && !force {
		short := make([]string, len(users))
		for i, u := range users {
			short[i] = shortID(u)
		}
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s] (remove those containers first, or use -f)", name, strings.Join(short, ", ")))
	}
	return e.deleteVolume(ctx, name)
}

func (e *Engine) deleteVolume(ctx context.Context, name string) error {
	// Never remove through a mount: unmount the volume's filesystem
	// first, and keep everything if that fails.
	if v, err := e.Volume(ctx, name); err == nil {
		if err := unmountVolume(v); err != nil {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
	}
	if err := os.RemoveAll(filepath.Dir(e.VolumePath(name))); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if _, err := e.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM volumes WHERE name = ?`, name); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	e.emitVolume(ctx, name, "destroy")
	return nil
}

// RemoveAnonymousVolumes removes the anonymous volumes made for the given
// containers once they are gone (`rm -v`); it returns their names.
func (e *Engine) RemoveAnonymousVolumes(ctx context.Context, containerIDs []string) ([]string, error) {
	var removed []string
	var errs []error
	for _, id := range containerIDs {
		names, err := e.orphans(ctx, `SELECT name FROM volumes WHERE anonymous = 1 AND owner = ? AND owner NOT IN (SELECT id FROM containers)`, id)
		if err != nil {
			return removed, err
		}
		for _, n := range names {
			if users, _ := e.VolumeUsers(ctx, n); len(users) > 0 {
				continue
			}
			if err := e.deleteVolume(ctx, n); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, n)
		}
	}
	return removed, errors.Join(errs...)
}

// SweepVolumes removes the anonymous volumes of --rm containers that are
// gone. The monitor removes such a container on its own and then sweeps;
// commands that look at volumes sweep too, should a monitor have died.
func (e *Engine) SweepVolumes(ctx context.Context) { e.sweepAnonymous(ctx) }

func (e *Engine) sweepAnonymous(ctx context.Context) {
	names, err := e.orphans(ctx, `SELECT name FROM volumes WHERE anonymous = 1 AND auto_remove = 1 AND owner NOT IN (SELECT id FROM containers)`)
	if err != nil {
		return
	}
	for _, n := range names {
		if users, _ := e.VolumeUsers(ctx, n); len(users) == 0 {
			e.deleteVolume(ctx, n)
		}
	}
}

func (e *Engine) orphans(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := e.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find anonymous volumes: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// PruneVolumes removes the volumes no container uses that f matches:
// anonymous ones only, or all with f.All (docker's volume prune [-a]).
// It returns the names and the bytes freed.
func (e *Engine) PruneVolumes(ctx context.Context, f PruneFilter) ([]string, int64, error) {
	vols, err := e.Volumes(ctx)
	if err != nil {
		return nil, 0, err
	}
	users, err := e.volumeUsers(ctx)
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var freed int64
	var errs []error
	for _, v := range vols {
		if len(users[v.Name]) > 0 || (!f.All && !v.Anonymous) || !f.Match(v.Created, v.Labels) {
			continue
		}
		size := DirSize(v.Mountpoint)
		if err := e.deleteVolume(ctx, v.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v.Name)
		freed += size
	}
	sort.Strings(removed)
	return removed, freed, errors.Join(errs...)
}

// DirSize is the bytes the regular files under dir take (0 if unreadable).
func DirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// resolveVolumes turns named and anonymous volume mounts into their host
// directories, creating the volumes on first use and seeding empty ones
// with the image's content at the mount point (unless nocopy), as docker
// does.
func (e *Engine) resolveVolumes(ctx context.Context, c *Container, o *spec.Options) error {
	e.sweepAnonymous(ctx)
	for i := range o.Mounts {
		m := &o.Mounts[i]
		if m.Type != "volume" {
			continue
		}
		v, _, err := e.createVolume(ctx, m.Source, nil, nil, c)
		if err != nil {
			return fmt.Errorf("volume for %s: %w", m.Destination, err)
		}
		if err := mountVolume(v); err != nil {
			return err
		}
		nocopy := false
		for _, opt := range m.Options {
			nocopy = nocopy || opt == "nocopy"
		}
		if data := e.volumeData(v); !nocopy && isEmptyDir(data) {
			if err := seedVolume(e.rootfs(c.ID), m.Destination, data); err != nil {
				return fmt.Errorf("volume %s: copy the image's %s into it: %w", v.Name, m.Destination, err)
			}
		}
		m.Source = v.Mountpoint
	}
	return nil
}

func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}

// seedVolume copies the image's directory at dest (resolved inside
// rootfs) into a new volume, owners and modes included.
func seedVolume(rootfs, dest, data string) error {
	src, err := OpenInRoot(rootfs, dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat(".")
	if err != nil || !fi.IsDir() {
		return nil // a file at the mount point: nothing to seed a directory with
	}
	dst, err := os.OpenRoot(data)
	if err != nil {
		return err
	}
	defer dst.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteTar(pw, src, ".", "seed")) }()
	err = ExtractTar(dst, pr, ExtractOptions{Rename: true, From: "seed", To: "", KeepOwners: true})
	pr.CloseWithError(errors.New("extraction stopped"))
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		os.Lchown(data, int(st.Uid), int(st.Gid))
	}
	return os.Chmod(data, fi.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetgid))
}
