package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/wire"
)

// Container is what the runtime records about one container in
// <root>/<id>/state.json. It survives the hull process that created the
// container; every later command (start, state, kill, exec, delete) loads it.
type Container struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	// Pid is the container's init in the host pid namespace, and
	// PidStartTime its start time in clock ticks since boot (field 22 of
	// /proc/PID/stat): a pid is only the container's if both match, so
	// a recycled pid is never signalled.
	Pid          int       `json:"pid"`
	PidStartTime uint64    `json:"pid_start_time"`
	Created      time.Time `json:"created"`
	// CgroupPath is the path below the hierarchy roots, CgroupCreated the
	// directories this container made (and delete removes).
	CgroupPath    string   `json:"cgroup_path"`
	CgroupCreated []string `json:"cgroup_created,omitempty"`
	// SharedPidNS is set when the container has no pid namespace of its
	// own: killing the init then does not kill the rest, so delete and
	// kill --all sweep the cgroup.
	SharedPidNS bool `json:"shared_pid_ns,omitempty"`
	// Spec is config.json as it was at create: hooks, annotations, the
	// process defaults and seccomp profile for exec. It is kept next to
	// state.json in spec.wire (see save); state.json files of earlier
	// versions have it inline.
	Spec *specs.Spec `json:"spec,omitempty"`

	dir string
	cg  *cgroups.Manager // as Create resolved it, for DeleteContainer
}

// checkID refuses ids that could escape the state root.
func checkID(id string) error {
	if id == "" || len(id) > 1024 || !validID(id) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container id %q: use letters, digits and _.+- (not starting with a symbol)", id))
	}
	return nil
}

// ErrNotExist is returned for a container id with no state (class
// errdefs.ErrNotFound).
var ErrNotExist = errdefs.ErrNotFound.WithMessage("container does not exist")

func (r *Runtime) load(id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.Root, id)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c := &Container{dir: dir}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("container %s: state.json: %w", id, err)
	}
	if c.Spec == nil {
		if c.Spec, err = c.loadSpec(); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
	}
	return c, nil
}

// specFile holds a container's spec in the wire encoding: the first JSON
// encoding of a spec in a process builds its encoders by reflection, about
// a millisecond between the init's report that it is ready and Create's
// return, and every later command paid the decoding likewise.
const specFile = "spec.wire"

// loadSpec reads the spec save kept. One this build cannot decode (written
// by another version of hull, whose spec types differ) is read again from
// the bundle's config.json.
func (c *Container) loadSpec() (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, specFile))
	if err == nil {
		var s specs.Spec
		if err = wire.Decode(b, &s); err == nil {
			return &s, nil
		}
	}
	s, lerr := LoadSpec(c.Bundle)
	if lerr != nil {
		return nil, fmt.Errorf("spec: %v; %w", err, lerr)
	}
	return s, nil
}

// save writes state.json atomically, the spec first (specFile) when it
// has one.
func (c *Container) save() error {
	if c.Spec != nil {
		b, err := wire.Append(nil, c.Spec)
		if err == nil {
			err = writeAtomic(filepath.Join(c.dir, specFile), b)
		}
		if err != nil {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
	}
	record := *c
	record.Spec = nil
	return record.saveAs("state.json")
}

// saveAs writes the record atomically under name.
func (c *Container) saveAs(name string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(c.dir, name), b); err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	return nil
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (c *Container) fifoPath() string { return filepath.Join(c.dir, "exec.fifo") }

// Cgroup is the container's cgroup manager (a supervisor reads its
// counters through it without loading the state again).
func (c *Container) Cgroup() (*cgroups.Manager, error) {
	if c.cg != nil {
		return c.cg, nil
	}
	return cgroups.Load(c.CgroupPath, c.CgroupCreated)
}

// Status works out the OCI status from the kernel, not from a stored field:
// stopped when the init is gone (or its pid now belongs to another process
// or is a zombie), created while the init still waits on exec.fifo, paused
// when the cgroup is frozen, running otherwise.
func (c *Container) Status() specs.ContainerState {
	if !c.initAlive() {
		return specs.StateStopped
	}
	if _, err := os.Lstat(c.fifoPath()); err == nil {
		return specs.StateCreated
	}
	if cg, err := c.Cgroup(); err == nil && cg.Frozen() {
		return "paused"
	}
	return specs.StateRunning
}

func (c *Container) initAlive() bool {
	if c.Pid <= 0 {
		return false
	}
	st, state, err := procStartTime(c.Pid)
	if err != nil || st != c.PidStartTime {
		return false
	}
	return state != 'Z' && state != 'X'
}

// procStartTime reads the start time (clock ticks after boot) and the
// state letter of pid from /proc/PID/stat.
func procStartTime(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, f[0][0], nil
}

// OCIState is the state the OCI spec defines (printed by `state`, given to
// hooks on stdin).
func (c *Container) OCIState() specs.State {
	st := specs.State{
		Version: specs.Version,
		ID:      c.ID,
		Status:  c.Status(),
		Bundle:  c.Bundle,
	}
	if st.Status != specs.StateStopped {
		st.Pid = c.Pid
	}
	if c.Spec != nil {
		st.Annotations = c.Spec.Annotations
	}
	return st
}

// signal sends sig to the init after checking it is still the same
// process.
func (c *Container) signal(sig unix.Signal) error {
	if !c.initAlive() {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s: not running", c.ID))
	}
	if err := unix.Kill(c.Pid, sig); err != nil {
		return fmt.Errorf("container %s: signal %d to pid %d: %w", c.ID, sig, c.Pid, err)
	}
	return nil
}

// validID matches [A-Za-z0-9][A-Za-z0-9_.+-]* (matched by hand: a regular
// expression compiled at start-up cost every container's init).
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("_.+-", rune(c))) {
			return false
		}
	}
	return id != ""
}
