package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/checkpoint"
	"hull/internal/runtime"
	"hull/internal/snapshot"
)

// A container restored from a checkpoint archive (see package
// checkpoint) is created like any other (CreateOptions.Checkpoint): a
// fresh writable layer over the image the checkpoint names (by ID: it
// must be in the store), the archive's rootfs-diff.tar laid over it, its
// spec generated for the new container (its id, cgroups, namespaces,
// mount sources), its record in state created. Its first start restores
// instead of starting the process: the monitor runs criu restore
// (monitor.Config.Restore) with the CRIU images kept in the container's
// directory. No spare monitor is used for it. A later start, after the
// restored process exited, starts the container's command afresh, as a
// restart does.

// StageRestore is the stage of a container whose restore from a
// checkpoint failed (its process never ran).
const StageRestore = "restore"

// RestoreConfig is what a container created from a checkpoint keeps for
// its first start (Config.Restore).
type RestoreConfig struct {
	// Images is the directory of the CRIU images, in the container's
	// persistent directory.
	Images string `json:"Images"`
	// CRIU is the binary found (and checked) at create.
	CRIU string `json:"CRIU"`
	// Descriptors and ExternalNetNS are the checkpoint record's.
	Descriptors   []string `json:"Descriptors"`
	ExternalNetNS bool     `json:"ExternalNetNS,omitempty"`
	// From is the ID of the container the checkpoint was taken of, and
	// Checkpointed when.
	From         string    `json:"From"`
	Checkpointed time.Time `json:"Checkpointed"`
	// Requested is when the restore was asked for: a run that finished
	// after it was the restored one (or a restart's).
	Requested time.Time `json:"Requested"`
}

// restorePending reports whether c's next start restores it: a restore
// was asked for (created from a checkpoint, or RestoreOwn) and no run
// finished since, but one whose restore failed (tried again).
func (c *Container) restorePending() bool {
	r := c.Config.Restore
	return r != nil && (c.Finished.IsZero() || !c.Finished.After(r.Requested) || c.Stage == StageRestore)
}

// Checkpoint is a checkpoint archive opened for a restore: its members
// extracted to a private directory, its record and spec read. Close
// removes what Create did not take.
type Checkpoint struct {
	Record checkpoint.Record
	// Spec is the container's spec at dump time (spec.dump).
	Spec *specs.Spec
	// Config is the engine configuration the record carries (for a
	// restore outside the CRI, which builds its own).
	Config Config
	// Path is the archive's; a checkpoint image's name for one read
	// from an image.
	Path string
	// FromImage is the ID of the checkpoint image it was read from (""
	// for an archive).
	FromImage string

	what string // "checkpoint archive PATH" or "checkpoint image NAME", for errors
	dir  string // the extracted archive
	criu *checkpoint.CRIU
}

// OpenCheckpoint reads the checkpoint archive at archive. An archive that
// is not one (no config.dump, spec.dump or images; a record of another
// version) is an invalid argument; a checkpoint of a container with a
// terminal a failed precondition (not supported); no working CRIU a
// failed precondition saying what to do (checkpoint.FindCRIU).
func (e *Engine) OpenCheckpoint(archive string) (k *Checkpoint, err error) {
	criu, err := checkpoint.FindCRIU()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(archive)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("checkpoint archive %s: not found", archive))
		}
		return nil, fmt.Errorf("checkpoint archive %s: %w", archive, err)
	}
	defer f.Close()
	return e.openCheckpoint(context.Background(), criu, "checkpoint archive "+archive, archive, f)
}

// openCheckpoint reads a checkpoint archive's members from r (a tar
// stream, compressed or not: an archive's file, or a checkpoint image's layer), what naming
// it in errors, path becoming Checkpoint.Path.
func (e *Engine) openCheckpoint(ctx context.Context, criu *checkpoint.CRIU, what, archive string, r io.Reader) (k *Checkpoint, err error) {
	staging := filepath.Join(e.cfg.Root, "checkpoints")
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return nil, err
	}
	sweepImports(staging)
	dir, err := os.MkdirTemp(staging, "import-")
	if err != nil {
		return nil, err
	}
	k = &Checkpoint{Path: archive, what: what, dir: dir, criu: criu}
	defer func() {
		if err != nil {
			k.Close()
		}
	}()
	invalid := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(what + ": " + fmt.Sprintf(format, args...))
	}
	// The layer applier: an archive is as hostile as a layer (names
	// outside dir, links, devices, sizes), and it may be compressed.
	if _, err := snapshot.Apply(ctx, dir, r, snapshot.ApplyOptions{Whiteouts: snapshot.WhiteoutDelete}); err != nil {
		return nil, invalid("%v (is it a checkpoint archive?)", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, checkpoint.ConfigFile))
	if err != nil {
		return nil, invalid("no %s: not a checkpoint archive", checkpoint.ConfigFile)
	}
	if k.Record, err = decodeRecord(b); err != nil {
		return nil, invalid("%v", err)
	}
	if k.Record.TTY {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: container %s has a terminal; restoring one is not supported", what, k.Record.Name))
	}
	if b, err = os.ReadFile(filepath.Join(dir, checkpoint.SpecFile)); err != nil {
		return nil, invalid("no %s: not a checkpoint archive", checkpoint.SpecFile)
	}
	k.Spec = new(specs.Spec)
	if err := json.Unmarshal(b, k.Spec); err != nil || k.Spec.Linux == nil {
		return nil, invalid("%s is not an OCI runtime spec (%v)", checkpoint.SpecFile, err)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.ImagesDir, "inventory.img")); err != nil {
		return nil, invalid("no CRIU images in %s/", checkpoint.ImagesDir)
	}
	if len(k.Record.Engine) > 0 && string(k.Record.Engine) != "null" {
		if err := json.Unmarshal(k.Record.Engine, &k.Config); err != nil {
			return nil, invalid("%s: the container's configuration: %v", checkpoint.ConfigFile, err)
		}
	}
	return k, nil
}

