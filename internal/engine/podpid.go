package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A pod that shares its PID namespace (a CRI sandbox's PID mode POD,
// kubelet's shareProcessNamespace) cannot pin it as it pins the others:
// a PID namespace whose first process has exited accepts no new process.
// So such a pod has a holder: hull-init --pause, started in a new PID
// namespace as its PID 1 when the pod comes up, reaping what is
// re-parented to it and sleeping otherwise (no image, ~1 MB). Its pid
// and start time are kept in <runRoot>/pods/ID/pid-holder, and its PID
// namespace is bind-mounted on <runRoot>/pods/ID/ns/pid, the path the
// pod's containers join (stable across a pod restart, which makes a new
// holder: the containers' specs name the path); downPod kills it (after
// the containers have stopped) and unmounts the path. A holder that died (killed, a reboot) makes
// the pod not running, as a vanished pin does.

func (e *Engine) podHolderFile(id string) string { return filepath.Join(e.podRunDir(id), "pid-holder") }

// startPodHolder starts pod p's PID namespace holder and records it.
func (e *Engine) startPodHolder(p *Pod) error {
	if _, err := os.Stat(e.InitPath); err != nil {
		return fmt.Errorf("pod %s: a shared PID namespace needs hull-init next to hull (make build puts it in bin/): %w", p.Name, err)
	}
	cmd := exec.Command(e.InitPath, "--pause")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"} // none of hull's _HULL_* set-up variables
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID, Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pod %s: start its PID namespace holder: %w", p.Name, err)
	}
	// This process reaps it if it outlives the holder (hull cri serve);
	// a command that exits first leaves it to init.
	go cmd.Wait()
	return e.recordPodHolder(p, cmd.Process)
}

// recordPodHolder records pod p's running PID namespace holder and pins
// its PID namespace.
func (e *Engine) recordPodHolder(p *Pod, proc *os.Process) error {
	pid := proc.Pid
	rec := fmt.Sprintf("%d %d\n", pid, procStart(pid))
	if err := os.WriteFile(e.podHolderFile(p.ID), []byte(rec), 0o600); err != nil {
		proc.Kill()
		return fmt.Errorf("pod %s: record its PID namespace holder: %w", p.Name, err)
	}
	target := e.podNS(p.ID, "pid")
	err := os.WriteFile(target, nil, 0o600)
	if err == nil {
		err = unix.Mount(fmt.Sprintf("/proc/%d/ns/pid", pid), target, "", unix.MS_BIND, "")
	}
	if err != nil {
		e.stopPodHolder(p.ID)
		return fmt.Errorf("pod %s: pin its PID namespace: %w", p.Name, err)
	}
	return nil
}

// podHolder returns the pid of pod id's live holder, 0 if there is none.
// A holder found alive is kept by a pidfd (holderCache): each container
// of the pod asks (joinPod), and a look is then one poll(2), not the
// holder file's read and the process's start time.
func (e *Engine) podHolder(id string) int {
	if pid := e.holders.alive(id); pid > 0 {
		return pid
	}
	data, err := os.ReadFile(e.podHolderFile(id))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	start, _ := strconv.ParseUint(f[1], 10, 64)
	if pid <= 0 || start == 0 || procStart(pid) != start {
		return 0
	}
	// Opened after the look, and kept only if the process is still the
	// one recorded (not another with its pid).
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		if procStart(pid) == start {
			e.holders.keep(id, pid, fd)
		} else {
			unix.Close(fd)
			return 0
		}
	}
	return pid
}

// holderCache keeps a pidfd for each pod holder an engine has found
// alive, by pod ID (podHolder). A pidfd names the process itself, never
// a later one given its pid, so a holder whose pidfd polls readable has
// exited. Bounded: emptied when full (pods removed by another process
// leave their entries until their holder's pidfd is polled again).
type holderCache struct {
	mu sync.Mutex
	m  map[string]heldPidfd
}

type heldPidfd struct{ pid, fd int }

// holderCacheSize bounds holderCache: a node's pods, more or less.
const holderCacheSize = 1024

// alive is the pid of pod id's kept holder if it lives, else 0: none is
// kept, or it has exited (forgotten then; a pod restarted by another
// process has a new holder, which the holder file names).
func (c *holderCache) alive(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[id]
	if !ok {
		return 0
	}
	fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 0); err == nil && n == 0 {
		return h.pid
	}
	unix.Close(h.fd)
	delete(c.m, id)
	return 0
}

// keep keeps fd, a pidfd of pod id's holder pid.
func (c *holderCache) keep(id string, pid, fd int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= holderCacheSize {
		c.resetLocked()
	}
	if c.m == nil {
		c.m = map[string]heldPidfd{}
	}
	if old, ok := c.m[id]; ok {
		unix.Close(old.fd)
	}
	c.m[id] = heldPidfd{pid, fd}
}

// forget drops pod id's holder (stopped, or the pod removed).
func (c *holderCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.m[id]; ok {
		unix.Close(h.fd)
		delete(c.m, id)
	}
}

// reset closes every pidfd kept (the engine closes).
func (c *holderCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *holderCache) resetLocked() {
	for _, h := range c.m {
		unix.Close(h.fd)
	}
	c.m = nil
}

// podPIDNS is the PID namespace a container of pod id joins.
func (e *Engine) podPIDNS(id string) string {
	if e.podHolder(id) > 0 {
		return e.podNS(id, "pid")
	}
	return ""
}

// stopPodHolder kills pod id's holder (every process left in its PID
// namespace dies with it) and forgets it.
func (e *Engine) stopPodHolder(id string) {
	if pid := e.podHolder(id); pid > 0 {
		unix.Kill(pid, unix.SIGKILL)
	}
	e.holders.forget(id)
	os.Remove(e.podHolderFile(id))
	target := e.podNS(id, "pid")
	unix.Unmount(target, unix.MNT_DETACH)
	os.Remove(target)
}
