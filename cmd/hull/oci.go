package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	hullrt "hull/internal/runtime"
	"hull/internal/trace"
)

// ociInitIfRequested turns this process into a container's init or exec'd
// process when the runtime started it for that (see internal/runtime).
// It runs before cobra so the container never pays for the command tree.
func ociInitIfRequested() {
	if hullrt.IsInit() {
		hullrt.InitMain()
	}
}

// ociFlags are runc's global flags, accepted after `oci` so a two-line
// wrapper named runc can stand in for runc.
type ociFlags struct {
	root      string
	log       string
	logFormat string
	rt        *hullrt.Runtime
	logFile   *os.File
}

// addOCICommands adds `hull oci`, the runc-compatible low-level runtime.
func addOCICommands(root *cobra.Command, g *globals) {
	o := &ociFlags{}
	oci := &cobra.Command{
		Use:   "oci",
		Short: "OCI runtime with runc's command line (create, start, state, kill, delete, run, exec, ...)",
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if o.root == "" {
				if err := g.resolve(cmd); err != nil {
					return err
				}
				o.root = filepath.Join(g.cfg.RunRoot, "oci")
			}
			trace.Mark("oci: pre-run")
			initPath := ""
			if self, err := os.Executable(); err == nil {
				initPath = hullrt.InitBinary(initBinary(self))
			}
			o.rt = &hullrt.Runtime{Root: o.root, Warn: o.warn, InitPath: initPath}
			if o.log != "" {
				f, err := os.OpenFile(o.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o644)
				if err != nil {
					return fmt.Errorf("--log %s: %w", o.log, err)
				}
				o.logFile = f
			}
			return nil
		},
	}
	// runc's status for usage errors, not docker's 125 (see main.go).
	oci.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	pf := oci.PersistentFlags()
	pf.StringVar(&o.root, "root", "", "directory for container state (default <run-root>/oci)")
	pf.StringVar(&o.log, "log", "", "also write errors and warnings to this file")
	pf.StringVar(&o.logFormat, "log-format", "text", "format of --log: text or json")
	pf.Bool("debug", false, "accepted for runc compatibility")
	pf.Bool("systemd-cgroup", false, "accepted for runc compatibility (cgroupfs is always used)")
	pf.String("rootless", "auto", "accepted for runc compatibility")
	pf.String("criu", "", "accepted for runc compatibility")

	oci.AddCommand(
		ociCreateCmd(o, false), ociCreateCmd(o, true), ociStartCmd(o), ociStateCmd(o),
		ociKillCmd(o), ociDeleteCmd(o), ociListCmd(o), ociSpecCmd(), ociFeaturesCmd(),
		ociExecCmd(o), ociPsCmd(o), ociPauseCmd(o, true), ociPauseCmd(o, false), ociEventsCmd(o),
	)
	root.AddCommand(oci)
}

// logged wraps a RunE so failures also reach the --log file, where
// containerd and podman look for them.
func (o *ociFlags) logged(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		if err != nil {
			o.logLine("error", err.Error())
		}
		return err
	}
}

func (o *ociFlags) logLine(level, msg string) {
	if o.logFile == nil {
		return
	}
	if o.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
		fmt.Fprintf(o.logFile, "%s\n", b)
		return
	}
	fmt.Fprintf(o.logFile, "time=%q level=%s msg=%q\n", time.Now().UTC().Format(time.RFC3339Nano), level, msg)
}

func (o *ociFlags) warn(msg string) {
	fmt.Fprintln(os.Stderr, "hull: warning:", msg)
	o.logLine("warning", msg)
}

