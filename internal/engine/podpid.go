package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
func (e *Engine) podHolder(id string) int {
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
	return pid
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
	os.Remove(e.podHolderFile(id))
	target := e.podNS(id, "pid")
	unix.Unmount(target, unix.MNT_DETACH)
	os.Remove(target)
}
