package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ContainerRuntime is where a container lives on the host and the OCI
// spec it runs with: what a verbose CRI ContainerStatus reports (crictl
// inspect's info, as containerd's runtimeSpec, snapshotter and snapshot
// key).
type ContainerRuntime struct {
	Bundle      string // the directory holding its config.json
	Rootfs      string // where its root filesystem is mounted
	Snapshotter string
	SnapshotKey string // its writable layer's snapshot
	// Spec is its config.json as written; nil if there is none (a
	// creation that failed, or one interrupted by a crash).
	Spec json.RawMessage
}

// ContainerRuntimeOf is c's ContainerRuntime. A creation under way in
// this engine (deferred: its config.json follows the create's answer) is
// waited for.
func (e *Engine) ContainerRuntimeOf(c *Container) (*ContainerRuntime, error) {
	e.AwaitCreation(c.ID)
	r := &ContainerRuntime{Bundle: e.persistDir(c.ID), Rootfs: e.rootfs(c.ID), Snapshotter: e.cfg.Storage.Snapshotter, SnapshotKey: snapshotKey(c.ID)}
	spec, err := os.ReadFile(filepath.Join(r.Bundle, "config.json"))
	switch {
	case err == nil:
		r.Spec = spec
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("container %s: read its spec: %w", c.Name, err)
	}
	return r, nil
}

// PodRuntime is where a pod's shared namespaces are held: what a verbose
// CRI PodSandboxStatus reports. A pod has no process of its own (its
// namespaces are pinned files: pods.go) but the holder of a shared PID
// namespace (podpid.go).
type PodRuntime struct {
	// Namespaces are the pinned namespace files by kind (net, ipc, uts,
	// pid, user), those there are: nsenter --net=PATH enters one.
	Namespaces map[string]string
	// HolderPid is the PID namespace holder's pid, 0 for none.
	HolderPid int
}

// PodRuntimeOf is p's PodRuntime.
func (e *Engine) PodRuntimeOf(p *Pod) *PodRuntime {
	r := &PodRuntime{Namespaces: map[string]string{}, HolderPid: e.podHolder(p.ID)}
	for _, kind := range []string{"net", "ipc", "uts", "pid", "user"} {
		if path := e.podNS(p.ID, kind); unix.Access(path, unix.F_OK) == nil {
			r.Namespaces[kind] = path
		}
	}
	return r
}