func ociCreateCmd(o *ociFlags, run bool) *cobra.Command {
	var opts hullrt.CreateOptions
	var detach bool
	use, short := "create <container-id>", "Create a container from a bundle; its process waits for start"
	if run {
		use, short = "run <container-id>", "Create and start a container, and wait for it unless --detach"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		id := args[0]
		if !run {
			_, err := o.rt.Create(id, opts)
			return err
		}
		return ociRun(o, id, opts, detach)
	})
	f := cmd.Flags()
	f.StringVarP(&opts.Bundle, "bundle", "b", ".", "bundle directory (config.json and the rootfs)")
	f.StringVar(&opts.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master when process.terminal is true")
	f.StringVar(&opts.PidFile, "pid-file", "", "write the container process's pid to this file")
	f.BoolVar(&opts.NoPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	f.IntVar(&opts.PreserveFDs, "preserve-fds", 0, "pass this many fds after stderr to the container")
	f.Bool("no-new-keyring", false, "accepted for runc compatibility")
	if run {
		f.BoolVarP(&detach, "detach", "d", false, "do not wait for the container")
		f.Bool("keep", false, "accepted for runc compatibility")
	}
	return cmd
}

// ociRun is `run`: create, start, and in the foreground forward signals,
// proxy the terminal if hull owns it, wait, delete, and exit with the
// container's status.
func ociRun(o *ociFlags, id string, opts hullrt.CreateOptions, detach bool) error {
	// Forwarding every signal takes a syscall per signal: set it up on
	// the other core while the container is created.
	sigs := make(chan os.Signal, 32)
	notified := make(chan struct{})
	if detach {
		close(notified)
	} else {
		go func() { signal.Notify(sigs); close(notified) }()
	}
	spec, err := hullrt.LoadSpec(opts.Bundle)
	if err != nil {
		return err
	}
	opts.Prepared = &hullrt.Prepared{Spec: spec}
	var ptyPeer *os.File
	if spec.Process.Terminal && opts.ConsoleSocket == "" {
		if detach {
			return errors.New("a detached container with a terminal needs --console-socket")
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socketpair: %w", err)
		}
		opts.Console = os.NewFile(uintptr(fds[0]), "console")
		ptyPeer = os.NewFile(uintptr(fds[1]), "console-peer")
		defer opts.Console.Close()
		defer ptyPeer.Close()
	}
	trace.Mark("oci run: create")
	c, err := o.rt.Create(id, opts)
	if err != nil {
		return err
	}
	trace.Mark("oci run: created")
	var master *os.File
	if ptyPeer != nil {
		if master, err = hullrt.RecvConsole(ptyPeer); err != nil {
			_ = o.rt.Delete(id, true)
			return err
		}
	}
	if err := o.rt.Start(id); err != nil {
		_ = o.rt.Delete(id, true)
		return err
	}
	trace.Mark("oci run: started")
	if detach {
		return nil
	}
	if master != nil {
		if term.IsTerminal(int(os.Stdin.Fd())) {
			if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer term.Restore(int(os.Stdin.Fd()), old)
			}
		}
		go func() { _, _ = io.Copy(master, os.Stdin) }()
		done := make(chan struct{})
		go func() { _, _ = io.Copy(os.Stdout, master); close(done) }()
		defer func() { <-done }()
	}
	<-notified
	code := waitForward(c.Pid, sigs)
	trace.Mark("oci run: exited")
	if err := o.rt.DeleteContainer(c, true); err != nil {
		o.warn(err.Error())
	}
	trace.Mark("oci run: deleted")
	if master != nil {
		master.Close()
	}
	os.Exit(code)
	return nil
}

// waitForward reaps pid (a direct child thanks to CLONE_PARENT), relaying
// signals to it, and returns a shell-style exit status.
// Signals go through a pidfd, so one that arrives after the reap can
// never reach another process that reused the pid (and forwarding need
// not be switched off, which costs a syscall per signal).
func waitForward(pid int, sigs chan os.Signal) int {
	pidfd, err := unix.PidfdOpen(pid, 0)
	go func() {
		for s := range sigs {
			sig, ok := s.(unix.Signal)
			switch {
			case !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGWINCH:
			case err == nil:
				_ = unix.PidfdSendSignal(pidfd, sig, nil, 0)
			default: // no pidfds (Linux < 5.3)
				_ = unix.Kill(pid, sig)
			}
		}
	}()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 255
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func ociStartCmd(o *ociFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "start <container-id>", Short: "Start a created container", Args: cobra.ExactArgs(1)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error { return o.rt.Start(args[0]) })
	return cmd
}

func ociStateCmd(o *ociFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "state <container-id>", Short: "Print a container's OCI state as JSON", Args: cobra.ExactArgs(1)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		st, err := o.rt.State(args[0])
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return nil
	})
	return cmd
}

// parseSignal accepts 9, KILL and SIGKILL.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func ociKillCmd(o *ociFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{Use: "kill <container-id> [signal]", Short: "Send a signal (default SIGTERM) to a container", Args: cobra.RangeArgs(1, 2)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		sig := unix.SIGTERM
		if len(args) == 2 {
			var err error
			if sig, err = parseSignal(args[1]); err != nil {
				return err
			}
		}
		return o.rt.Kill(args[0], sig, all)
	})
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container's cgroup")
	return cmd
}

