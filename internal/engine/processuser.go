package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ProcessUser is the identity a container's first process runs as: the
// uid, gid and supplementary groups create resolved in the image (the
// user and group files of its rootfs) into its config.json. The CRI
// reports it in ContainerStatus.user, so kubelet can show what a
// securityContext and the image's /etc/group made of it.
func (e *Engine) ProcessUser(ctx context.Context, ref string) (specs.User, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return specs.User{}, err
	}
	return e.ContainerProcessUser(c)
}

// ContainerProcessUser is ProcessUser of a container already read (no
// second lookup): it never changes once the container is created, so a
// server may keep it.
func (e *Engine) ContainerProcessUser(c *Container) (specs.User, error) {
	data, err := os.ReadFile(filepath.Join(e.persistDir(c.ID), "config.json"))
	if err != nil {
		return specs.User{}, fmt.Errorf("container %s: its process's user: %w", c.Name, err)
	}
	var doc struct {
		Process *struct {
			User specs.User `json:"user"`
		} `json:"process"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Process == nil {
		return specs.User{}, fmt.Errorf("container %s: its config.json has no process: %v", c.Name, err)
	}
	return doc.Process.User, nil
}
