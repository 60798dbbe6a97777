package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHook runs one OCI hook with the container state as JSON on stdin, as
// the spec requires, killing it after its timeout.
func runHook(h specs.Hook, st specs.State) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("hook %s: timeout must be positive, got %d", h.Path, *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(marshalState(st))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("hook %s: timed out after %ds", h.Path, *h.Timeout)
	}
	if err != nil {
		return fmt.Errorf("hook %s: %w: %s", h.Path, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
