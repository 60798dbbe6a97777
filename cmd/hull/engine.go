package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
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
		return g.monitorCommand(self, id, waitAttach)
	}
	eng.HullCommand = func(args ...string) []string {
		return append(append([]string{self}, g.globalArgs()...), args...)
	}
	return eng, eng.Close, nil
}

// globalArgs are the global flags that give another hull process this
// one's configuration (a monitor, a supervisor that outlives this
// command).
func (g *globals) globalArgs() []string {
	args := []string{"--root", g.cfg.Root, "--run-root", g.cfg.RunRoot, "--log-level", g.cfg.LogLevel}
	if g.configPath != "" {
		args = append(args, "--config", g.configPath)
	}
	return args
}

// monitorName is the hidden command that runs a monitor process.
const monitorName = "monitor"

// monitorCommand is `hull monitor ID` for a container, or `hull monitor -`
// (engine.SpareID) for a spare that learns its container later.
func (g *globals) monitorCommand(self, id string, waitAttach bool) *exec.Cmd {
	if id == "" {
		id = engine.SpareID
	}
	args := append(g.globalArgs(), monitorName, id)
	if waitAttach {
		args = append(args, "--"+engine.MonitorFlagWaitAttach)
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
// engine.ServeMonitor).
func (g *globals) startSpareMonitor(waitAttach, newNetNS bool, earlyID string) *engine.Spare {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	cmd := g.monitorCommand(self, "", waitAttach)
	if newNetNS {
		cmd.Args = append(cmd.Args, "--"+engine.MonitorFlagNewNetNS)
	}
	if earlyID != "" {
		cmd.Args = append(cmd.Args, "--"+engine.MonitorFlagEarly, earlyID)
	}
	return engine.StartSpare(cmd, waitAttach)
}

// newMonitorCmd is the hidden `hull monitor ID`: the per-container
// supervisor the engine starts in its own session (engine.ServeMonitor).
// `hull monitor -` is a spare (see engine.StartSpare): it gets ready,
// then reads the ID.
func newMonitorCmd(g *globals) *cobra.Command {
	var o engine.MonitorOptions
	cmd := &cobra.Command{
		Use:    monitorName + " ID",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.serveMonitor(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.WaitAttach, engine.MonitorFlagWaitAttach, false, "start the container once a client attaches")
	f.StringVar(&o.Resume, engine.MonitorFlagResume, "", "the exit hull-shim reports (JSON)")
	f.IntVar(&o.ListenerFD, engine.MonitorFlagListenerFD, 0, "the attach listener hull-shim kept")
	f.BoolVar(&o.NewNetNS, engine.MonitorFlagNewNetNS, false, "(a spare) make the container's new network namespace while waiting")
	f.StringVar(&o.EarlyID, engine.MonitorFlagEarly, "", "(a spare) start the process of the container that will have this id while waiting")
	f.BoolVar(&o.EarlyOnSpec, engine.MonitorFlagEarlyOnSpec, false, "(a spare) start the container's process once its spec arrives")
	return cmd
}

// serveMonitor runs the monitor process (engine.ServeMonitor) for id, a
// container or engine.SpareID, with the engine this command opens.
func (g *globals) serveMonitor(cmd *cobra.Command, id string, o engine.MonitorOptions) error {
	g.spare = id == engine.SpareID
	return engine.ServeMonitor(id, o, func() (*engine.Engine, func(), error) { return g.openEngine(cmd) })
}

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
