// Package runtime is hull's OCI runtime: it turns a bundle (a root
// filesystem plus config.json) into an isolated, limited process, as runc
// does, and manages it through the lifecycle the OCI runtime spec defines:
//
//	Create  namespaces, cgroups, root filesystem, mounts, devices; the init
//	        then waits on <root>/<id>/exec.fifo with everything prepared
//	Start   opens exec.fifo, which releases the init into the user process
//	State   reports created/running/paused/stopped from the kernel
//	Kill    signals the init (or every process of the cgroup)
//	Exec    starts another process inside every namespace of the container
//	Delete  kills what is left, runs poststop hooks, removes cgroups and state
//
// How a process gets into the container: the parent (this package) starts
// the init binary (Runtime.InitPath, the small static hull-init, or else
// hull itself), from a copy sealed in a memfd whenever anything in the
// container could reach it (so the container can never write to the host's
// binary). A C constructor (package nsenter) runs in that
// child before the Go runtime exists, makes it non-dumpable (so the
// container cannot open its /proc/PID files until the user process replaces
// it), joins and unshares namespaces, and forks the container's first
// process, which then runs InitMain in Go: it builds the root filesystem,
// drops privileges and execs the user process.
// Parent and child talk over a SOCK_SEQPACKET socket pair.
package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	_ "hull/internal/runtime/nsenter" // the pre-Go-runtime namespace constructor
)

// Runtime manages the containers whose state lives under Root (runc keeps
// this in /run/runc; hull in <run-root>/oci).
type Runtime struct {
	Root string
	// Warn receives non-fatal problems (a clamped rlimit, a failed
	// poststart hook). Defaults to stderr.
	Warn func(msg string)
	// InitPath is the binary a container's first process starts from
	// to set the container up before it execs the user's program: a
	// small static one (hull-init) starts in a fraction of the time
	// hull itself takes. Empty: this binary re-executes itself.
	InitPath string

	sealOnce sync.Once
	sealFD   int
	sealErr  error
}

// InitBinary is p when it is an executable file, else "": what to set
// InitPath to, so a missing hull-init falls back to this binary.
func InitBinary(p string) string {
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return ""
	}
	return p
}

func (r *Runtime) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.Warn != nil {
		r.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "warning:", msg)
}

// CreateOptions are the knobs of `create` beyond the bundle's config.json.
type CreateOptions struct {
	Bundle string
	// Prepared, if set, is what was made for this container ahead of
	// its Create; Create takes it and closes what it does not keep.
	Prepared *Prepared
	// PidFile, if set, receives the init's pid once it is ready.
	PidFile string
	// ConsoleSocket is the path of a unix socket that receives the
	// pty master when process.terminal is true.
	ConsoleSocket string
	// Console is an already connected socket used instead of
	// ConsoleSocket (foreground `run` proxies the terminal itself).
	Console *os.File
	// SealedInit runs the init from a sealed memfd copy of the binary
	// even when nothing in the container could reach it (see
	// needsSealedInit); the copy costs ~0.5 ms per MB of binary.
	SealedInit bool
	// NoPivot uses MS_MOVE+chroot instead of pivot_root.
	NoPivot bool
	// PreserveFDs passes fds 3..3+N-1 of this process to the container.
	PreserveFDs int
	// Stdio for the container; nil means this process's own.
	Stdin, Stdout, Stderr *os.File
}

// Prepared is what was made for a container before its Create, to take
// that time out of the Create (a monitor makes it while the container is
// being created, see monitor.Prepared). Each part is optional, and Create
// falls back to making it itself.
type Prepared struct {
	// Spec is the bundle's config.json, read and decoded already (with
	// LoadSpec, or received otherwise); nil: Create reads it.
	Spec *specs.Spec
	// NetNS is a new network namespace (NewNetNS), which a container
	// whose spec asks for a new one joins instead of making its own; not
	// for a container with a user namespace, which must own its network
	// namespace.
	NetNS *os.File
	// Early is the container's first process (StartEarly), which Create
	// takes if the spec suits it.
	Early *Early
}

// Close closes what was prepared (nil: nothing). Create calls it; what
// Create took stays its own.
func (p *Prepared) Close() {
	if p == nil {
		return
	}
	if p.NetNS != nil {
		p.NetNS.Close()
	}
	if p.Early != nil {
		p.Early.Close()
	}
}

// Get loads a container's recorded state.
func (r *Runtime) Get(id string) (*Container, error) { return r.load(id) }

// State returns the OCI state of a container.
func (r *Runtime) State(id string) (specs.State, error) {
	c, err := r.load(id)
	if err != nil {
		return specs.State{}, err
	}
	return c.OCIState(), nil
}

// List returns every container under Root, sorted by id.
func (r *Runtime) List() ([]*Container, error) {
	ents, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := r.load(e.Name())
		if err != nil {
			continue // half-created or foreign directory
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// LoadSpec reads and minimally validates <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	if err := CheckSpec(&s); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	return &s, nil
}

// CheckSpec minimally validates a decoded config.json, and gives it the
// empty linux section a runtime needs when it has none.
func CheckSpec(s *specs.Spec) error {
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("config.json has no root.path")
	}
	if s.Process == nil {
		return errors.New("config.json has no process")
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return nil
}

// Start releases a created container's init into the user process, then
// runs the poststart hooks.
func (r *Runtime) Start(id string) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	return r.StartContainer(c)
}

