package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

// creatingFile records, while create runs, what it has made outside the
// state directory (the cgroups), so a create that was killed half-way can
// be undone by the next command that meets its directory.
const creatingFile = "creating.json"

// claim makes the container's state directory and holds a lock on it for
// as long as create runs (until the returned file is closed). A directory
// left without state.json by a create that died is reclaimed first; one
// whose create is still running is refused.
func (r *Runtime) claim(id, dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		err := os.Mkdir(dir, 0o711)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		if attempt > 0 {
			return nil, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("container %s: already exists", id))
		}
		if reclaimed, rerr := r.reclaim(id, dir); rerr != nil {
			return nil, rerr
		} else if !reclaimed {
			return nil, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("container %s: already exists", id))
		}
	}
	f, err := os.Open(dir)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("container %s: lock state directory: %w", id, err)
	}
	return f, nil
}

// reclaim removes dir if it is what a killed create left behind: no
// state.json, and no create holding its lock. The processes and cgroups
// that create recorded in creating.json go with it. It reports whether
// the directory is gone; false (no error) means it belongs to a container
// or to a create still running.
func (r *Runtime) reclaim(id, dir string) (bool, error) {
	if _, err := os.Lstat(filepath.Join(dir, "state.json")); err == nil {
		return false, nil
	}
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("container %s: %w", id, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false, nil // a create is running
	}
	// Under the lock, state.json may have appeared just before it.
	if _, err := os.Lstat(filepath.Join(dir, "state.json")); err == nil {
		return false, nil
	}
	var rec Container
	if b, err := os.ReadFile(filepath.Join(dir, creatingFile)); err == nil && json.Unmarshal(b, &rec) == nil && rec.CgroupPath != "" {
		if cg, err := cgroups.Load(rec.CgroupPath, rec.CgroupCreated); err == nil && cg.Exists() {
			cg.Kill()
			if err := cg.Destroy(); err != nil {
				return false, fmt.Errorf("container %s: remove what an interrupted create left: %w", id, err)
			}
		}
	}
	r.warn("container %s: removed what an interrupted create left behind", id)
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("container %s: %w", id, err)
	}
	return true, nil
}
