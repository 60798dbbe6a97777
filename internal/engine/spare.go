package engine

import (
	"bufio"
	"encoding/json"
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

	"hull/internal/runtime"
	"hull/internal/spec"
	"hull/internal/trace"
	"hull/internal/wire"
)

// A spare monitor is started before the container it will supervise
// exists: `hull run`'s C constructor starts one before the command's own
// Go runtime (AdoptSpare; StartSpare when it could not), so the monitor's
// own start (executing hull, opening the database, about 5 ms) overlaps
// with creating the container instead of following it. It waits for its
// container's ID on a pipe (SpareMonitorFD); Start hands it the ID instead
// of starting a monitor. A spare that is never used reads end-of-file
// when the command exits, and exits too. The spare's side is
// ServeMonitor's awaitContainer.
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
// any engine is open, so that it is ready by the time the container is:
// `hull run` does when its C constructor could not (see AdoptSpare). Nil
// if it could not start.
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
	cmd.ExtraFiles = append([]*os.File{syncW, idR}, cmd.ExtraFiles...) // MonitorReportFD (3), SpareMonitorFD (4), the caller's
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
// cgroups; see monitor.Prepare) and exits, and Close waits for that. Were it
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
// if there is none (or it could not be told). The spare is the call's
// (StartOptions.Spare) if it has one, else the engine's (UseSpare).
func (e *Engine) takeSpare(id string, o StartOptions) *Spare {
	s := o.Spare
	if s == nil {
		s = e.spare
		if s == nil || s.waitAttach != o.WaitAttach {
			return nil
		}
		e.spare = nil
	} else if s.waitAttach != o.WaitAttach {
		return nil // Start closes it
	}
	_, err := s.id.WriteString(id + "\n")
	s.id.Close()
	if err != nil {
		s.sync.Close()
		return nil
	}
	return s
}

// What a spare monitor reads on SpareMonitorFD: messages sent ahead,
// each a header line "KIND ID LENGTH" and LENGTH bytes (the wire encoding
// of a spec or a record, for container ID), then the container's ID on a
// line of its own (see readSpareID).
const (
	spareSpec   = "spec"
	spareRecord = "record"
	spareEarly  = "early" // JSON: earlyAhead
)

// earlyAhead is what a spare monitor of a caller's (NewSpare) is sent as
// a pod container's creation begins: the namespaces and cgroups the spec
// will give the container, for it to start the container's first process
// meanwhile (monitor.Prepared.StartEarlyIn) rather than once the spec
// arrives at the creation's end.
type earlyAhead struct {
	CgroupsPath string                 `json:"cgroupsPath"`
	Namespaces  []specs.LinuxNamespace `json:"namespaces"`
	Sealed      bool                   `json:"sealed"`
}

// sendEarly sends spare s, bound to container id being created with
// options o in a pod, what its early process needs (earlyAhead); not for
// a container in a user namespace, which an early process does not suit.
func sendEarly(s *Spare, id string, o *spec.Options) {
	if s == nil || o.UsernsMode != "" || len(o.UIDMap) > 0 {
		return
	}
	nss, err := spec.Namespaces(*o)
	if err != nil {
		return // the creation reports it
	}
	b, err := json.Marshal(earlyAhead{CgroupsPath: o.CgroupsPath, Namespaces: nss, Sealed: runtime.SealsInit(nss)})
	if err == nil {
		s.send(spareEarly, id, b)
		trace.Mark("spare: early sent")
	}
}

// send writes one message of what a spare monitor is sent ahead of its
// container's ID (see readSpareID).
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
	e.awaitPodCreations("*") // they may leave a config.json unwritten
	e.mu.Lock()
	trash, unwritten := e.trash, e.unwritten
	e.trash, e.unwritten = nil, nil
	e.mu.Unlock()
	for _, c := range unwritten {
		// A directory gone means the container is (a --rm one that
		// ended first): nothing is left to start again.
		if err := c.waitConfig(); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.warn("%v; the container cannot be started again once it exits", err)
		}
	}
	purgeDetached(trash)
	e.purging.Wait()
	e.holders.reset()
	trace.Mark("engine closed")
	if e.ownDB {
		e.db.Close()
	}
}

// offerSpare sends the spare monitor, ahead of the container's ID, the
// container's spec as config.json has it and its record as Create made
// it, in the wire encoding (both ends are this binary): decoding them is
// then a matter of microseconds, where a first JSON decode in the spare
// cost a millisecond, and the monitor need not look the record up (see
// readSpareID). A spec the encoding refuses is not sent (the monitor reads
// config.json); it reports whether the spec was sent. s is the call's spare
// (CreateOptions.Spare), else the engine's (UseSpare).
func (e *Engine) offerSpare(s *Spare, c *Container, spec *specs.Spec) bool {
	if s == nil {
		s = e.spare
	}
	if s == nil {
		return false
	}
	b, err := wire.Append(nil, spec)
	if err != nil {
		return false
	}
	// A container whose log is not hull's default, or that joins
	// networks, sends its record first: the monitor opens the log and
	// sets up the networks as the spec arrives.
	custom := c.customLog() || len(c.Config.Net.Networks) > 0
	if custom {
		rec, err := wire.Append(nil, c)
		if err != nil || s.send(spareRecord, c.ID, rec) != nil {
			return false
		}
	}
	if s.send(spareSpec, c.ID, b) != nil {
		return false
	}
	s.specFor = c.ID
	if custom {
		return true
	}
	if b, err := wire.Append(nil, c); err == nil {
		s.send(spareRecord, c.ID, b)
	}
	return true
}

// readSpareID reads, from the pipe a spare monitor waits on, its
// container's ID and what was sent ahead of it: onEarly gets what an early
// process needs (sendEarly), onSpec gets the spec (and
// the id of its container) as soon as it arrives, while the container's
// creation ends; the record is returned if it is the container's (nil:
// the monitor looks it up; onSpec gets it too when it came first). A spec that does not decode is not given
// (the monitor reads config.json then).
func readSpareID(r io.Reader, onEarly func(id string, a earlyAhead), onSpec func(id string, spec *specs.Spec, record *Container)) (string, *Container, error) {
	br := bufio.NewReader(r)
	var record *Container
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		line = strings.TrimSpace(line)
		kind, rest, _ := strings.Cut(line, " ")
		if kind == spareSpec || kind == spareRecord || kind == spareEarly {
			var id string
			var n int
			if _, err := fmt.Sscanf(rest, "%s %d", &id, &n); err != nil || n <= 0 || n > 64<<20 {
				return "", nil, fmt.Errorf("spare monitor: bad %s header %q", kind, line)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				return "", nil, err
			}
			if kind == spareEarly {
				trace.Mark("monitor: early asked")
				var a earlyAhead
				if json.Unmarshal(b, &a) == nil {
					onEarly(id, a)
				}
				continue
			}
			if kind == spareRecord {
				record = new(Container)
				if wire.Decode(b, record) != nil || record.ID != id {
					record = nil // the monitor looks it up then
				}
				continue
			}
			spec := new(specs.Spec)
			if wire.Decode(b, spec) == nil && runtime.CheckSpec(spec) == nil {
				onSpec(id, spec, record)
			}
			continue
		}
		if line == "" {
			return "", nil, errors.New("spare monitor: empty container ID")
		}
		if record != nil && record.ID != line {
			record = nil
		}
		return line, record, nil
	}
}
