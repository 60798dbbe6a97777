package engine

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"hull/internal/snapshot"
)

// usable finds a container whose writable layer can be read.
func (e *Engine) usable(ctx context.Context, ref string) (*Container, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if c.State == StateRemoving || c.State == StateDead {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is being removed", c.Name))
	}
	return c, nil
}

// CommitOptions tune Commit.
type CommitOptions struct {
	// Name is REPO[:TAG] for the new image; "" leaves it untagged.
	Name string
	// Author and Message go into the image's config and history.
	Author, Message string
	// Changes are Dockerfile instructions for the new config (CMD, ENV,
	// ...; see applyChanges).
	Changes []string
	// Pause freezes a running container while its layer is read, so the
	// layer is one moment of it (docker's default).
	Pause bool
}

// Commit makes a new image of the container: its image's layers, its
// writable layer on top (none if it changed nothing), and its own
// config (the image's with the container's command, environment, user,
// working directory, labels, ports and stop signal) with o.Changes
// applied. The image is stored and unpacked through the image service,
// as Import's, so it runs at once. It returns the image ID.
func (e *Engine) Commit(ctx context.Context, ref string, o CommitOptions) (string, error) {
	c, err := e.usable(ctx, ref)
	if err != nil {
		return "", err
	}
	name, err := parseImageName("commit", o.Name)
	if err != nil {
		return "", err
	}
	rec, err := e.images.Resolve(ctx, c.ImageID)
	if err != nil {
		return "", fmt.Errorf("commit %s: its image %s: %w", c.Name, c.Image, err)
	}
	base, err := e.images.Image(rec)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	baseCf, err := base.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	cfg := containerImageConfig(c, baseCf.Config)
	if err := applyChanges(&cfg, o.Changes); err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}

	if o.Pause && c.State == StateRunning {
		if err := e.Pause(ctx, c.ID); err != nil {
			return "", fmt.Errorf("commit %s: pause: %w", c.Name, err)
		}
		defer e.Unpause(context.WithoutCancel(ctx), c.ID)
	}
	layerFile, entries, err := e.writeLayer(ctx, c)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	defer os.Remove(layerFile)

	now := time.Now().UTC()
	hist := v1.History{
		Created: v1.Time{Time: now}, Author: o.Author, Comment: o.Message,
		CreatedBy: strings.TrimSpace(c.Config.Path + " " + strings.Join(c.Config.Args, " ")),
	}
	img := base
	if entries > 0 {
		mt := types.DockerLayer
		if m, err := base.MediaType(); err == nil && m == types.OCIManifestSchema1 {
			mt = types.OCILayer
		}
		layer, err := tarball.LayerFromFile(layerFile, tarball.WithMediaType(mt))
		if err == nil {
			img, err = mutate.Append(base, mutate.Addendum{Layer: layer, History: hist})
		}
		if err != nil {
			return "", fmt.Errorf("commit %s: %w", c.Name, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	cf = cf.DeepCopy()
	cf.Config, cf.Author, cf.Created, cf.Container = cfg, o.Author, v1.Time{Time: now}, c.ID
	if entries == 0 {
		hist.EmptyLayer = true
		cf.History = append(cf.History, hist)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	id, err := e.addImage(ctx, img, name)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	attrs := map[string]string{"imageID": id}
	if name != nil {
		attrs["imageName"] = name.Familiar()
	}
	e.emit(ctx, c, "commit", attrs)
	return id, nil
}

// writeLayer writes the container's writable layer, gzip-compressed,
// to a temp file under the root and returns its path and the number of
// entries in it.
func (e *Engine) writeLayer(ctx context.Context, c *Container) (string, int, error) {
	name, n, err := e.gzipLayer(".commit-*.tar.gz", func(w io.Writer) (int, error) {
		return e.snap.WriteDiff(ctx, snapshotKey(c.ID), w, runtimeMountpoints)
	})
	if errors.Is(err, snapshot.ErrNotFound) {
		err = fmt.Errorf("the container has no writable layer: %w", err)
	}
	return name, n, err
}

// gzipLayer writes a layer's tar stream (what write writes),
// gzip-compressed, to a temp file under the root named by pattern, for
// tarball.LayerFromFile; it returns the file's path and write's count.
// The caller removes the file.
func (e *Engine) gzipLayer(pattern string, write func(io.Writer) (int, error)) (string, int, error) {
	f, err := os.CreateTemp(e.cfg.Root, pattern)
	if err != nil {
		return "", 0, err
	}
	zw := gzip.NewWriter(f)
	n, err := write(zw)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), n, nil
}

// containerImageConfig is the image config a container runs with: its
// image's, with what the container was created with laid over it.
func containerImageConfig(c *Container, img v1.Config) v1.Config {
	cfg := *img.DeepCopy()
	eff := c.Config.Effective
	if eff == nil {
		return cfg
	}
	cfg.Env, cfg.Cmd, cfg.Entrypoint = eff.Env, eff.Cmd, eff.Entrypoint
	cfg.User, cfg.WorkingDir, cfg.StopSignal = eff.User, eff.WorkingDir, eff.StopSignal
	cfg.Labels, cfg.ExposedPorts = eff.Labels, eff.ExposedPorts
	if hc := c.Config.Healthcheck; hc != nil {
		// Without StartInterval: go-containerregistry's config has none.
		cfg.Healthcheck = &v1.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	}
	return cfg
}