// decodeRecord reads an archive's config.dump (b), checking its version
// and that it names the image a restore needs.
func decodeRecord(b []byte) (checkpoint.Record, error) {
	var rec checkpoint.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", checkpoint.ConfigFile, err)
	}
	if rec.Version != checkpoint.RecordVersion {
		return rec, fmt.Errorf("%s is version %d; this hull reads version %d", checkpoint.ConfigFile, rec.Version, checkpoint.RecordVersion)
	}
	if rec.ImageID == "" {
		return rec, fmt.Errorf("%s names no image ID", checkpoint.ConfigFile)
	}
	return rec, nil
}

// sweepImports removes what an OpenCheckpoint killed half-way left in
// the staging directory (a day old: none still in use).
func sweepImports(staging string) {
	ents, _ := os.ReadDir(staging)
	for _, ent := range ents {
		if info, err := ent.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(staging, ent.Name()))
		}
	}
}

// Close removes what is left of the extracted archive.
func (k *Checkpoint) Close() {
	if k != nil && k.dir != "" {
		os.RemoveAll(k.dir)
	}
}

// CheckImage fails with a not-found error saying to pull the image when
// the checkpoint's image is not in the store.
func (e *Engine) CheckImage(ctx context.Context, k *Checkpoint) error {
	if _, err := e.images.Resolve(ctx, k.Record.ImageID); err != nil {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s: image %s (%s) is not in the image store: pull it (hull pull %s) and restore again",
			k.what, k.Record.Image, k.Record.ImageID, k.Record.Image))
	}
	return nil
}

// RestoreOptions are `hull container restore`'s.
type RestoreOptions struct {
	Name string // "": the checkpointed container's name
}

// Restore creates a container from the checkpoint k with the
// configuration its record carries, to be restored at its first start
// (Start). The caller closes k.
func (e *Engine) Restore(ctx context.Context, k *Checkpoint, o RestoreOptions) (*Container, error) {
	name := o.Name
	if name == "" {
		name = k.Record.Name
	}
	cfg := k.Config
	if cfg.Image == "" {
		cfg.Image = k.Record.Image
	}
	cfg.Pod = "" // a pod's container is restored through the CRI
	c, err := e.Create(ctx, CreateOptions{Config: cfg, Name: name, Checkpoint: k})
	if err != nil && c != nil {
		// Nothing of a restore that failed is left behind.
		if rerr := e.Remove(context.WithoutCancel(ctx), c.ID, true); rerr != nil {
			err = fmt.Errorf("%w (and removing the container: %v)", err, rerr)
		}
		return nil, err
	}
	return c, err
}

// prepareRestore readies the configuration of a container created from
// checkpoint k (Create's first step): what the checkpointed container's
// record resolved for itself is resolved again for the new one, its
// image is the checkpoint's (by ID, never pulled), and the images' place
// is recorded.
func (e *Engine) prepareRestore(ctx context.Context, id string, k *Checkpoint, cfg *Config) error {
	if err := e.CheckImage(ctx, k); err != nil {
		return err
	}
	if len(cfg.Spec.UIDMap) > 0 || cfg.Spec.UsernsMode != "" || slices.ContainsFunc(k.Spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace }) {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: restoring a container in a user namespace is not supported yet", k.what))
	}
	if cfg.Spec.TTY {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: restoring a container with a terminal is not supported", k.what))
	}
	cfg.Spec.ID, cfg.Spec.Name, cfg.Spec.CgroupsPath = "", "", ""
	cfg.Pull = "never"
	cfg.Restore = &RestoreConfig{
		Images: filepath.Join(e.persistDir(id), checkpoint.ImagesDir), CRIU: k.criu.Path,
		Descriptors: k.Record.Descriptors, ExternalNetNS: k.Record.ExternalNetNS,
		From: k.Record.ID, Checkpointed: k.Record.Checkpointed, Requested: time.Now().UTC(),
	}
	return nil
}

