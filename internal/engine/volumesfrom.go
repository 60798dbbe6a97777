package engine

import (
	"context"
	"fmt"
	"slices"
)

// addVolumesFrom appends to o's mounts the volumes and bind mounts of the
// containers cfg.VolumesFrom names, at the same destinations, as docker
// does: read-only as there unless the entry says ro or rw, and skipped
// where the new container mounts something of its own. Their sources are
// already host paths (resolved when those containers were created), so
// this runs after resolveVolumes. tmpfs mounts are not shared (they are
// not on the host).
func (e *Engine) addVolumesFrom(ctx context.Context, cfg *Config) error {
	for _, vf := range cfg.VolumesFrom {
		other, err := e.Get(ctx, vf.Container)
		if err != nil {
			return fmt.Errorf("--volumes-from %s: %w", vf.Container, err)
		}
		for _, m := range other.Config.Spec.Mounts {
			if m.Type != "volume" && m.Type != "bind" {
				continue
			}
			if slices.ContainsFunc(cfg.Spec.Mounts, func(own Mount) bool { return own.Destination == m.Destination }) {
				continue
			}
			switch vf.Mode {
			case "ro":
				m.ReadOnly = true
			case "rw":
				m.ReadOnly = false
			}
			m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" || o == "rw" })
			cfg.Spec.Mounts = append(cfg.Spec.Mounts, m)
		}
	}
	return nil
}