func ociDeleteCmd(o *ociFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{Use: "delete <container-id>", Short: "Delete a container (--force kills a running one)", Args: cobra.ExactArgs(1)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error { return o.rt.Delete(args[0], force) })
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container if it is still running")
	return cmd
}

func ociListCmd(o *ociFlags) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List containers", Args: cobra.NoArgs}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		cs, err := o.rt.List()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if quiet {
			for _, c := range cs {
				fmt.Fprintln(out, c.ID)
			}
			return nil
		}
		type item struct {
			OCIVersion  string            `json:"ociVersion"`
			ID          string            `json:"id"`
			Pid         int               `json:"pid"`
			Status      string            `json:"status"`
			Bundle      string            `json:"bundle"`
			Rootfs      string            `json:"rootfs"`
			Created     time.Time         `json:"created"`
			Owner       string            `json:"owner"`
			Annotations map[string]string `json:"annotations,omitempty"`
		}
		var items []item
		for _, c := range cs {
			st := c.OCIState()
			items = append(items, item{OCIVersion: st.Version, ID: c.ID, Pid: st.Pid, Status: string(st.Status), Bundle: c.Bundle, Rootfs: c.Rootfs, Created: c.Created, Owner: "root", Annotations: st.Annotations})
		}
		if format == "json" {
			if items == nil {
				items = []item{}
			}
			b, _ := json.Marshal(items)
			fmt.Fprintf(out, "%s\n", b)
			return nil
		}
		w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
		fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
		for _, it := range items {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", it.ID, it.Pid, it.Status, it.Bundle, it.Created.Format(time.RFC3339Nano), it.Owner)
		}
		return w.Flush()
	})
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only ids")
	return cmd
}

func ociSpecCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{Use: "spec", Short: "Write a default config.json into the bundle directory", Args: cobra.NoArgs}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		s := hullrt.DefaultSpec()
		if rootless {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
			s.Linux.Resources = nil
		}
		p := filepath.Join(bundle, "config.json")
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists; remove it first", p)
		}
		b, _ := json.MarshalIndent(s, "", "\t")
		return os.WriteFile(p, append(b, '\n'), 0o644)
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a spec for a user-namespaced container")
	return cmd
}

func ociFeaturesCmd() *cobra.Command {
	return &cobra.Command{
		Use: "features", Short: "Print the features this runtime implements as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, _ := json.MarshalIndent(hullrt.Features(), "", "    ")
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return nil
		},
	}
}

