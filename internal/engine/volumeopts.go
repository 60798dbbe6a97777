package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/metadata"
	"hull/internal/runtime"
	"hull/internal/spec"
)

// The local driver's options (docker's `volume create -o`): type, device
// and o, as mount(8) takes them. A volume with options is
//
//   - a bind volume (type=none, o=bind or rbind, device=/host/dir): the
//     containers bind the host directory itself; nothing is mounted on
//     the host, so removing the volume never touches the directory;
//   - any other filesystem (type=tmpfs with o=size=…, or a device's
//     filesystem): mounted on the volume's _data directory when the
//     volume is created and again whenever a container using it is
//     created or started (after a reboot, say), and unmounted when the
//     volume is removed. A tmpfs volume's content lasts while it is
//     mounted, shared by the containers using it.

func init() {
	metadata.Register(metadata.Migration{Package: "volume", Version: 2, Statements: []string{
		`ALTER TABLE volumes ADD COLUMN options TEXT NOT NULL DEFAULT '{}'`,
	}})
}

// checkVolumeOptions validates the local driver's options as docker
// does (type and device go together, o needs both), and what docker
// leaves to the first mount: a bind's device must be a directory.
func checkVolumeOptions(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	invalid := func(format string, a ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
	}
	for k := range opts {
		switch k {
		case "type", "device", "o":
		case "size":
			return invalid(`invalid option: "size": per-volume quotas need an xfs volume root; use type=tmpfs,device=tmpfs,o=size=SIZE for a sized tmpfs`)
		default:
			return invalid("invalid option: %q (the local driver takes type, device and o)", k)
		}
	}
	typ, device := opts["type"], opts["device"]
	switch {
	case typ == "":
		return invalid(`missing required option: "type" (e.g. -o type=tmpfs -o device=tmpfs, or -o type=none -o o=bind -o device=/path)`)
	case device == "":
		return invalid(`missing required option: "device" (tmpfs for a tmpfs, the host directory for a bind)`)
	}
	if isBindVolume(opts) {
		if typ != "none" && typ != "bind" {
			return invalid("o=%s with type=%s: a bind volume is type=none", opts["o"], typ)
		}
		if !filepath.IsAbs(device) {
			return invalid("device %q: a bind volume's device is an absolute host path", device)
		}
		if fi, err := os.Stat(device); err != nil || !fi.IsDir() {
			return invalid("device %s: not a directory on this host (create it first): %v", device, err)
		}
		return nil
	}
	if typ == "none" || typ == "bind" {
		return invalid("type=%s needs o=bind (or rbind): -o type=none -o o=bind -o device=/host/path", typ)
	}
	return nil
}

// isBindVolume: the options make a bind of a host directory.
func isBindVolume(opts map[string]string) bool {
	o := strings.Split(opts["o"], ",")
	return slices.Contains(o, "bind") || slices.Contains(o, "rbind")
}

// volumeData is where a volume's content is: its bind's host directory,
// or its _data directory (with the volume's filesystem mounted on it).
func (e *Engine) volumeData(v *Volume) string {
	if isBindVolume(v.Options) {
		return v.Options["device"]
	}
	return v.Mountpoint
}

// mountVolume mounts a volume's filesystem on its _data directory, if it
// has one and it is not mounted yet.
func mountVolume(v *Volume) error {
	if len(v.Options) == 0 || isBindVolume(v.Options) || isMountpoint(v.Mountpoint) {
		return nil
	}
	flags, data := runtime.MountOptions(strings.Split(v.Options["o"], ","))
	if err := unix.Mount(v.Options["device"], v.Mountpoint, v.Options["type"], flags, data); err != nil {
		return fmt.Errorf("volume %s: mount %s (type %s, options %q) on %s: %w", v.Name, v.Options["device"], v.Options["type"], v.Options["o"], v.Mountpoint, err)
	}
	return nil
}

// unmountVolume unmounts what mountVolume mounted; the _data directory
// must not be removed while it is mounted.
func unmountVolume(v *Volume) error {
	for isMountpoint(v.Mountpoint) {
		if err := unix.Unmount(v.Mountpoint, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("volume %s: unmount %s: %w", v.Name, v.Mountpoint, err)
		}
	}
	return nil
}

// isMountpoint: dir is on another filesystem than its parent.
func isMountpoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// volumeSpecMounts is o with the mounts of bind volumes pointing at
// their host directories (o=bind: not recursive; o=ro: read-only), for
// the runtime spec; the record keeps the volume's path, which names it.
func (e *Engine) volumeSpecMounts(ctx context.Context, o spec.Options) spec.Options {
	mounts := slices.Clone(o.Mounts)
	for i, m := range mounts {
		name := e.volumeName(m)
		if name == "" {
			continue
		}
		v, err := e.Volume(ctx, name)
		if err != nil || !isBindVolume(v.Options) {
			continue
		}
		m.Source = v.Options["device"]
		m.Options = slices.Clone(m.Options)
		for _, opt := range strings.Split(v.Options["o"], ",") {
			switch opt {
			case "bind":
				m.Options = append(m.Options, "bind")
			case "ro":
				m.ReadOnly = true
			}
		}
		mounts[i] = m
	}
	o.Mounts = mounts
	return o
}

// mountContainerVolumes mounts the filesystems of the volumes c uses
// that have one and are not mounted (after a reboot).
func (e *Engine) mountContainerVolumes(ctx context.Context, c *Container) error {
	for _, m := range c.Config.Spec.Mounts {
		name := e.volumeName(m)
		if name == "" {
			continue
		}
		v, err := e.Volume(ctx, name)
		if err != nil {
			var nf *VolumeNotFoundError
			if errors.As(err, &nf) {
				continue
			}
			return err
		}
		if err := mountVolume(v); err != nil {
			return err
		}
	}
	return nil
}

// optionsString is docker's way of showing options: k=v,k=v sorted.
func optionsString(opts map[string]string) string {
	var kv []string
	for k, v := range opts {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
