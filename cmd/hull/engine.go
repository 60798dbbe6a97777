package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"hull/internal/engine"
	hullrt "hull/internal/runtime"
)

// openEngine opens the engine: the database, images, snapshots and
// containers under the configured roots.
func (g *globals) openEngine(cmd *cobra.Command) (*engine.Engine, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	o := engine.Options{
		InitPath: initBinary(self), ShimPath: shimBinary(self), NoSweep: g.spare,
		Warn: func(m string) { fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", m) },
	}
	if v, err := strconv.Atoi(os.Getenv("HULL_RESTART_BACKOFF_MS")); err == nil && v > 0 {
		o.BackoffBase = msDuration(v)
	}
	eng, err := engine.Open(g.cfg, o)
	if err != nil {
		return nil, nil, err
	}
	eng.MonitorCommand = func(id string, waitAttach bool) *exec.Cmd {
		c := g.monitorCommand(self, id, waitAttach)
		if id != "" {
			if f, err := openMonitorLog(eng, id); err == nil {
				c.Stdout, c.Stderr = f, f
			}
		}
		return c
	}
	return eng, eng.Close, nil
}

// monitorCommand is `hull monitor ID` for a container, or `hull monitor -`
// for a spare that learns its container later.
func (g *globals) monitorCommand(self, id string, waitAttach bool) *exec.Cmd {
	args := []string{"--root", g.cfg.Root, "--run-root", g.cfg.RunRoot, "--log-level", g.cfg.LogLevel}
	if g.configPath != "" {
		args = append(args, "--config", g.configPath)
	}
	if id == "" {
		id = "-"
	}
	args = append(args, "monitor", id)
	if waitAttach {
		args = append(args, "--wait-attach")
	}
	c := exec.Command(self, args...)
	c.Dir = "/"
	return c
}

// startSpareMonitor starts a spare monitor before the engine is open, so
// its start (a process, the database, about 5 ms) overlaps all of the
// container's creation; openEngine's engine then takes it (UseSpare). With
// newNetNS (the container gets a new network namespace) the spare makes
// that namespace while it waits; with earlyID (the id the container will
// be created with) it also starts the container's process ahead (see
// engine.StartEarly).
func (g *globals) startSpareMonitor(waitAttach, newNetNS bool, earlyID string) *engine.Spare {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	cmd := g.monitorCommand(self, "", waitAttach)
	if newNetNS {
		cmd.Args = append(cmd.Args, "--new-netns")
	}
	if earlyID != "" {
		cmd.Args = append(cmd.Args, "--early", earlyID)
	}
	return engine.StartSpare(cmd, waitAttach)
}

// openMonitorLog opens the file a container's monitor writes its own
// messages to.
func openMonitorLog(eng *engine.Engine, id string) (*os.File, error) {
	return os.OpenFile(eng.LogPath(id)+".monitor", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// newMonitorCmd is the hidden `hull monitor ID`: the per-container
// supervisor the engine starts in its own session. `hull monitor -` is a
// spare (see engine.StartSpare): it gets ready, then reads the ID.
func newMonitorCmd(g *globals) *cobra.Command {
	var o engine.MonitorOptions
	var newNetNS bool
	var earlyID string
	cmd := &cobra.Command{
		Use:    "monitor ID",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runMonitor(cmd, args[0], o, newNetNS, earlyID)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.WaitAttach, "wait-attach", false, "start the container once a client attaches")
	f.StringVar(&o.Resume, "resume", "", "the exit hull-shim reports (JSON)")
	f.IntVar(&o.ListenerFD, "listener-fd", 0, "the attach listener hull-shim kept")
	f.BoolVar(&newNetNS, "new-netns", false, "(a spare) make the container's new network namespace while waiting")
	f.StringVar(&earlyID, "early", "", "(a spare) start the process of the container that will have this id while waiting")
	return cmd
}

// runMonitor is `hull monitor ID`, and id "-" a spare monitor (see
// engine.StartSpare and spare.go) that makes ahead, with newNetNS and
// earlyID, the container's network namespace and process.
func (g *globals) runMonitor(cmd *cobra.Command, id string, o engine.MonitorOptions, newNetNS bool, earlyID string) error {
	if o.Resume == "" {
		o.Sync = os.NewFile(3, "sync") // from the engine's Start
	}
	// The monitor outlives terminals and the command that started
	// it: hangups and interrupts are not for it.
	signalIgnore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	g.spare = id == "-"
	eng, done, err := g.openEngine(cmd)
	if err != nil {
		if o.Sync != nil {
			fmt.Fprintf(o.Sync, "error 125 %v\n", err)
		}
		return err
	}
	defer done()
	if id == "-" {
		// The container's network namespace and process are made
		// ahead (failing, the runtime makes them later). Not while
		// the engine opens: the command that started this spare
		// has both processors busy then.
		if earlyID != "" {
			if early, err := eng.StartEarly(earlyID, newNetNS); err == nil {
				o.Early = early
			}
		}
		if newNetNS && o.Early == nil {
			o.NetNS, _ = hullrt.NewNetNS()
		}
		// When the spec arrives, while the container's creation ends,
		// the limits go on the early process's cgroups, and the
		// container's log and attach socket are opened.
		prepare := func(specID string, s *specs.Spec) {
			if o.Early != nil {
				o.Early.SetLimits(s)
			}
			if o.Ahead == nil {
				o.Ahead, _ = eng.OpenAhead(specID)
			}
		}
		var take engine.SpareTake
		take, err = readSpareID(eng, prepare)
		id, o.Spec, o.Record = take.ID, take.Spec, take.Record
		if err != nil || (o.Early != nil && id != earlyID) {
			if o.Early != nil {
				o.Early.Close()
				o.Early = nil
			}
		}
		if err != nil {
			o.Ahead.Close() // the command that started it had no use for it
			return nil
		}
	}
	err = eng.RunMonitor(context.Background(), id, o)
	// A --rm container's anonymous volumes go with it.
	eng.SweepVolumes(context.Background())
	return err
}

// readSpareID waits for a spare monitor's container ID (and the spec and
// record sent ahead, see engine.ReadSpareID), then sends the monitor's own
// messages to that container's monitor log.
func readSpareID(eng *engine.Engine, onSpec func(string, *specs.Spec)) (engine.SpareTake, error) {
	f := os.NewFile(engine.SpareMonitorFD, "container-id")
	defer f.Close()
	take, err := engine.ReadSpareID(f, onSpec)
	if err != nil {
		return take, fmt.Errorf("spare monitor: no container: %v", err)
	}
	if log, err := openMonitorLog(eng, take.ID); err == nil {
		unix.Dup3(int(log.Fd()), 1, 0)
		unix.Dup3(int(log.Fd()), 2, 0)
		log.Close()
	}
	return take, nil
}

func signalIgnore(sigs ...os.Signal) { signal.Ignore(sigs...) }

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// initBinary is the static init `run --init` mounts into containers:
// $HULL_INIT, else hull-init next to the hull binary (make build puts it
// there).
func initBinary(self string) string {
	if p := os.Getenv("HULL_INIT"); p != "" {
		return p
	}
	return filepath.Join(filepath.Dir(self), "hull-init")
}

// withEngine makes a command body that runs with the engine open.
func withEngine(g *globals, fn func(cmd *cobra.Command, eng *engine.Engine, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		eng, done, err := g.openEngine(cmd)
		if err != nil {
			return err
		}
		defer done()
		return fn(cmd, eng, args)
	}
}

// shimBinary is the static supervisor detached containers are handed to:
// $HULL_SHIM, else hull-shim next to the hull binary ("none" disables it).
func shimBinary(self string) string {
	if p := os.Getenv("HULL_SHIM"); p != "" {
		if p == "none" {
			return ""
		}
		return p
	}
	return filepath.Join(filepath.Dir(self), "hull-shim")
}
