package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"

	"hull/internal/cgroups"
	"hull/internal/checkpoint"
)

// CheckpointOptions tune Checkpoint.
type CheckpointOptions struct {
	// Export is where the archive goes; "" is the container's own
	// checkpoint (CheckpointPath), where a later restore looks for it.
	Export string
	// LeaveRunning keeps the container running. Without it (podman's
	// default) the container is stopped by the checkpoint: CRIU kills its
	// processes once dumped, and it is recorded as exited.
	LeaveRunning bool
	// TCPEstablished dumps established TCP connections.
	TCPEstablished bool
	// Timeout bounds the dump (0: CRIU's default).
	Timeout time.Duration
	// CRI is the container's CRI metadata, for config.dump.
	CRI *checkpoint.CRIRecord
	// CreateImage, when set, also stores the archive as a checkpoint
	// image of that name (checkpointimage.go), for hull push and a
	// restore elsewhere (podman's --create-image).
	CreateImage string
}

// CheckpointPath is where Checkpoint keeps a container's own checkpoint
// archive (no Export): beside its log, removed with it.
func (e *Engine) CheckpointPath(id string) string {
	return filepath.Join(e.persistDir(id), "checkpoint.tar")
}

// Checkpoint dumps a running (or paused) container's processes with CRIU
// and writes the checkpoint archive (package checkpoint) at o.Export or
// CheckpointPath. A paused container stays paused: a pod checkpoint
// pauses every container first and dumps each in turn. It returns the
// archive's path.
//
// Errors: an unknown container is not found; one not running, and a host
// with no working CRIU, are failed preconditions (the latter saying what
// to install); an export directory that does not exist is an invalid
// argument.
func (e *Engine) Checkpoint(ctx context.Context, ref string, o CheckpointOptions) (string, error) {
	c, err := e.getStarted(ctx, ref)
	if err != nil {
		return "", err
	}
	if c.State != StateRunning && c.State != StatePaused || c.Pid <= 0 {
		return "", errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("checkpoint container %s: it is %s, not running", c.Name, c.State))
	}
	if _, err := parseImageName("checkpoint --create-image", o.CreateImage); err != nil {
		return "", err
	}
	archive := o.Export
	if archive == "" && o.CreateImage != "" && c.Config.AutoRemove && !o.LeaveRunning {
		// Only the image is kept: the container goes with its stop.
		f, err := os.CreateTemp(e.cfg.Root, ".checkpoint-*.tar")
		if err != nil {
			return "", err
		}
		f.Close()
		archive = f.Name()
		defer os.Remove(archive)
	} else if archive == "" {
		if c.Config.AutoRemove && !o.LeaveRunning {
			// Stopped by the checkpoint, it would be removed with it.
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
				"checkpoint container %s: it is removed when it stops (--rm): use --export or --leave-running", c.Name))
		}
		archive = e.CheckpointPath(c.ID)
	} else if archive, err = filepath.Abs(archive); err != nil {
		return "", err
	}
	if st, err := os.Stat(filepath.Dir(archive)); err != nil || !st.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
				"checkpoint container %s: the archive's directory %s does not exist", c.Name, filepath.Dir(archive)))
		}
		return "", fmt.Errorf("checkpoint container %s: %w", c.Name, err)
	}
	criu, err := checkpoint.FindCRIU()
	if err != nil {
		return "", fmt.Errorf("checkpoint container %s: %w", c.Name, err)
	}
	rc, err := e.rt.Get(c.ID)
	if err != nil {
		return "", fmt.Errorf("checkpoint container %s: %w", c.Name, err)
	}
	cg, err := rc.Cgroup()
	if err != nil {
		return "", fmt.Errorf("checkpoint container %s: %w", c.Name, err)
	}
	engineConfig, err := json.Marshal(c.Config)
	if err != nil {
		return "", fmt.Errorf("checkpoint container %s: %w", c.Name, err)
	}
	target := &checkpoint.Container{
		Name: c.Name, Pid: rc.Pid, Bundle: rc.Bundle, Rootfs: rc.Rootfs, Spec: rc.Spec, Cgroup: cg,
		Record: checkpoint.Record{
			ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID, Created: c.Created.UTC(),
			Engine: engineConfig, CRI: o.CRI,
		},
		WriteRootfsDiff: func(ctx context.Context, w io.Writer) error {
			_, err := e.snap.WriteDiff(ctx, snapshotKey(c.ID), w, runtimeMountpoints)
			return err
		},
	}
	if !o.LeaveRunning {
		// The monitor sees CRIU's kill as a stop asked for: no restart.
		e.update(ctx, c.ID, map[string]any{"stop_requested": 1})
	}
	marker := e.checkpointMarker(c.ID)
	err = checkpoint.Dump(ctx, criu, target, checkpoint.DumpOptions{
		LeaveRunning: o.LeaveRunning, TCPEstablished: o.TCPEstablished, Timeout: o.Timeout,
		Record: func(m checkpoint.Marker) error { return checkpoint.WriteMarker(marker, m) },
	}, archive)
	os.Remove(marker)
	if err != nil {
		if !o.LeaveRunning {
			e.update(context.WithoutCancel(ctx), c.ID, map[string]any{"stop_requested": 0})
		}
		return "", err
	}
	attrs := map[string]string{"archive": archive}
	if o.CreateImage != "" {
		id, err := e.createCheckpointImage(ctx, c, archive, o.CreateImage)
		if err != nil {
			return archive, fmt.Errorf("checkpoint container %s: create image %s: %w", c.Name, o.CreateImage, err)
		}
		attrs["imageID"], attrs["imageName"] = id, o.CreateImage
	}
	e.emit(ctx, c, "checkpoint", attrs)
	if !o.LeaveRunning {
		// As podman shows a checkpointed container: exited, with no
		// error of its own (CRIU's SIGKILL is the checkpoint's).
		after, err := e.poll(ctx, c.ID, 10*time.Second, (*Container).settled)
		if err != nil && !IsNotFound(err) {
			return archive, fmt.Errorf("checkpoint container %s: waiting for it to stop: %w", c.Name, err)
		}
		if err == nil && after.settled() {
			e.db.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET exit_code = 0, signal = 0, error = '' WHERE id = ? AND state = ?`,
				c.ID, StateExited)
		}
	}
	return archive, nil
}

// A killed checkpoint (see package checkpoint's Marker): Checkpoint
// keeps the dump's marker in the container's run directory while it
// runs, and PauseForCheckpoint keeps one for a pod checkpoint's pause
// until ResumeAfterCheckpoint. RecoverCheckpoints, run by the next
// server before it answers, undoes what the markers of dead processes
// record.

func (e *Engine) checkpointMarker(id string) string {
	return filepath.Join(e.runDir(id), "checkpoint.json")
}

func (e *Engine) checkpointPauseMarker(id string) string {
	return filepath.Join(e.runDir(id), "checkpoint-pause.json")
}

// PauseForCheckpoint pauses a container for a pod checkpoint writing
// into directory out, recording first that the checkpoint paused it (and
// where its partial output goes): a container paused so and left paused
// by a killed process is resumed by RecoverCheckpoints, unlike one a
// user paused.
func (e *Engine) PauseForCheckpoint(ctx context.Context, ref, out string) error {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	m := checkpoint.NewMarker()
	m.Paused, m.PodOutput = true, out
	marker := e.checkpointPauseMarker(c.ID)
	if err := checkpoint.WriteMarker(marker, m); err != nil {
		return fmt.Errorf("pause container %s: %w", c.Name, err)
	}
	if err := e.Pause(ctx, c.ID); err != nil {
		os.Remove(marker)
		return err
	}
	return nil
}

// ResumeAfterCheckpoint resumes a container PauseForCheckpoint paused.
func (e *Engine) ResumeAfterCheckpoint(ctx context.Context, ref string) error {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	if err := e.Unpause(ctx, c.ID); err != nil {
		return err
	}
	return os.Remove(e.checkpointPauseMarker(c.ID))
}

// RecoverCheckpoints puts right the containers whose checkpoint a dead
// hull process left unfinished (its marker stands, its owner is gone):
// CRIU killed, the cgroup thawed if the checkpoint froze or paused it
// (and a pause recorded undone: the container is running again), the
// dump's temporary files and a pod checkpoint's partial output removed.
// It returns the IDs of the containers it put right. hull-cri runs it as
// it starts; `hull system check` reports what it would do, and --repair
// does it (a killed `hull container checkpoint` has no server after it).
func (e *Engine) RecoverCheckpoints(ctx context.Context) ([]string, error) {
	cs, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	var fixed []string
	var errs []error
	for _, c := range cs {
		did, err := e.recoverCheckpoint(ctx, c)
		if err != nil {
			errs = append(errs, err)
		}
		if did {
			fixed = append(fixed, c.ID)
		}
	}
	return fixed, errors.Join(errs...)
}

// staleCheckpoint says whether a dead hull process left container c's
// checkpoint unfinished (see RecoverCheckpoints).
func (e *Engine) staleCheckpoint(c *Container) bool {
	for _, file := range []string{e.checkpointMarker(c.ID), e.checkpointPauseMarker(c.ID)} {
		if m, ok, err := checkpoint.ReadMarker(file); err == nil && ok && m.Stale() {
			return true
		}
	}
	return false
}

// recoverCheckpoint is RecoverCheckpoints for container c: whether it
// found anything to put right.
func (e *Engine) recoverCheckpoint(ctx context.Context, c *Container) (bool, error) {
	did := false
	var errs []error
	for _, file := range []string{e.checkpointMarker(c.ID), e.checkpointPauseMarker(c.ID)} {
		m, ok, err := checkpoint.ReadMarker(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.Name, err))
			continue
		}
		if !ok || !m.Stale() {
			continue
		}
		did = true
		var cg *cgroups.Manager
		if rc, err := e.rt.Get(c.ID); err == nil {
			cg, _ = rc.Cgroup()
		}
		err = m.Undo(cg)
		if err == nil && m.Paused && c.State == StatePaused {
			err = e.update(ctx, c.ID, map[string]any{"state": StateRunning})
			if err == nil {
				e.emit(ctx, c, "unpause", nil)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: undo a killed checkpoint: %w", c.Name, err))
			continue
		}
		os.Remove(file)
	}
	return did, errors.Join(errs...)
}