// RestoreOwn restores a stopped container in place from its own
// checkpoint (hull container checkpoint without --export, podman's
// restore of a container by name): its writable layer is the one the
// checkpoint was taken with, so only the CRIU images are taken from the
// archive, and the start that follows restores it. The container is
// returned for that Start.
//
// Errors: a container that is not stopped, or has no checkpoint of its
// own, is a failed precondition.
func (e *Engine) RestoreOwn(ctx context.Context, ref string) (*Container, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State != StateExited && c.State != StateCreated {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("restore container %s: it is %s; only a stopped container is restored", c.Name, c.State))
	}
	archive := e.CheckpointPath(c.ID)
	if _, err := os.Stat(archive); err != nil {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("restore container %s: it has no checkpoint of its own (hull container checkpoint %s makes one; an exported one is restored with --import)", c.Name, c.Name))
	}
	k, err := e.OpenCheckpoint(archive)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	if k.Record.ID != c.ID {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("restore container %s: its checkpoint %s is of container %s", c.Name, archive, k.Record.ID))
	}
	cfg := c.Config
	images := filepath.Join(e.persistDir(c.ID), checkpoint.ImagesDir)
	os.RemoveAll(images)
	if err := os.Rename(filepath.Join(k.dir, checkpoint.ImagesDir), images); err != nil {
		return nil, fmt.Errorf("restore container %s: checkpoint images: %w", c.Name, err)
	}
	cfg.Restore = &RestoreConfig{
		Images: images, CRIU: k.criu.Path, Descriptors: k.Record.Descriptors, ExternalNetNS: k.Record.ExternalNetNS,
		From: c.ID, Checkpointed: k.Record.Checkpointed, Requested: time.Now().UTC(),
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := e.update(ctx, c.ID, map[string]any{"config": string(data)}); err != nil {
		return nil, fmt.Errorf("restore container %s: %w", c.Name, err)
	}
	c.Config = cfg
	return c, nil
}

// installCheckpoint ends the creation of a container from checkpoint k,
// once its rootfs is mounted and its spec written: the images move into
// its directory, rootfs-diff.tar is laid over its writable layer, and
// every bind mount the dumped container had must have a source in the
// new one (CRIU maps them by destination).
func (e *Engine) installCheckpoint(ctx context.Context, c *Container, k *Checkpoint) error {
	s, err := runtime.LoadSpec(e.persistDir(c.ID))
	if err != nil {
		return err
	}
	if slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace }) {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: restoring into a user namespace (the pod's) is not supported yet", k.what))
	}
	// CRIU makes the namespaces the dump owned and joins (or inherits) the
	// others: each must be of the same kind in the new container.
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace} {
		if was, is := nsKind(k.Spec, t), nsKind(s, t); was != is {
			return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: the checkpointed container's %s namespace was %s, the new container's is %s (a pod's container is restored into a pod, another outside one)", k.what, t, was, is))
		}
	}
	for _, m := range k.Spec.Mounts {
		if !isBindMount(m) {
			continue
		}
		if !slices.ContainsFunc(s.Mounts, func(n specs.Mount) bool { return n.Destination == m.Destination && isBindMount(n) }) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: the checkpointed container had a bind mount at %s; the new container has none there to restore it onto", k.what, m.Destination))
		}
	}
	if err := os.Rename(filepath.Join(k.dir, checkpoint.ImagesDir), c.Config.Restore.Images); err != nil {
		return fmt.Errorf("checkpoint images: %w", err)
	}
	diff, err := os.Open(filepath.Join(k.dir, checkpoint.RootfsDiffFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil // no changes
	}
	if err != nil {
		return err
	}
	defer diff.Close()
	if _, err := snapshot.Apply(ctx, e.rootfs(c.ID), diff, snapshot.ApplyOptions{Whiteouts: snapshot.WhiteoutDelete}); err != nil {
		return fmt.Errorf("%s: apply %s: %w", k.what, checkpoint.RootfsDiffFile, err)
	}
	return nil
}

// nsKind says how a spec has a namespace: "its own" (new), "joined"
// (a path: a pod's) or "the host's" (none).
func nsKind(s *specs.Spec, t specs.LinuxNamespaceType) string {
	if s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == t {
				if ns.Path != "" {
					return "joined"
				}
				return "its own"
			}
		}
	}
	return "the host's"
}

func isBindMount(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	return slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// restoreOptions is the monitor's restore of c (runMonitor), nil unless
// its next start restores it.
func (c *Container) restoreOptions() *runtime.RestoreOptions {
	if !c.restorePending() {
		return nil
	}
	r := c.Config.Restore
	return &runtime.RestoreOptions{CRIU: r.CRIU, ImagesDir: r.Images, Descriptors: r.Descriptors, ExternalNetNS: r.ExternalNetNS, WorkDir: filepath.Dir(r.Images),
		// A network namespace of its own connected to networks: made
		// anew and connected as at any start (the dumped one's veth has
		// no host end any more), with a new address.
		FreshNetNS: !r.ExternalNetNS && joinsNetworks(netMode(c.Config.Spec))}
}
