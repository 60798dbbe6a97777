package monitor

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/runtime"
	"hull/internal/streams"
	"hull/internal/trace"
)

// Prepared is what a monitor made for its container before it knew which
// container that is: a spare monitor, started by `hull run` first thing,
// makes it while the command creates the container, so that none of it is
// left to the start (see the engine's ServeMonitor). It is one value with
// one owner at a time: the spare makes it, Config.Prepared hands it to Run,
// Run hands the runtime's part to runtime.Create (runtime.Prepared) for the
// first run, and whoever holds it when a step fails calls Close. Every part
// is optional: what is missing is made as if nothing had been prepared.
type Prepared struct {
	// ID is the container Spec, Log and Server are for ("" before the
	// spec arrives); Keep drops them for any other.
	ID string
	// EarlyID is the container Early was started for.
	EarlyID string
	// NetNS is a new network namespace (runtime.NewNetNS), made when no
	// early process was started (an early process makes its own).
	NetNS *os.File
	// Early is the container's first process, started ahead (StartEarly).
	Early *Early
	// Spec is the container's config.json, as the command that created
	// the container sent it ahead, decoded.
	Spec *specs.Spec
	// Log and Server are the container's log and attach listener, opened
	// ahead (Open).
	Log    *streams.LogWriter
	Server *streams.Server
	// Network is the container's networking being set up in Early's
	// network namespace (AttachAhead), for the first run if it takes
	// Early.
	Network *AheadNetwork
	// socket is the path Server listens on, removed by Close.
	socket string
}

// Prepare makes what can be made for a container before its spec is
// known: with earlyID (the id the container will have), its first process
// (StartEarly, in the cgroups at cgroupsPath, in a new network namespace
// with newNetNS); without one, with newNetNS, a new network namespace. What
// fails is left to the start, which makes it as usual.
func Prepare(rt *runtime.Runtime, earlyID, cgroupsPath string, newNetNS bool) *Prepared {
	p := &Prepared{}
	if earlyID != "" {
		if early, err := StartEarly(rt, earlyID, cgroupsPath, newNetNS); err == nil {
			p.Early, p.EarlyID = early, earlyID
		}
	}
	if newNetNS && p.Early == nil {
		p.NetNS, _ = runtime.NewNetNS()
	}
	return p
}

// SetSpec records the spec of container id, received ahead of the
// container's creation's end, and gives the early process's cgroups its
// limits.
func (p *Prepared) SetSpec(id string, spec *specs.Spec) {
	p.ID, p.Spec = id, spec
	if p.Early != nil && p.EarlyID == id {
		p.Early.SetLimits(spec)
	}
}

// Open opens the log at logPath and listens on the attach socket at
// socket of the container p is for (SetSpec): that container's start then
// skips both. It keeps what is open already.
func (p *Prepared) Open(logPath string, logMaxSize int64, logMaxFiles int, socket string) error {
	if p.Log != nil || p.Server != nil {
		return nil
	}
	logw, err := streams.OpenLog(logPath, logMaxSize, logMaxFiles)
	if err != nil {
		return err
	}
	srv, err := streams.Listen(socket)
	if err != nil {
		logw.Close()
		return err
	}
	p.Log, p.Server, p.socket = logw, srv, socket
	return nil
}

// AheadNetwork is a container's networking set up ahead, in the network
// namespace of its early process (pid), while the container's creation
// ends: the first run uses it if that process becomes the container,
// and undoes it otherwise.
type AheadNetwork struct {
	id     string
	pid    int
	done   chan error
	err    error
	waited bool
	undo   func()
}

// AttachAhead starts attach (Config.Network's work) for container id in
// the network namespace of its early process, if one was started for id;
// undo takes it down if no run uses it.
func (p *Prepared) AttachAhead(id string, attach func(pid int) error, undo func()) {
	if p == nil || p.Early == nil || p.EarlyID != id || p.Network != nil {
		return
	}
	n := &AheadNetwork{id: id, pid: p.Early.rt.Pid(), done: make(chan error, 1), undo: undo}
	go func() {
		trace.Mark("monitor: network ahead")
		err := attach(n.pid)
		trace.Mark("monitor: network ahead done")
		n.done <- err
	}()
	p.Network = n
}

// wait returns the attach's outcome.
func (n *AheadNetwork) wait() error {
	if !n.waited {
		n.err, n.waited = <-n.done, true
	}
	return n.err
}

// use returns the attach's outcome for a run whose first process is pid:
// ok is false if the attachment is not in that process's namespace
// (then it is undone, and the run attaches itself).
func (n *AheadNetwork) use(pid int) (err error, ok bool) {
	if n == nil {
		return nil, false
	}
	if n.pid != pid {
		n.close()
		return nil, false
	}
	return n.wait(), true
}

// close undoes a successful attach no run used (nil: nothing).
func (n *AheadNetwork) close() {
	if n != nil && n.wait() == nil {
		n.undo()
	}
}

// closeAfter undoes networking no run used, in early's namespace: it waits
// for the attach, ends early (its namespace goes with it, so the undo has
// no veth to delete: 10-20 ms of kernel time a spare's teardown would
// otherwise wait for), then undoes the rest.
func (n *AheadNetwork) closeAfter(early *Early) {
	n.wait()
	if early != nil {
		early.Close()
	}
	n.close()
}

// takeNetwork hands the networking set up ahead to the first run.
func (p *Prepared) takeNetwork() *AheadNetwork {
	if p == nil {
		return nil
	}
	n := p.Network
	p.Network = nil
	return n
}

// Keep closes what was prepared for a container other than id, the one
// this monitor was then given.
func (p *Prepared) Keep(id string) {
	if p == nil {
		return
	}
	if p.Network != nil && p.Network.id != id {
		p.Network.closeAfter(p.Early) // Early is for that other id too
		p.Early, p.Network = nil, nil
	}
	if p.Early != nil && p.EarlyID != id {
		p.Early.Close()
		p.Early = nil
	}
	if p.ID != id {
		p.closeOpened()
		p.Spec = nil
	}
}

// Close closes what no one took (nil: nothing); what was taken is set to
// nil by whoever took it.
func (p *Prepared) Close() {
	if p == nil {
		return
	}
	if n := p.takeNetwork(); n != nil {
		n.closeAfter(p.Early)
		p.Early = nil
	}
	if p.NetNS != nil {
		p.NetNS.Close()
		p.NetNS = nil
	}
	if p.Early != nil {
		p.Early.Close()
		p.Early = nil
	}
	p.Spec = nil
	p.closeOpened()
}

// closeOpened closes the log and the attach listener, and removes the
// socket.
func (p *Prepared) closeOpened() {
	if p.Log != nil {
		p.Log.Close()
		p.Log = nil
	}
	if p.Server != nil {
		p.Server.Close()
		p.Server = nil
		os.Remove(p.socket)
	}
}

// forCreate hands runtime.Create what of p is for it: the spec, the
// network namespace and the early process's runtime part, each taken
// from p; the early process's pipes go with the returned *Early.
func (p *Prepared) forCreate() (*runtime.Prepared, *Early) {
	if p == nil {
		return nil, nil
	}
	rp := &runtime.Prepared{Spec: p.Spec, NetNS: p.NetNS}
	early := p.Early
	if early != nil {
		rp.Early = early.rt
	}
	p.Spec, p.NetNS, p.Early = nil, nil, nil
	return rp, early
}