// StartContainer is Start for the container Create returned, without
// reading its state back.
func (r *Runtime) StartContainer(c *Container) error {
	id := c.ID
	switch st := c.Status(); st {
	case specs.StateCreated:
	case specs.StateStopped:
		return fmt.Errorf("container %s: cannot start a container that has stopped", id)
	default:
		return fmt.Errorf("container %s: cannot start a container in the %s state", id, st)
	}
	fd, err := unix.Open(c.fifoPath(), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: open exec fifo: %w", id, err)
	}
	defer unix.Close(fd)
	// One byte: the init is released. Then EOF: it has exec'd (or died).
	got := false
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("container %s: wait on exec fifo: %w", id, err)
		}
		if n > 0 {
			var b [1]byte
			k, err := unix.Read(fd, b[:])
			if k == 1 {
				got = true
				continue
			}
			if k == 0 && got {
				break
			}
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("container %s: read exec fifo: %w", id, err)
			}
		}
		if !c.initAlive() {
			if got {
				break // released, then failed before or at execve
			}
			return fmt.Errorf("container %s: init exited before start", id)
		}
	}
	if err := os.Remove(c.fifoPath()); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if c.Spec.Hooks != nil {
		st := c.OCIState()
		for _, h := range c.Spec.Hooks.Poststart {
			if err := runHook(h, st); err != nil {
				r.warn("container %s: poststart hook: %v", id, err)
			}
		}
	}
	return nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	if all {
		cg, err := c.Cgroup()
		if err != nil {
			return err
		}
		return cg.Signal(sig)
	}
	if c.Status() == specs.StateStopped {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s: not running", id))
	}
	return c.signal(sig)
}

// Delete removes a stopped container; with force, one in any state (it is
// killed first).
// Poststop hooks run after the processes are gone.
func (r *Runtime) Delete(id string, force bool) error {
	c, err := r.load(id)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			// What a killed create left is removed; a create that is
			// still running is not touched.
			// With force, a create whose caller died is given a moment
			// to undo itself (a spare monitor whose command was killed
			// ends the process it started ahead).
			dir := filepath.Join(r.Root, id)
			if _, serr := os.Lstat(dir); serr == nil {
				deadline := time.Now().Add(5 * time.Second)
				for {
					gone, rerr := r.reclaim(id, dir)
					if rerr != nil {
						return rerr
					}
					if gone {
						return nil
					}
					if !force || time.Now().After(deadline) {
						return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s: is being created", id))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if force {
				return nil
			}
		}
		return err
	}
	return r.DeleteContainer(c, force)
}

// DeleteContainer is Delete for a container the caller already holds (as
// Create returned it), saving a reload of its state.
func (r *Runtime) DeleteContainer(c *Container, force bool) error {
	id := c.ID
	st := c.Status()
	// The spec: deleting a container that is not stopped is an error
	// (runc lets a created one go; --force covers that case).
	if st != specs.StateStopped && !force {
		return fmt.Errorf("container %s: cannot delete a %s container (stop it first or use --force)", id, st)
	}
	cg, cgErr := c.Cgroup()
	if st != specs.StateStopped {
		if cgErr == nil && st == "paused" {
			_ = cg.Thaw()
		}
		_ = unix.Kill(c.Pid, unix.SIGKILL)
		waitGone(c)
	}
	if cgErr == nil && cg.Exists() {
		// Without a pid namespace of its own, the init's death leaves
		// the other processes alive; sweep the cgroup either way.
		cg.Kill()
	}
	var errs []error
	if cgErr == nil {
		if err := cg.Destroy(); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, cgErr)
	}
	if c.Spec != nil && c.Spec.Hooks != nil {
		state := c.OCIState()
		state.Status = specs.StateStopped
		for _, h := range c.Spec.Hooks.Poststop {
			if err := runHook(h, state); err != nil {
				r.warn("container %s: poststop hook: %v", id, err)
			}
		}
	}
	// Renamed away first: a delete racing this one (the monitor's, say)
	// then finds no directory at all, not one without state.json that
	// looks like an interrupted create. Ids never start with a dot.
	dir := filepath.Join(filepath.Dir(c.dir), fmt.Sprintf(".%s.deleting-%d", id, os.Getpid()))
	if err := os.Rename(c.dir, dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.Join(errs...)
		}
		dir = c.dir
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("container %s: %w", id, err))
	}
	return errors.Join(errs...)
}

// waitGone waits for the init to exit after SIGKILL; it is not our child,
// so poll /proc.
func waitGone(c *Container) {
	for i := 0; i < 2000 && c.initAlive(); i++ {
		time.Sleep(time.Millisecond)
	}
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	if st := c.Status(); st != specs.StateRunning && st != specs.StateCreated {
		return fmt.Errorf("container %s: cannot pause a %s container", id, st)
	}
	cg, err := c.Cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	if st := c.Status(); st != "paused" {
		return fmt.Errorf("container %s: cannot resume a %s container", id, st)
	}
	cg, err := c.Cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Ps lists the host pids of the container's processes.
func (r *Runtime) Ps(id string) ([]int, error) {
	cg, err := r.Cgroup(id)
	if err != nil {
		return nil, err
	}
	return cg.Procs()
}

// Stats reads the container's cgroup counters (memory usage, peak, OOM
// kills, pids).
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	cg, err := r.Cgroup(id)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// Cgroup returns the cgroup manager of a container, for callers that
// watch OOM events.
func (r *Runtime) Cgroup(id string) (*cgroups.Manager, error) {
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return c.Cgroup()
}
