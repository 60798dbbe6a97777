package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/containerd/errdefs"
)

// ReopenLog makes a running container's monitor write to a new file at
// its log path after whoever rotates the log (kubelet, for a CRI
// container's explicit path) has renamed the old one: the file is made
// at once, and the monitor's writer, which checks the path at most once
// a second when the log has no rotation of its own
// (streams.LogWriter.follow), moves to it by its next line.
func (e *Engine) ReopenLog(ctx context.Context, ref string) error {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	if !c.IsRunning() {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running: only a running container's log can be reopened", c.Name))
	}
	path, size, _ := e.logSettings(c)
	if path == "" {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s keeps no log (the none log driver)", c.Name))
	}
	if size > 0 {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s: hull rotates its log itself (max-size); there is nothing to reopen", c.Name))
	}
	// Not through a symbolic link made in the rotation's window (the
	// writer refuses one too: streams.LogWriter).
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
	if errors.Is(err, syscall.ELOOP) {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("reopen the log of %s: %s is a symbolic link: the log is not written through one (remove it)", c.Name, path))
	}
	if err != nil {
		return fmt.Errorf("reopen the log of %s: %w", c.Name, err)
	}
	return f.Close()
}
