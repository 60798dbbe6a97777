package main

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"hull/internal/engine"
	"hull/internal/reference"
	"hull/internal/ui"
)

// runFlags are the flags `hull create` and `hull run` share (docker's).
type runFlags struct {
	name, workdir, user, entrypoint, hostname        string
	env, envFiles, volumes, tmpfs, capAdd, capDrop   []string
	securityOpts, ulimits, labels, groupAdd          []string
	interactive, tty, readOnly, privileged, init, rm bool
	memory, memorySwap, memoryReservation, cpus      string
	cpuShares, pidsLimit                             int64
	cpusetCpus, restart, stopSignal, pull, platform  string
	stopTimeout                                      int
	entrypointSet                                    bool   // --entrypoint given, even empty
	id                                               string // chosen ahead (run), or ""
	ns                                               nsFlags
	annotations, labelFiles                          []string
	readOnlyTmpfs                                    bool

	ioFlags // mounts, attaching, logging (runio.go)
	misc    miscFlags
	net     netFlags
	health  healthFlags // run_health.go
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.SetInterspersed(false)                       // flags after the image belong to the command
	fs.Bool("help", false, "help for this command") // -h is --hostname, as in docker
	fs.StringVar(&f.name, "name", "", "assign a name to the container")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "user[:group] (names or ids) to run as")
	fs.StringArrayVar(&f.groupAdd, "group-add", nil, "add a supplementary group (name or gid)")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "override the image's ENTRYPOINT")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	f.net.register(fs)
	f.net.registerPod(fs)
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables (KEY=VALUE, or KEY to take it from here)")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount or named volume: SRC:DST[:ro|rw]")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs: /path[:options]")
	f.ioFlags.register(fs)
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.StringArrayVar(&f.securityOpts, "security-opt", nil, "no-new-privileges[=false], seccomp=PROFILE.json|unconfined")
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit: name=soft[:hard]")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set metadata: key=value")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the root filesystem read-only")
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges (all capabilities, no seccomp, all devices)")
	fs.BoolVar(&f.init, "init", false, "run a tiny init as PID 1 that forwards signals and reaps zombies")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 32m)")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "memory + swap limit; -1 for unlimited swap")
	fs.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fs.StringVar(&f.cpus, "cpus", "", "number of CPUs (e.g. 1.5)")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "relative CPU weight")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs to run on (0-1, 0,2)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "limit the number of processes (-1 unlimited)")
	fs.StringVar(&f.restart, "restart", "no", "restart policy: no, on-failure[:N], always, unless-stopped")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container (default SIGTERM)")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "seconds to wait for a stop before killing")
	fs.StringVar(&f.pull, "pull", "missing", "pull the image: always, missing, never")
	fs.StringVar(&f.platform, "platform", "", "platform os/arch[/variant] when pulling")
	f.ns.register(fs)
	f.misc.register(fs)
	f.health.register(fs)
	fs.StringArrayVar(&f.annotations, "annotation", nil, "add an annotation to the container's OCI spec: key=value")
	fs.StringArrayVar(&f.labelFiles, "label-file", nil, "read labels from a file of key=value lines")
	fs.BoolVar(&f.readOnlyTmpfs, "read-only-tmpfs", false, "with --read-only, mount tmpfs on /tmp, /var/tmp and /run (as podman)")
}

