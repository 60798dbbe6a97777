package engine

import (
	"os"
	"os/exec"
	"syscall"
)

// A spare monitor is started before the container it will supervise
// exists: `hull run` starts one first thing, so the monitor's own start
// (executing hull, opening the database, ~6 ms) overlaps with creating the
// container instead of following it. It waits for its container's ID on a
// pipe; Start hands it the ID instead of starting a monitor. A spare that
// is never used reads end-of-file when the command exits, and exits too.
type spareMonitor struct {
	cmd        *exec.Cmd
	id         *os.File // write end: the container's ID, one line
	sync       *os.File // read end: the monitor's start report
	waitAttach bool
}

// SpareMonitorFD is where a spare monitor reads its container's ID.
const SpareMonitorFD = 4

// PrepareMonitor starts a spare monitor for the next Start with the same
// waitAttach. Failing, it leaves Start to start one as usual.
func (e *Engine) PrepareMonitor(waitAttach bool) {
	if e.MonitorCommand == nil || e.spare != nil {
		return
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return
	}
	idR, idW, err := os.Pipe()
	if err != nil {
		syncR.Close()
		syncW.Close()
		return
	}
	cmd := e.MonitorCommand("", waitAttach)
	cmd.ExtraFiles = []*os.File{syncW, idR} // fds 3 and SpareMonitorFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	syncW.Close()
	idR.Close()
	if err != nil {
		syncR.Close()
		idW.Close()
		return
	}
	go cmd.Wait()
	e.spare = &spareMonitor{cmd: cmd, id: idW, sync: syncR, waitAttach: waitAttach}
}

// takeSpare hands the spare monitor, if it suits, the container id; nil
// if there is none (or it could not be told).
func (e *Engine) takeSpare(id string, waitAttach bool) *spareMonitor {
	s := e.spare
	if s == nil || s.waitAttach != waitAttach {
		return nil
	}
	e.spare = nil
	_, err := s.id.WriteString(id + "\n")
	s.id.Close()
	if err != nil {
		s.sync.Close()
		return nil
	}
	return s
}

// Close lets an unused spare monitor go, and starts the deletion of what
// removals left to the background (see PurgeInBackground).
func (e *Engine) Close() {
	if e.spare != nil {
		e.spare.id.Close()
		e.spare.sync.Close()
		e.spare = nil
	}
	e.mu.Lock()
	trash := e.trash
	e.trash = nil
	e.mu.Unlock()
	purgeDetached(trash)
}
