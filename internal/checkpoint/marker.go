package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"hull/internal/cgroups"
	"hull/internal/shim"
)

// A checkpoint under way changes the container it dumps: Dump freezes
// its cgroup, runs CRIU (which seizes its tasks) and writes a work
// directory and a temporary archive beside the archive's path; a pod
// checkpoint pauses each of its containers first. A hull process killed
// midway (kill -9, an OOM kill) undoes none of it, so each step is first
// recorded in a Marker that the caller keeps beside the container (the
// engine: in its run directory), and the next process that finds a
// marker whose owner is dead puts the container right with Undo: CRIU
// killed, the cgroup thawed if the checkpoint froze it, the temporary
// files removed.
//
// A marker tells a checkpoint's freeze from a user's pause: Froze is set
// only when Dump froze a cgroup it found thawed, and a pod checkpoint's
// pause is recorded by Paused, so a container a user paused on purpose
// is never thawed by Undo.

// Marker is a checkpoint under way, as recorded for the next process.
type Marker struct {
	// Owner is the hull process doing the checkpoint, OwnerStart its
	// start time (clock ticks after boot, field 22 of /proc/PID/stat):
	// the marker is stale once that process is gone.
	Owner      int    `json:"owner"`
	OwnerStart uint64 `json:"ownerStart"`
	// Froze says Dump froze the container's cgroup (it was thawed).
	Froze bool `json:"froze,omitempty"`
	// Paused says a pod checkpoint paused the container (the engine's
	// pause, which may have recorded it paused).
	Paused bool `json:"paused,omitempty"`
	// Work is Dump's work directory, Temp its temporary archive: both
	// beside the archive, both named by Dump (WorkPrefix).
	Work string `json:"work,omitempty"`
	Temp string `json:"temp,omitempty"`
	// CRIU is the criu process Dump runs, CRIUStart its start time.
	CRIU      int    `json:"criu,omitempty"`
	CRIUStart uint64 `json:"criuStart,omitempty"`
	// PodOutput is a pod checkpoint's output directory: its entries that
	// the pod checkpoint writes (PodFile, PodContainersDir) are partial
	// while the marker stands.
	PodOutput string `json:"podOutput,omitempty"`
}

// WorkPrefix starts the names of Dump's work directory and temporary
// archive, beside the archive: recognisably hull's.
const WorkPrefix = ".hull-checkpoint-"

// NewMarker is a marker owned by this process.
func NewMarker() Marker {
	return Marker{Owner: os.Getpid(), OwnerStart: procStart(os.Getpid())}
}

// WriteMarker records m in file (atomically: a reader sees the old
// record or the new).
func WriteMarker(file string, m Marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("checkpoint marker: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint marker: %w", err)
	}
	return nil
}

// ReadMarker reads the marker in file; ok is false when there is none.
func ReadMarker(file string) (m Marker, ok bool, err error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return Marker{}, false, nil
	}
	if err != nil {
		return Marker{}, false, fmt.Errorf("checkpoint marker: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Marker{}, false, fmt.Errorf("checkpoint marker %s: %w", file, err)
	}
	return m, true, nil
}

// Stale says the marker's owner is gone: its checkpoint will not finish.
func (m Marker) Stale() bool {
	return !sameProcess(m.Owner, m.OwnerStart)
}

// Undo puts right what the dead checkpoint of m left: CRIU killed (and
// waited for: the kernel detaches the tasks it had seized, which run on
// once thawed), the cgroup cg thawed if the checkpoint froze or paused
// it, the work directory and temporary archive removed, and a pod
// checkpoint's partial output removed. It does not touch the engine's
// record of a paused container: the caller does.
func (m Marker) Undo(cg *cgroups.Manager) error {
	var errs []error
	if m.CRIU > 0 && sameProcess(m.CRIU, m.CRIUStart) {
		syscall.Kill(m.CRIU, syscall.SIGKILL)
		for deadline := time.Now().Add(5 * time.Second); sameProcess(m.CRIU, m.CRIUStart); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("criu %d does not end", m.CRIU))
				break
			}
		}
	}
	if (m.Froze || m.Paused) && cg != nil {
		if err := cg.Thaw(); err != nil {
			errs = append(errs, fmt.Errorf("thaw: %w", err))
		}
	}
	for _, p := range []string{m.Work, m.Temp} {
		// Only what Dump named: never a path the marker did not make.
		if p != "" && strings.HasPrefix(filepath.Base(p), WorkPrefix) {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if m.PodOutput != "" {
		errs = append(errs, RemovePodOutput(m.PodOutput))
	}
	return errors.Join(errs...)
}

// RemovePodOutput removes what a pod checkpoint writes into its output
// directory (pod.dump, containers/), leaving the directory, which is the
// caller's, and anything else in it.
func RemovePodOutput(dir string) error {
	var errs []error
	for _, name := range []string{PodFile, PodContainersDir} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sameProcess says pid is alive and started at start.
func sameProcess(pid int, start uint64) bool {
	return pid > 0 && processAlive(pid) && procStart(pid) == start
}

// procStart is pid's start time in clock ticks after boot (0: gone),
// as the engine's claims record it.
func procStart(pid int) uint64 { return shim.ProcStart(pid) }
