package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/monitor"
	"hull/internal/runtime"
	"hull/internal/streams"
	"hull/internal/trace"
	"hull/internal/wire"
)

// A spare monitor is started before the container it will supervise
// exists: `hull run` starts one first thing, so the monitor's own start
// (executing hull, opening the database, ~6 ms) overlaps with creating the
// container instead of following it. It waits for its container's ID on a
// pipe; Start hands it the ID instead of starting a monitor. A spare that
// is never used reads end-of-file when the command exits, and exits too.
type Spare struct {
	proc       *os.Process
	id         *os.File // write end: the container's ID, one line
	sync       *os.File // read end: the monitor's start report
	waitAttach bool
	exited     chan struct{} // closed once reaped
	specFor    string        // the container whose spec it was sent (offerSpare)
}

// SpareMonitorFD is where a spare monitor reads its container's ID.
const SpareMonitorFD = 4

// StartSpare starts cmd, a `hull monitor -`, as a spare monitor, before
// any engine is open: `hull run` starts it first thing, so that it is
// ready by the time the container is. Nil if it could not start.
func StartSpare(cmd *exec.Cmd, waitAttach bool) *Spare {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil
	}
	idR, idW, err := os.Pipe()
	if err != nil {
		syncR.Close()
		syncW.Close()
		return nil
	}
	cmd.ExtraFiles = []*os.File{syncW, idR} // fds 3 and SpareMonitorFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	syncW.Close()
	idR.Close()
	if err != nil {
		syncR.Close()
		idW.Close()
		return nil
	}
	return newSpare(cmd.Process, cmd.Wait, idW, syncR, waitAttach)
}

// newSpare is the Spare of process p, reaped with wait.
func newSpare(p *os.Process, wait func() error, id, sync *os.File, waitAttach bool) *Spare {
	s := &Spare{proc: p, id: id, sync: sync, waitAttach: waitAttach, exited: make(chan struct{})}
	go func() { wait(); close(s.exited) }()
	return s
}

// AdoptSpare takes on a spare monitor this process started before its Go
// runtime did (hull's C constructor, for `hull run`): its pid, the read
// end of its start report and the write end for its container's ID, as
// StartSpare would have made them. Nil if pid is 0.
func AdoptSpare(pid, syncFD, idFD int, waitAttach bool) *Spare {
	if pid <= 0 {
		return nil
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		unix.Close(syncFD)
		unix.Close(idFD)
		return nil
	}
	wait := func() error { _, err := p.Wait(); return err }
	return newSpare(p, wait, os.NewFile(uintptr(idFD), "spare-id"), os.NewFile(uintptr(syncFD), "spare-sync"), waitAttach)
}

// UseSpare gives the engine a spare monitor from StartSpare (nil: none),
// which it then owns: the next Start with the same waitAttach hands it
// the container instead of starting a monitor.
func (e *Engine) UseSpare(s *Spare) {
	if s == nil {
		return
	}
	if e.spare != nil {
		s.Close()
		return
	}
	e.spare = s
}

