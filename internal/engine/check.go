package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hull/internal/config"
	"hull/internal/metadata"
	"hull/internal/perm"
	"hull/internal/runtime"
)

// `hull system check`: the database, the image store, the snapshots, the
// run state, the mounts and the modes of what hull keeps are compared, and
// every disagreement is reported; with Repair, what can be put right is.
// Reading a container reconciles it already (a dead monitor, a claim whose
// owner died); what is left for Check is what no single command meets:
// leftovers of containers that have no record, records of half-removed
// or half-created containers, blobs and layers nothing uses, corrupt blobs
// (Verify), and modes that expose content to other users.

// CheckOptions choose what Check does beyond reporting.
type CheckOptions struct {
	Repair bool // put right what can be
	Verify bool // hash every stored blob again
}

// Problem is one inconsistency Check found.
type Problem struct {
	Object   string `json:"Object"`  // what it is about: "container web", "blob sha256:…", a path
	Problem  string `json:"Problem"` // what is wrong
	Repair   string `json:"Repair"`  // what --repair does, or what the user can do
	Repaired bool   `json:"Repaired"`
	Error    string `json:"Error,omitempty"` // why the repair failed
}

// Check reports (and with Repair, mends) what is inconsistent under the
// engine's roots.
func (e *Engine) Check(ctx context.Context, o CheckOptions) ([]Problem, error) {
	var out []Problem
	report := func(object, problem, repair string, fix func() error) {
		p := Problem{Object: object, Problem: problem, Repair: repair}
		if o.Repair && fix != nil {
			if err := fix(); err != nil {
				p.Error = err.Error()
			} else {
				p.Repaired = true
			}
		}
		out = append(out, p)
	}
	if err := e.checkDatabase(ctx, report); err != nil {
		return out, err
	}
	ids, err := e.checkContainers(ctx, report)
	if err != nil {
		return out, err
	}
	e.checkRunState(ids, report)
	e.checkImageMounts(ctx, report)
	e.checkNetworks(ctx, o.Repair, report)
	if err := e.checkSnapshots(ctx, ids, report); err != nil {
		return out, err
	}
	if err := e.checkImages(ctx, o.Verify, report); err != nil {
		return out, err
	}
	exposed, err := perm.Exposed(e.cfg.Root, e.cfg.RunRoot)
	if err != nil {
		return out, fmt.Errorf("check modes: %w", err)
	}
	for _, x := range exposed {
		report(x.Path, fmt.Sprintf("mode %04o lets other users reach container content or state", uint32(x.Mode.Perm())),
			"remove the group and other permissions", x.Fix)
	}
	return out, nil
}

type reportFunc func(object, problem, repair string, fix func() error)

func (e *Engine) checkDatabase(ctx context.Context, report reportFunc) error {
	var res string
	if err := e.db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return fmt.Errorf("check the database: %w", err)
	}
	if res != "ok" {
		report(filepath.Join(e.cfg.Root, "hull.db"), "the database fails SQLite's check: "+res, "restore it from a backup; hull system check --repair rebuilds one that hull refuses to open", nil)
	}
	return nil
}

// checkContainers reports the records a removal or a creation was killed
// in the middle of, and returns the IDs of every recorded container.
func (e *Engine) checkContainers(ctx context.Context, report reportFunc) (map[string]bool, error) {
	cs, err := e.List(ctx) // reconciles each
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, c := range cs {
		ids[c.ID] = true
		c := c
		remove := func() error { return e.Remove(ctx, c.ID, true) }
		switch {
		case c.State == StateDead:
			report("container "+c.Name, c.Error, "finish the removal", remove)
		case c.CreationInterrupted():
			report("container "+c.Name, c.Error, "remove it", remove)
		}
		if e.staleCheckpoint(c) {
			report("container "+c.Name, "a checkpoint was killed midway: the container may be left frozen or paused, with CRIU's files beside the archive",
				"thaw or resume it, end CRIU and remove the partial files, as hull-cri does when it starts",
				func() error { _, err := e.recoverCheckpoint(ctx, c); return err })
		}
		// A container still "removing" has a live owner: reconcile took
		// over the removals of dead ones (they are dead now).
	}
	return ids, nil
}