// config turns the flags and positional IMAGE [COMMAND...] into an engine
// config; errors name the flag.
func (f *runFlags) config(args []string) (engine.Config, error) {
	var c engine.Config
	c.Image = args[0]
	if _, err := reference.Parse(c.Image); err != nil && !reference.LooksLikeID(c.Image) {
		return c, err
	}
	o := &c.Spec
	o.Cmd = args[1:]
	if f.entrypoint != "" || f.entrypointSet {
		o.Entrypoint, o.EntrypointSet = strings.Fields(f.entrypoint), true
	}
	o.WorkingDir, o.User, o.Hostname, o.TTY = f.workdir, f.user, f.hostname, f.tty
	o.Init, o.Privileged, o.ReadOnlyRootfs = f.init, f.privileged, f.readOnly
	o.CapAdd, o.CapDrop, o.GroupAdd = f.capAdd, f.capDrop, f.groupAdd
	if err := f.net.apply(&c); err != nil {
		return c, err
	}
	for _, file := range f.envFiles {
		env, err := engine.ParseEnvFile(file)
		if err != nil {
			return c, err
		}
		o.Env = append(o.Env, env...)
	}
	env, err := engine.ParseEnv(f.env)
	if err != nil {
		return c, err
	}
	o.Env = append(o.Env, env...)
	for _, v := range f.volumes {
		m, err := engine.ParseVolume(v)
		if err != nil {
			return c, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	if err := f.ioConfig(&c); err != nil {
		return c, err
	}
	for _, t := range f.tmpfs {
		path, opts, err := engine.ParseTmpfs(t)
		if err != nil {
			return c, err
		}
		if o.Tmpfs == nil {
			o.Tmpfs = map[string]string{}
		}
		o.Tmpfs[path] = opts
	}
	for _, so := range f.securityOpts {
		if err := engine.ApplySecurityOpt(o, so); err != nil {
			return c, err
		}
	}
	if err := f.misc.apply(&c); err != nil {
		return c, err
	}
	if err := f.health.apply(&c); err != nil {
		return c, err
	}
	if err := f.ns.apply(&c); err != nil {
		return c, err
	}
	if f.readOnly && f.readOnlyTmpfs {
		for _, p := range []string{"/tmp", "/var/tmp", "/run"} {
			if _, ok := o.Tmpfs[p]; !ok {
				if o.Tmpfs == nil {
					o.Tmpfs = map[string]string{}
				}
				o.Tmpfs[p] = "rw,exec,nosuid,nodev"
			}
		}
	}
	for _, u := range f.ulimits {
		ul, err := engine.ParseUlimit(u)
		if err != nil {
			return c, err
		}
		o.Ulimits = append(o.Ulimits, ul)
	}
	if o.Memory, err = parseSize("--memory", f.memory); err != nil {
		return c, err
	}
	if f.memorySwap != "" {
		if o.MemorySwap, err = engine.ParseMemorySwap(f.memorySwap); err != nil {
			return c, fmt.Errorf("--memory-swap: %w", err)
		}
	}
	if o.MemoryReservation, err = parseSize("--memory-reservation", f.memoryReservation); err != nil {
		return c, err
	}
	if f.cpus != "" {
		if o.NanoCPUs, err = engine.ParseCPUs(f.cpus); err != nil {
			return c, err
		}
	}
	o.CPUShares, o.CpusetCpus, o.PidsLimit = f.cpuShares, f.cpusetCpus, f.pidsLimit
	if c.Restart, err = engine.ParseRestartPolicy(f.restart); err != nil {
		return c, err
	}
	if f.rm && c.Restart.Name != "no" {
		return c, errors.New("--restart and --rm conflict: a removed container cannot be restarted")
	}
	if f.stopSignal != "" {
		if _, err := engine.ParseSignal(f.stopSignal); err != nil {
			return c, fmt.Errorf("--stop-signal: %w", err)
		}
	}
	switch f.pull {
	case "always", "missing", "never":
	default:
		return c, fmt.Errorf("--pull %q: use always, missing or never", f.pull)
	}
	c.AutoRemove, c.StopSignal, c.StopTimeout = f.rm, f.stopSignal, f.stopTimeout
	c.OpenStdin, c.Pull, c.Platform = f.interactive, f.pull, f.platform
	var labels []string
	for _, file := range f.labelFiles {
		l, err := engine.ParseLabelFile(file)
		if err != nil {
			return c, err
		}
		labels = append(labels, l...)
	}
	if labels = append(labels, f.labels...); len(labels) > 0 {
		c.Labels = map[string]string{}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			c.Labels[k] = v
		}
		o.Annotations = c.Labels
	}
	if len(f.annotations) > 0 {
		c.Annotations = map[string]string{}
		o.Annotations = maps.Clone(c.Labels)
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		for _, a := range f.annotations {
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return c, fmt.Errorf("invalid argument %q for \"--annotation\" flag: use key=value", a)
			}
			c.Annotations[k], o.Annotations[k] = v, v
		}
	}
	return c, nil
}

func parseSize(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := engine.ParseMemory(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flag, err)
	}
	return n, nil
}

func newCreateCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return withCode(125, err)
			}
			defer done()
			c, err := createContainer(cmd, g, eng, f, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// createContainer builds the config and creates the container, pulling
// with docker's messages; exit codes follow docker (125 for hull's errors).
func createContainer(cmd *cobra.Command, g *globals, eng *engine.Engine, f *runFlags, args []string) (*engine.Container, error) {
	f.entrypointSet = cmd.Flags().Changed("entrypoint")
	f.logDefault = g.cfg.Logging
	cfg, err := f.config(args)
	if err != nil {
		return nil, withCode(125, err)
	}
	cid, err := openCIDFile(f.cidFile)
	if err != nil {
		return nil, withCode(125, err)
	}
	errOut := cmd.ErrOrStderr()
	for _, w := range engine.ConfigWarnings(cfg) {
		ui.Warn(errOut, "%s", w)
	}
	if ref, err := reference.Parse(cfg.Image); err == nil && ref.IsLatest() && !g.cfg.Warnings.NoLatestWarning {
		ui.Warn(errOut, "%s runs from a floating latest tag; pin a version or digest for reproducible runs", ref.Familiar())
	}
	var bars *ui.Progress
	engine.Mark("cli: engine open")
	c, err := eng.Create(cmd.Context(), engine.CreateOptions{
		Config: cfg, Name: f.name, ID: f.id,
		OnPull: func(ref string) {
			if f.misc.quiet {
				return
			}
			fmt.Fprintf(errOut, "Unable to find image '%s' locally\n", ref)
			bars = ui.NewProgress(errOut, isTTY(errOut))
		},
		Progress: progressFunc(func() *ui.Progress { return bars }),
	})
	if bars != nil {
		bars.Done()
	}
	if err == nil {
		err = cid.write(c.ID)
	} else {
		cid.write("")
	}
	if err != nil {
		if c != nil && f.rm {
			eng.Remove(cmd.Context(), c.ID, true)
		}
		return nil, withCode(failureStatus(err, false), err)
	}
	if u := c.ImageUser; c.Config.Spec.User == "" && g.cfg.Warnings.RootWarning && (u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "0:")) {
		ui.Warn(errOut, "container %s runs as root; use -u or a USER in the image where the program allows", c.Name)
	}
	return c, nil
}

// progressFunc lets the progress display be created on the first pull.
type progressFunc func() *ui.Progress

func (p progressFunc) Update(id string, st engine.LayerState, cur, total int64) {
	if b := p(); b != nil {
		b.Update(id, st, cur, total)
	}
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and start a container; in the foreground, exit with its status",
		Args:  minArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Its monitor gets ready while the container is created,
			// and starts the container's process ahead when the
			// container is of the kind that allows it (runtime.Early).
			f.detached = detach
			early := !f.tty && !f.interactive && f.memory == ""
			newNetNS := f.net.newNetNS()
			if spareOf != "" {
				// This process is the copy of the command started to
				// be its monitor (see spare.go).
				o := engine.MonitorOptions{WaitAttach: !detach, NewNetNS: newNetNS}
				if early {
					o.EarlyID = spareOf
				}
				return g.serveMonitor(cmd, engine.SpareID, o)
			}
			spare, earlyID := adoptedSpare(!detach)
			if !early {
				earlyID = ""
			} else if spare == nil {
				earlyID = engine.NewID()
			}
			f.id = earlyID
			if spare == nil {
				spare = g.startSpareMonitor(!detach, newNetNS, earlyID)
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				spare.Close()
				return withCode(125, err)
			}
			defer done()
			eng.UseSpare(spare)
			c, err := createContainer(cmd, g, eng, f, args)
			if err != nil {
				return err
			}
			// A start that fails before the container's process runs
			// (its command cannot run) leaves no monitor to honour --rm.
			removeUnstarted := func() {
				if f.rm {
					if cur, err := eng.Get(cmd.Context(), c.ID); err == nil && cur.State == engine.StateCreated {
						eng.Remove(cmd.Context(), c.ID, true)
					}
				}
			}
			if detach {
				st, err := eng.Start(cmd.Context(), c.ID, engine.StartOptions{Created: c})
				if err == nil && st != nil {
					err = st.Ready()
				}
				if err != nil {
					removeUnstarted()
					return withCode(failureStatus(err, false), err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), c.ID)
				return nil
			}
			code, err := startAttached(cmd, eng, c, f.attachOptions(f.interactive), true)
			if err != nil {
				removeUnstarted()
				return withCode(failureStatus(err, false), err)
			}
			if code != 0 {
				return withCode(code, silentError{})
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the container ID")
	cmd.Flags().BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	f.ioFlags.registerRun(cmd.Flags())
	return cmd
}

// silentError carries an exit status without a message (the container's
// own status, as docker returns it).
type silentError struct{}

func (silentError) Error() string { return "" }

// startAttached starts the container with the terminal attached: output
// streams here, stdin (with -i) goes there, signals are forwarded, and the
// container's exit status is returned.
func startAttached(cmd *cobra.Command, eng *engine.Engine, c *engine.Container, ao attachOptions, justCreated bool) (int, error) {
	var so engine.StartOptions
	if justCreated {
		so.Created = c
	}
	// As docker run, the detach keys (ctrl-p,ctrl-q unless --detach-keys)
	// detach and leave the container running.
	o := ao.engineOptions(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	a, err := eng.StartAttached(cmd.Context(), c.ID, so, o)
	if err != nil {
		return failureStatus(err, false), err
	}
	code, err := followAttached(cmd, a, ao.sigProxy)
	if errors.Is(err, engine.ErrDetached) {
		return 0, nil
	}
	if err != nil {
		return failureStatus(err, false), err
	}
	return code, nil
}
