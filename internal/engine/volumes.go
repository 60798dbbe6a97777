package engine

import (
	"context"
	"fmt"

	"hull/internal/spec"
)

// resolveVolumes turns named and anonymous volume mounts into host
// directories. Named volumes are not implemented yet: they are refused
// with a clear error rather than silently ignored.
func (e *Engine) resolveVolumes(ctx context.Context, c *Container, o *spec.Options) error {
	for _, m := range o.Mounts {
		if m.Type == "volume" {
			return fmt.Errorf("volume %q for %s: named and anonymous volumes are not supported yet; bind-mount a host directory (-v /host/dir:%s)", m.Source, m.Destination, m.Destination)
		}
	}
	return nil
}