func ociExecCmd(o *ociFlags) *cobra.Command {
	var (
		opts        hullrt.ExecOptions
		processPath string
		tty, detach bool
		noNewPrivs  bool
		cwd, user   string
		env, caps   []string
		addGids     []int64
	)
	cmd := &cobra.Command{Use: "exec <container-id> [command [args...]]", Short: "Run a process inside a running container", Args: cobra.MinimumNArgs(1)}
	cmd.Flags().SetInterspersed(false)
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		id := args[0]
		c, err := o.rt.Get(id)
		if err != nil {
			return err
		}
		var p specs.Process
		if processPath != "" {
			b, err := os.ReadFile(processPath)
			if err != nil {
				return fmt.Errorf("--process: %w", err)
			}
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("--process %s: %w", processPath, err)
			}
		} else {
			if len(args) < 2 {
				return errors.New("exec needs a command or --process")
			}
			base := c.Spec.Process
			p = specs.Process{
				Args: args[1:], Env: append(append([]string{}, base.Env...), env...), Cwd: base.Cwd,
				User: base.User, Capabilities: base.Capabilities, NoNewPrivileges: base.NoNewPrivileges || noNewPrivs,
				Rlimits: base.Rlimits, Terminal: tty, ApparmorProfile: base.ApparmorProfile,
			}
			if cwd != "" {
				p.Cwd = cwd
			}
			if user != "" {
				u, g, _ := strings.Cut(user, ":")
				uid, err := strconv.ParseUint(u, 10, 32)
				if err != nil {
					return fmt.Errorf("--user %q: use uid[:gid]", user)
				}
				p.User = specs.User{UID: uint32(uid)}
				if g != "" {
					gid, err := strconv.ParseUint(g, 10, 32)
					if err != nil {
						return fmt.Errorf("--user %q: use uid[:gid]", user)
					}
					p.User.GID = uint32(gid)
				}
			}
			for _, g := range addGids {
				p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
			}
			if len(caps) > 0 && p.Capabilities != nil {
				cp := *p.Capabilities
				cp.Bounding = append(append([]string{}, cp.Bounding...), caps...)
				cp.Effective = append(append([]string{}, cp.Effective...), caps...)
				cp.Permitted = append(append([]string{}, cp.Permitted...), caps...)
				p.Capabilities = &cp
			}
		}
		var peer *os.File
		if p.Terminal && opts.ConsoleSocket == "" {
			if detach {
				return errors.New("a detached exec with a terminal needs --console-socket")
			}
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			opts.Console = os.NewFile(uintptr(fds[0]), "console")
			peer = os.NewFile(uintptr(fds[1]), "console-peer")
		}
		sigs := make(chan os.Signal, 32)
		if !detach {
			signal.Notify(sigs)
		}
		pid, err := o.rt.Exec(id, &p, opts)
		if err != nil {
			return err
		}
		if detach {
			return nil
		}
		if peer != nil {
			master, err := hullrt.RecvConsole(peer)
			if err != nil {
				return err
			}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					defer term.Restore(int(os.Stdin.Fd()), old)
				}
			}
			go func() { _, _ = io.Copy(master, os.Stdin) }()
			go func() { _, _ = io.Copy(os.Stdout, master) }()
		}
		os.Exit(waitForward(pid, sigs))
		return nil
	})
	f := cmd.Flags()
	f.StringVarP(&processPath, "process", "p", "", "process.json describing the process")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringVar(&opts.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.StringVar(&opts.PidFile, "pid-file", "", "write the process's pid to this file")
	f.BoolVarP(&detach, "detach", "d", false, "do not wait for the process")
	f.StringVar(&cwd, "cwd", "", "working directory in the container")
	f.StringArrayVarP(&env, "env", "e", nil, "extra environment variable KEY=VALUE")
	f.StringVarP(&user, "user", "u", "", "uid[:gid] to run as")
	f.Int64SliceVarP(&addGids, "additional-gids", "g", nil, "additional gids")
	f.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.IntVar(&opts.PreserveFDs, "preserve-fds", 0, "pass this many fds after stderr")
	f.String("apparmor", "", "accepted for runc compatibility")
	f.String("process-label", "", "accepted for runc compatibility")
	return cmd
}

func ociPsCmd(o *ociFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{Use: "ps <container-id>", Short: "List the host pids of a container's processes", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		pids, err := o.rt.Ps(args[0])
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if format == "json" {
			if pids == nil {
				pids = []int{}
			}
			b, _ := json.Marshal(pids)
			fmt.Fprintf(out, "%s\n", b)
			return nil
		}
		fmt.Fprintln(out, "PID\tCMD")
		for _, p := range pids {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
			fmt.Fprintf(out, "%d\t%s\n", p, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
		}
		return nil
	})
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

func ociPauseCmd(o *ociFlags, pause bool) *cobra.Command {
	use, short := "resume <container-id>", "Resume a paused container"
	if pause {
		use, short = "pause <container-id>", "Freeze every process of a container"
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		if pause {
			return o.rt.Pause(args[0])
		}
		return o.rt.Resume(args[0])
	})
	return cmd
}

// ociEventsCmd prints the container's cgroup stats (memory, OOM kills,
// pids) as runc's `events --stats` does, or streams OOM events.
func ociEventsCmd(o *ociFlags) *cobra.Command {
	var stats bool
	cmd := &cobra.Command{Use: "events <container-id>", Short: "Print cgroup stats (--stats) or stream OOM events", Args: cobra.ExactArgs(1)}
	cmd.RunE = o.logged(func(cmd *cobra.Command, args []string) error {
		id := args[0]
		out := cmd.OutOrStdout()
		if stats {
			s, err := o.rt.Stats(id)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(map[string]any{"type": "stats", "id": id, "data": s})
			fmt.Fprintf(out, "%s\n", b)
			return nil
		}
		cg, err := o.rt.Cgroup(id)
		if err != nil {
			return err
		}
		n, err := cg.NotifyOOM()
		if err != nil {
			return err
		}
		defer n.Close()
		for range n.C {
			b, _ := json.Marshal(map[string]string{"type": "oom", "id": id})
			fmt.Fprintf(out, "%s\n", b)
		}
		return nil
	})
	cmd.Flags().BoolVar(&stats, "stats", false, "print stats once and exit")
	return cmd
}
