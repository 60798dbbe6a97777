package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/monitor"
	"hull/internal/runtime"
	"hull/internal/shim"
	"hull/internal/streams"
	"hull/internal/trace"
)

// The monitor process is `hull [global flags] monitor ID [flags]`
// (MonitorCommand makes the command, cmd/hull parses it into
// MonitorOptions, ServeMonitor runs it). ID SpareID is a spare monitor,
// told its container later (see spare.go). These are its flags.
const (
	SpareID               = "-"
	MonitorFlagWaitAttach = "wait-attach"
	// MonitorFlagResume and MonitorFlagListenerFD are added by hull-shim
	// when it execs back into the monitor.
	MonitorFlagResume     = shim.ResumeFlag
	MonitorFlagListenerFD = shim.ListenerFDFlag
	// A spare's: the network namespace to make, and the id of the
	// container whose process to start, while it waits.
	MonitorFlagNewNetNS = "new-netns"
	MonitorFlagEarly    = "early"
	// A spare's (NewSpare): start the container's process once its spec
	// arrives.
	MonitorFlagEarlyOnSpec = "early-on-spec"
)

// MonitorReportFD is the monitor's descriptor that reports its start to
// the command that started it (see monitor.ReportFD).
const MonitorReportFD = monitor.ReportFD

// MonitorOptions are how `hull monitor` was invoked.
type MonitorOptions struct {
	// WaitAttach: start once a client attaches (foreground run).
	WaitAttach bool
	// Resume is the exit a hull-shim reports (as JSON) when it execs back
	// into the monitor, with the attach listener it kept.
	Resume     string
	ListenerFD int
	// A spare's (ID SpareID): NewNetNS makes the container's new network
	// namespace while it waits, EarlyID starts ahead the process of the
	// container that will have that id (see monitor.Prepare).
	NewNetNS bool
	EarlyID  string
	// EarlyOnSpec (a spare's) starts the container's process as its spec
	// says once the spec arrives (monitor.Prepared.StartEarlyFor): a
	// spare sent it long before the ID (NewSpare's) has it ready then.
	EarlyOnSpec bool
}

// ServeMonitor is the monitor process: it opens the engine with open,
// supervises container id until it exits for good (monitor.Run), and
// reports the start to the command that started it (monitor.ReportFD;
// not when resumed by hull-shim, which has no one to tell). A spare (id
// SpareID) first prepares what it can and waits for its container
// (awaitContainer); told none, it undoes that and exits.
func ServeMonitor(id string, o MonitorOptions, open func() (*Engine, func(), error)) error {
	var report io.WriteCloser = nopWriteCloser{io.Discard}
	if o.Resume == "" {
		report = os.NewFile(monitor.ReportFD, "report")
	}
	// The monitor outlives terminals and the command that started it:
	// hangups and interrupts are not for it.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	e, done, err := open()
	if err != nil {
		monitor.WriteError(report, 125, err)
		return err
	}
	defer done()
	var prep *monitor.Prepared
	var record *Container
	if id == SpareID {
		if id, prep, record, err = e.awaitContainer(o); err != nil {
			return nil // the command that started it had no use for it
		}
	}
	err = e.runMonitor(context.Background(), id, o, report, prep, record)
	// A --rm container's anonymous volumes go with it.
	e.SweepVolumes(context.Background())
	return err
}

// awaitContainer is a spare monitor's wait for its container: it makes
// what it can ahead (monitor.Prepare: the network namespace, the early
// process; not while the engine opens, when the command that started it
// has both processors busy), reads its container's ID on SpareMonitorFD
// (readSpareID), and, as the spec arrives ahead of the ID, while the
// container's creation ends, gives the early process its limits and opens
// the container's log and attach socket. The Prepared it returns is for
// the container it returns (what was made for another is closed), with
// the record sent ahead (nil: none). Its own messages then go to that
// container's monitor log.
func (e *Engine) awaitContainer(o MonitorOptions) (string, *monitor.Prepared, *Container, error) {
	cgroupsPath := ""
	if o.EarlyID != "" {
		cgroupsPath = cgroups.EnginePath(o.EarlyID)
	}
	p := monitor.Prepare(e.rt, o.EarlyID, cgroupsPath, o.NewNetNS)
	var idle *time.Timer
	if o.EarlyOnSpec {
		// A caller's pool's spare may wait long (NewSpare): its sealed
		// copy of hull-init taken or made now (for a pod that shares its
		// pid namespace), its text released once it has waited
		// idleTextRelease for its container.
		e.adoptSealedInit()
		idle = time.AfterFunc(idleTextRelease, releaseText)
		defer idle.Stop()
	}
	f := os.NewFile(SpareMonitorFD, "container-id")
	defer f.Close()
	id, record, err := readSpareID(f, func(id string, a earlyAhead) {
		if idle != nil {
			idle.Stop()
			stopReleasingText()
		}
		if o.EarlyOnSpec {
			p.StartEarlyIn(e.rt, id, runtime.EarlyOptions{CgroupsPath: a.CgroupsPath, Namespaces: a.Namespaces, Sealed: a.Sealed})
		}
	}, func(id string, spec *specs.Spec, record *Container) {
		if idle != nil {
			idle.Stop()
			stopReleasingText()
		}
		p.DropEarlyFor(id, spec)
		p.SetSpec(id, spec)
		if o.EarlyOnSpec {
			p.StartEarlyFor(e.rt, id, spec)
		}
		path, size, files := e.LogPath(id), int64(logMaxSize), logMaxFiles
		if record != nil && record.ID == id {
			path, size, files = e.logSettings(record)
			// The networks are set up now, in the early process's
			// namespace, while the command ends the creation and
			// starts the container (runOnce uses or undoes it).
			if len(record.Config.Net.Networks) > 0 {
				c := record
				p.AttachAhead(id, func(pid int) error { return e.attachNetworks(context.Background(), c, pid) },
					func() { e.detachNetworks(context.Background(), c) })
			}
		}
		p.Open(path, size, files, e.AttachSocket(id))
	})
	if err != nil {
		p.Close()
		return "", nil, nil, fmt.Errorf("spare monitor: no container: %w", err)
	}
	p.Keep(id)
	if log, err := e.openMonitorLog(id); err == nil {
		unix.Dup3(int(log.Fd()), 1, 0)
		unix.Dup3(int(log.Fd()), 2, 0)
		log.Close()
	}
	return id, p, record, nil
}

