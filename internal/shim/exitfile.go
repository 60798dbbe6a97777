package shim

import (
	"encoding/json"
	"fmt"
	"os"
)

// The exit file is how a stopper learns a shim's container's exit without
// waiting for the shim's exec back into hull (a new Go runtime, the
// database opened: tens of milliseconds on a loaded host, the whole of a
// stop's latency). The shim writes it once the container is reaped and
// its output drained and logged, right before that exec; the engine's
// Stop, which already has the database open, reads it and records the
// exit itself (engine/stopexit.go). The monitor the shim execs records the
// same exit again, which then changes nothing (first writer wins). The
// exit names the process (Exit.Pid): a file left by an earlier run of the
// container is not taken for this one's.

// WriteExit writes x to path, whole or not at all (a rename into place),
// so that a reader never sees half of it.
func WriteExit(path string, x Exit) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("exit file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("exit file: %w", err)
	}
	return nil
}

// ReadExit reads the exit a shim wrote to path (os.ErrNotExist: none yet).
func ReadExit(path string) (Exit, error) {
	var x Exit
	b, err := os.ReadFile(path)
	if err != nil {
		return x, err
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return x, fmt.Errorf("exit file %s: %w", path, err)
	}
	return x, nil
}
