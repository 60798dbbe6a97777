package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/spec"
)

// resolveNamespaces turns --pid, --ipc and --network container:C into
// the paths of C's namespaces, /proc/PID/ns/X of its running init, which
// the container joins; --ipc host and container:C also share the host's
// or C's /dev/shm. C must be running (its namespaces exist only while its
// init does), and for --ipc its IPC mode must be shareable, as docker
// requires. The paths are resolved at create: C must not be restarted
// before this container starts.
func (e *Engine) resolveNamespaces(ctx context.Context, id string, o *spec.Options) error {
	if err := spec.CheckNamespaceModes(*o); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	o.JoinNamespaces, o.ShmSource = nil, ""
	if o.IpcMode == "host" {
		o.ShmSource = "/dev/shm"
	}
	if o.IpcMode == "shareable" {
		o.ShmSource = e.shmDir(id)
	}
	for _, m := range []struct{ flag, mode, ns string }{{"pid", o.PidMode, "pid"}, {"ipc", o.IpcMode, "ipc"}, {"network", o.Network, "net"}} {
		name := spec.ContainerMode(m.mode)
		if name == "" {
			continue
		}
		donor, err := e.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("--%s %s: %w", m.flag, m.mode, err)
		}
		if donor.State != StateRunning && donor.State != StatePaused || donor.Pid <= 0 || procStart(donor.Pid) != donor.PidStart {
			return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("--%s %s: cannot join the namespace of container %s: it is not running (start it first: hull start %s)", m.flag, m.mode, donor.Name, donor.Name))
		}
		if m.ns == "ipc" {
			switch donor.Config.Spec.IpcMode {
			case "shareable", "host":
			default:
				return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("--ipc %s: container %s has a non-shareable IPC namespace (hint: create it with --ipc shareable)", m.mode, donor.Name))
			}
		}
		proc := "/proc/" + strconv.Itoa(donor.Pid)
		if o.JoinNamespaces == nil {
			o.JoinNamespaces = map[string]string{}
		}
		if m.ns == "ipc" && donor.Config.Spec.IpcMode == "host" {
			o.ShmSource = "/dev/shm"
		} else if m.ns == "ipc" {
			o.ShmSource = e.shmDir(donor.ID)
		}
		o.JoinNamespaces[m.ns] = proc + "/ns/" + m.ns
	}
	return nil
}

// shmDir is where a container with --ipc shareable has its /dev/shm: a
// tmpfs the engine mounts on the host, so that containers that join its
// IPC namespace can bind the same one (a mount inside its own mount
// namespace cannot be bound from another).
func (e *Engine) shmDir(id string) string { return filepath.Join(e.runDir(id), "shm") }

// mountShm mounts a shareable container's /dev/shm tmpfs unless it is
// mounted (after a reboot it is not); cleanup unmounts it.
func (e *Engine) mountShm(c *Container) error {
	o := c.Config.Spec
	if o.IpcMode != "shareable" {
		return nil
	}
	dir := e.shmDir(c.ID)
	if isMounted(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	size := o.ShmSize
	if size == 0 {
		size = 64 << 20
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
		return fmt.Errorf("container %s: mount its shareable /dev/shm: %w", c.Name, err)
	}
	return nil
}

// rejoinNamespaces resolves c's container:C namespace modes again when c
// is started again: C may have been restarted since c was created (its
// init is another process), or be stopped, which is refused as at
// create. A change is recorded and config.json made again from it.
func (e *Engine) rejoinNamespaces(ctx context.Context, c *Container) error {
	o := c.Config.Spec
	if spec.ContainerMode(o.PidMode) == "" && spec.ContainerMode(o.IpcMode) == "" && spec.ContainerMode(o.Network) == "" {
		return nil
	}
	if err := e.resolveNamespaces(ctx, c.ID, &o); err != nil {
		return err
	}
	if maps.Equal(o.JoinNamespaces, c.Config.Spec.JoinNamespaces) && o.ShmSource == c.Config.Spec.ShmSource {
		return nil
	}
	c.Config.Spec = o
	data, _ := json.Marshal(c.Config)
	if err := e.update(ctx, c.ID, map[string]any{"config": string(data)}); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(e.persistDir(c.ID), "config.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return e.ensureConfig(ctx, c)
}