// openMonitorLog opens the file a container's monitor writes its own
// messages to.
func (e *Engine) openMonitorLog(id string) (*os.File, error) {
	return os.OpenFile(e.LogPath(id)+".monitor", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// A container's log rotates at logMaxSize, keeping logMaxFiles files (the
// numbers Logs reads by).
const (
	logMaxSize  = streams.LogMaxSize
	logMaxFiles = streams.LogMaxFiles
)

// runMonitor supervises container id (monitor.Run), reporting the start
// on report, with prep, what was prepared for it (nil: nothing), and
// record, its record sent ahead (nil: it is looked up). It owns prep.
func (e *Engine) runMonitor(ctx context.Context, id string, o MonitorOptions, report io.WriteCloser, prep *monitor.Prepared, record *Container) error {
	c := record
	if c == nil || c.ID != id {
		var err error
		if c, err = e.lookup(ctx, e.db, id); err != nil {
			prep.Close()
			monitor.WriteError(report, 125, err)
			return err
		}
	}
	logPath, logSize, logFiles := e.logSettings(c)
	cfg := monitor.Config{
		ID: c.ID, Bundle: e.persistDir(c.ID), RuntimeRoot: e.rt.Root,
		LogPath: logPath, LogMaxSize: logSize, LogMaxFiles: logFiles,
		TTY: c.Config.Spec.TTY, Stdin: c.Config.OpenStdin,
		AttachSocket: e.AttachSocket(c.ID), WaitAttach: o.WaitAttach,
		Restart: c.Config.Restart, BackoffBase: e.BackoffBase, BackoffMax: e.BackoffMax,
		RestartCount: c.RestartCount, ListenerFD: o.ListenerFD,
		EnsureBundle: func() error { return e.ensureConfig(ctx, c) },
		Prepared:     prep,
	}
	if o.Resume == "" {
		cfg.Restore = c.restoreOptions()
	}
	if joinsNetworks(netMode(c.Config.Spec)) {
		// Also with no networks now: network connect may add some
		// before a restart (see networkHook).
		cfg.Network = e.networkHook(ctx, c)
	}
	if e.ShimPath != "" && unix.Access(e.ShimPath, unix.X_OK) == nil {
		cmd := e.MonitorCommand(c.ID, false)
		cfg.Shim = &monitor.Shim{Path: e.ShimPath, Resume: append([]string{cmd.Path}, cmd.Args[1:]...), ExitFile: e.exitFile(c.ID)}
	}
	if o.Resume != "" {
		var x shim.Exit
		if err := json.Unmarshal([]byte(o.Resume), &x); err != nil {
			prep.Close()
			return fmt.Errorf("monitor %s: --%s: %w", shortID(c.ID), MonitorFlagResume, err)
		}
		exit := monitor.FromShim(x)
		cfg.Resume = &exit
		if o.ListenerFD <= 0 {
			cfg.AttachSocket = "" // nothing inherited: no attach
		}
	}
	if o.WaitAttach {
		// The socket exists once Run has listened; report it from there.
		cfg.OnListen = func() { monitor.WriteReport(report, monitor.ReportListening) }
		cfg.ClientGone = func() bool { return monitor.ReaderGone(report) }
	}
	trace.Mark("monitor: loaded")
	if o.Resume == "" {
		e.startProber(c) // health checks (once per monitor process)
	}
	rec := &recorder{e: e, c: c}
	readyOnce := false
	return monitor.Run(cfg, e.rt, rec, func(err error) {
		if readyOnce {
			return
		}
		readyOnce = true
		if err != nil {
			monitor.WriteError(report, exitCode(err), err)
		} else {
			monitor.WriteReport(report, monitor.ReportOK)
		}
		report.Close()
	})
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