// checkRunState reports state directories, runtime state and mounts of
// containers that have no record (a record lost with a damaged database,
// or a removal that deleted the record and died before the rest).
func (e *Engine) checkRunState(ids map[string]bool, report reportFunc) {
	known := func(dir string, each func(id, path string)) {
		entries, _ := os.ReadDir(dir)
		for _, ent := range entries {
			name := ent.Name()
			if !ent.IsDir() || strings.HasPrefix(name, ".") || ids[name] || !validID(name) {
				continue
			}
			each(name, filepath.Join(dir, name))
		}
	}
	known(e.rt.Root, func(id, path string) {
		report(path, "runtime state of a container hull has no record of", "stop its processes and remove the state",
			func() error { return e.rt.Delete(id, true) })
	})
	known(e.runDir(""), func(id, path string) {
		report(path, "run directory of a container hull has no record of", "unmount its root filesystem and remove the directory",
			func() error {
				if err := unmountAll(e.rootfs(id)); err != nil {
					return err
				}
				return os.RemoveAll(path)
			})
	})
	known(e.persistDir(""), func(id, path string) {
		lost := filepath.Join(e.cfg.Root, "lost+found", "containers", id)
		report(path, "directory (logs, config.json) of a container hull has no record of", "move it to "+lost,
			func() error {
				if err := perm.PrivateDir(filepath.Dir(filepath.Dir(lost))); err != nil {
					return err
				}
				if err := os.MkdirAll(filepath.Dir(lost), perm.Dir); err != nil {
					return err
				}
				return os.Rename(path, lost)
			})
	})
	// The engine mounts only containers' root filesystems under its run
	// directory (image mounts live elsewhere, under mounts/).
	for _, m := range mountsUnder(e.runDir("")) {
		rel, _ := filepath.Rel(e.runDir(""), m)
		if id, rest, _ := strings.Cut(rel, string(filepath.Separator)); rest == "rootfs" && ids[id] {
			continue
		}
		m := m
		report(m, "mount of a container hull has no record of", "unmount it", func() error { return unmountAll(m) })
	}
}

// checkImageMounts reports image mounts whose view snapshot is gone.
func (e *Engine) checkImageMounts(ctx context.Context, report reportFunc) {
	dir := e.imageMountPoint("")
	for _, m := range mountsUnder(dir) {
		if _, err := e.snap.Stat(ctx, imageMountKey(filepath.Base(m))); err == nil && filepath.Dir(m) == dir {
			continue
		}
		m := m
		report(m, "image mount whose snapshot hull has no record of", "unmount it", func() error {
			if err := unmountAll(m); err != nil {
				return err
			}
			return os.Remove(m)
		})
	}
}

func (e *Engine) checkSnapshots(ctx context.Context, ids map[string]bool, report reportFunc) error {
	infos, err := e.snap.List(ctx)
	if err != nil {
		return err
	}
	for _, i := range infos {
		id, ok := strings.CutPrefix(i.Name, "container-")
		if !ok || ids[id] {
			continue
		}
		key := i.Name
		report("snapshot "+key, "writable layer of a container hull has no record of", "remove it", func() error {
			if err := unmountAll(e.rootfs(id)); err != nil {
				return err
			}
			return e.snap.Remove(ctx, key)
		})
	}
	owners, err := e.snap.Owners(ctx)
	if err != nil {
		return err
	}
	for _, owner := range owners {
		id, ok := strings.CutPrefix(owner, "container:")
		if !ok || ids[id] {
			continue
		}
		report("layers retained by "+owner, "the container that retains them has no record", "release them (system prune then removes unused layers)",
			func() error { return e.snap.Release(ctx, owner) })
	}
	unused, err := e.snap.Unused(ctx)
	if err != nil {
		return err
	}
	if len(unused) > 0 {
		report(fmt.Sprintf("%d layers", len(unused)), "unpacked layers no image or container uses", "remove them (as system prune does)",
			func() error { _, err := e.snap.Prune(ctx); return err })
	}
	return nil
}