// Close ends an unused spare monitor: it reads end-of-file for its
// container's ID, undoes what it started ahead (a container process, its
// cgroups; see StartEarly) and exits, and Close waits for that. Were it
// left to finish alone, a spare still starting would open the engine after
// the command ended, and create its state directories anew where someone
// may have removed them. One that does not end in time (15 s: a loaded
// host can starve it for seconds; killed, it leaves its cgroups) is
// killed.
func (s *Spare) Close() {
	if s == nil {
		return
	}
	s.id.Close()
	s.sync.Close()
	select {
	case <-s.exited:
		return
	case <-time.After(15 * time.Second):
	}
	s.proc.Kill()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

// takeSpare hands the spare monitor, if it suits, the container id; nil
// if there is none (or it could not be told).
func (e *Engine) takeSpare(id string, waitAttach bool) *Spare {
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

// send writes one message of what a spare monitor is sent ahead of its
// container's ID (see ReadSpareID).
func (s *Spare) send(kind, id string, b []byte) error {
	if _, err := fmt.Fprintf(s.id, "%s %s %d\n", kind, id, len(b)); err != nil {
		return err
	}
	_, err := s.id.Write(b)
	return err
}

// Close ends an unused spare monitor (Spare.Close), waits for the
// config.json files Create left being written, and starts the deletion of
// what removals left to the background (see PurgeInBackground); then it
// closes the database Open opened.
func (e *Engine) Close() {
	if s := e.spare; s != nil {
		e.spare = nil
		s.Close()
	}
	e.mu.Lock()
	trash, unwritten := e.trash, e.unwritten
	e.trash, e.unwritten = nil, nil
	e.mu.Unlock()
	for _, c := range unwritten {
		if err := c.waitConfig(); err != nil {
			e.warn("%v; the container cannot be started again once it exits", err)
		}
	}
	purgeDetached(trash)
	trace.Mark("engine closed")
	if e.ownDB {
		e.db.Close()
	}
}

// Ahead is a container's log and attach socket, opened by a spare
// monitor that has the container's spec but not yet its ID (OpenAhead).
type Ahead struct {
	id, socket string
	log        *streams.LogWriter
	srv        *streams.Server
}

// OpenAhead opens container id's log and attach socket (see
// monitor.OpenAhead), for MonitorOptions.Ahead.
func (e *Engine) OpenAhead(id string) (*Ahead, error) {
	a := &Ahead{id: id, socket: e.AttachSocket(id)}
	var err error
	if a.log, a.srv, err = monitor.OpenAhead(e.LogPath(id), logMaxSize, logMaxFiles, a.socket); err != nil {
		return nil, err
	}
	return a, nil
}

// Close closes what no monitor took, and removes the socket (nil: none).
func (a *Ahead) Close() {
	if a == nil {
		return
	}
	a.log.Close()
	a.srv.Close()
	os.Remove(a.socket)
}

// StartEarly starts the first process of the container that will have id
// (CreateOptions.ID), for the spare monitor that waits for it: that
// process then starts while the container is being created (see
// runtime.Early). With newNetNS the process gets a new network namespace.
func (e *Engine) StartEarly(id string, newNetNS bool) (*monitor.Early, error) {
	return monitor.StartEarly(e.rt, id, cgroups.EnginePath(id), newNetNS)
}

// offerSpare sends the spare monitor, ahead of the container's ID, the
// container's spec as config.json has it and its record as Create made
// it, in the wire encoding (both ends are this binary): decoding them is
// then a matter of microseconds, where a first JSON decode in the spare
// cost a millisecond, and the monitor need not look the record up (see
// ReadSpareID). A spec the encoding refuses is not sent (the monitor reads
// config.json); it reports whether the spec was sent.
func (e *Engine) offerSpare(c *Container, spec *specs.Spec) bool {
	s := e.spare
	if s == nil {
		return false
	}
	b, err := wire.Append(nil, spec)
	if err != nil || s.send("spec", c.ID, b) != nil {
		return false
	}
	s.specFor = c.ID
	if b, err := wire.Append(nil, c); err == nil {
		s.send("record", c.ID, b)
	}
	return true
}

// SpareTake is what a spare monitor is told (ReadSpareID): its container,
// and what the command that created it sent ahead.
type SpareTake struct {
	ID string
	// Spec is the container's spec (offerSpare); nil: the monitor reads
	// config.json.
	Spec *specs.Spec
	// Record is the container's record as Create made it (offerSpare);
	// nil: the monitor looks it up.
	Record *Container
}

// ReadSpareID reads, from the pipe a spare monitor waits on, its
// container's ID and what was sent ahead of it: the container's spec and
// record, each only if it is that container's. onSpec (if not nil) gets
// the spec (and its container's id) as soon as it arrives, while the
// container's creation ends.
func ReadSpareID(r io.Reader, onSpec func(id string, spec *specs.Spec)) (SpareTake, error) {
	br := bufio.NewReader(r)
	var specID, recordID string
	var t SpareTake
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return SpareTake{}, err
		}
		line = strings.TrimSpace(line)
		kind, rest, _ := strings.Cut(line, " ")
		if kind == "spec" || kind == "record" {
			var id string
			var n int
			if _, err := fmt.Sscanf(rest, "%s %d", &id, &n); err != nil || n <= 0 || n > 64<<20 {
				return SpareTake{}, fmt.Errorf("spare monitor: bad %s header %q", kind, line)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				return SpareTake{}, err
			}
			if kind == "record" {
				recordID, t.Record = id, new(Container)
				if wire.Decode(b, t.Record) != nil {
					t.Record = nil // the monitor looks it up then
				}
				continue
			}
			specID, t.Spec = id, new(specs.Spec)
			if wire.Decode(b, t.Spec) != nil || runtime.CheckSpec(t.Spec) != nil {
				t.Spec = nil // the monitor reads config.json then
			} else if onSpec != nil {
				onSpec(id, t.Spec)
			}
			continue
		}
		if line == "" {
			return SpareTake{}, errors.New("spare monitor: empty container ID")
		}
		t.ID = line
		if specID != line {
			t.Spec = nil
		}
		if recordID != line || (t.Record != nil && t.Record.ID != line) {
			t.Record = nil
		}
		return t, nil
	}
}