func (e *Engine) checkImages(ctx context.Context, verify bool, report reportFunc) error {
	missing, err := e.images.MissingBlobs(ctx)
	if err != nil {
		return err
	}
	for _, m := range missing {
		name := m.Image.Digest.String()
		if len(m.Image.Names) > 0 {
			name = m.Image.Names[0]
		}
		report("image "+name, "blob "+m.Blob+" it needs is not in the store", fmt.Sprintf("pull it again (hull pull %s) or remove it (hull rmi)", name), nil)
	}
	if verify {
		corrupt, err := e.images.Corrupt(ctx)
		if err != nil {
			return err
		}
		for _, d := range corrupt {
			d := d
			report("blob "+d.String(), "its content does not match its digest", "delete it (the images that need it then need a pull)",
				func() error { return e.images.DeleteBlob(d) })
		}
	}
	unref, err := e.images.Unreferenced(ctx)
	if err != nil {
		return err
	}
	if len(unref) > 0 {
		report(fmt.Sprintf("%d blobs", len(unref)), "stored blobs no image references (a failed pull or load left them)", "delete them",
			func() error { _, err := e.images.Collect(ctx); return err })
	}
	return nil
}

// mountsUnder lists the mount points below any of dirs, deepest first.
func mountsUnder(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		for _, d := range dirs {
			if strings.HasPrefix(mp, d+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// validID is a container ID's shape: 64 hex digits.
func validID(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// StopUnrecorded stops every container under cfg's run root and unmounts
// its root filesystem, without the database: for `system check --repair`
// on a database it rebuilds, which knows none of them. It runs before the
// snapshotter opens, whose sweep removes the layer directories the new
// database does not record, and which must not be mounted then. It
// returns the IDs it stopped.
func StopUnrecorded(cfg config.Config) []string {
	rt := &runtime.Runtime{Root: filepath.Join(cfg.RunRoot, "runtime")}
	e := &Engine{cfg: cfg}
	var stopped []string
	entries, _ := os.ReadDir(rt.Root)
	for _, ent := range entries {
		if validID(ent.Name()) {
			rt.Delete(ent.Name(), true)
			stopped = append(stopped, ent.Name())
		}
	}
	for _, m := range mountsUnder(e.runDir("")) {
		unmountAll(m)
	}
	return stopped
}

// DamagedError is a database hull refuses to open (Open's error), which
// RebuildDatabase makes anew.
type DamagedError = metadata.DamagedError

// RebuildDatabase sets the damaged database aside, stops the containers
// nobody can know again, opens a new database and records the store's
// images in it again. It returns what it did, a line each.
func RebuildDatabase(ctx context.Context, cfg config.Config, damaged *DamagedError) ([]string, error) {
	stamp := time.Now().UTC().Format("20060102T150405")
	var did []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		from := damaged.Path + suffix
		to := strings.TrimSuffix(damaged.Path, filepath.Ext(damaged.Path)) + ".db" + suffix + ".damaged-" + stamp
		if err := os.Rename(from, to); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("set the damaged database aside: %w", err)
		} else if err == nil {
			did = append(did, fmt.Sprintf("%s: damaged (%v); kept as %s", from, damaged.Err, to))
		}
	}
	for _, id := range StopUnrecorded(cfg) {
		did = append(did, fmt.Sprintf("container %s: stopped (its record was lost with the database)", id))
	}
	e, err := Open(cfg, Options{})
	if err != nil {
		return did, err
	}
	defer e.Close()
	images, err := e.images.Rebuild(ctx)
	for _, name := range images {
		did = append(did, fmt.Sprintf("image %s: recorded again from the store", name))
	}
	return did, err
}
