// Command hull is a container runtime: it pulls OCI images, assembles root
// filesystems, runs isolated processes, and serves other tools as an OCI
// runtime with runc's command line (hull oci). This package is only the
// command tree: it parses flags, calls the engine (internal/engine), and
// prints.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"hull/internal/config"
	"hull/internal/engine"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// exitError carries a specific process exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit statuses follow docker's CLI:
//   - 125: a flag hull cannot parse (unknown, or a bad value), for every
//     command (docker's FlagErrorFunc), and any failure of hull itself
//     before a container's process runs in run, create, start -a and exec;
//   - 126 and 127: the container's command cannot run, or does not exist;
//   - the container's own status for run, start -a and exec;
//   - 1 for everything else: a wrong number of arguments, a word that
//     names no command (`hull nosuch`, `hull container nosuch`), a
//     container that is missing or not running.
//
// hull oci keeps runc's statuses (1 for its usage errors), since other
// tools call it as runc.

// withCode makes err exit hull with the given status.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// failureStatus is the exit status of run, create, start -a or exec
// failing with err before the container's process ran (docker's rules
// above): 127 when the command does not exist in the container, 126 when
// it cannot be executed, 125 when hull failed. exec, as docker's, exits
// 1 when the engine refuses it: the container is missing, ambiguously
// named, or not running.
func failureStatus(err error, exec bool) int {
	var se *engine.StartError
	if errors.As(err, &se) {
		switch se.Reason {
		case engine.CommandNotFound:
			return 127
		case engine.CommandNotExecutable:
			return 126
		}
		return 125
	}
	if exec && (errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) || errdefs.IsFailedPrecondition(err)) {
		return 1
	}
	return 125
}

// globals are the flags every command shares, and the configuration they
// resolve to once parsed.
type globals struct {
	configPath string
	root       string
	runRoot    string
	logLevel   string

	cfg config.Config

	// only is the top-level command the tree is built for ("" for all).
	only string

	// spare: this is a spare monitor (see startSpareMonitor).
	spare bool
}

func newRootCmd() *cobra.Command { return newRootCmdFor("") }

// newRootCmdFor builds the command tree, or, when only names a top-level
// command, just the part of it that command needs: hull runs once or more
// per container (the CLI, its monitor, `hull oci` for other tools), and
// building every command's flags is a fair part of a short run. A word
// that names no command (an alias, a typo) gets the whole tree, so cobra
// resolves or reports it as always.
func newRootCmdFor(only string) *cobra.Command {
	if only != "" {
		root := buildRootCmd(only)
		for _, c := range root.Commands() {
			if c.Name() == only {
				return root
			}
		}
	}
	return buildRootCmd("")
}

// buildRootCmd builds the tree for newRootCmdFor.
func buildRootCmd(only string) *cobra.Command {
	g := &globals{only: only}
	root := &cobra.Command{
		Use:           "hull",
		Short:         "A container runtime: images, containers, volumes and an OCI runtime (runc's command line) in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.resolve(cmd)
		},
	}
	root.SetVersionTemplate("hull version {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", os.Getenv("HULL_CONFIG"), "config file (TOML; default "+config.DefaultPath+" if present)")
	pf.StringVar(&g.root, "root", "", "persistent state directory (default /var/lib/hull)")
	pf.StringVar(&g.runRoot, "run-root", "", "runtime state directory (default /run/hull)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error")

	if g.want("oci") {
		addOCICommands(root, g)
	}
	root.AddCommand(g.some(
		named{"version", func(*globals) *cobra.Command { return newVersionCmd() }},
		named{"info", newInfoCmd},
		named{"cri", newCRICmd},
		named{"kube", newKubeCmd},
	)...)
	addImageCommands(root, g)
	addSnapshotCommands(root, g)
	addContainerCommands(root, g)
	addContainerExtras(root, g)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(125, fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath()))
	})
	strictGroups(root)
	return root
}

// strictGroups makes each command that only groups others (hull
// container, hull image, ...) refuse a word that names none of them, as
// docker does, instead of printing its help and succeeding. Alone, it
// prints its help. (cobra refuses unknown words at the top level itself.)
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if sub.HasSubCommands() && !sub.Runnable() {
			sub.Args = noSubcommand
			sub.RunE = groupHelp
		}
		strictGroups(sub)
	}
}

func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fmt.Errorf("unknown command %q for %q\nSee '%s --help'.", args[0], cmd.CommandPath(), cmd.CommandPath())
}

func groupHelp(cmd *cobra.Command, args []string) error { return cmd.Help() }

// want reports whether the tree being built needs the top-level command
// name.
func (g *globals) want(name string) bool { return g.only == "" || g.only == name }

// named is a command and the constructor of it, so a tree built for one
// command constructs no other.
type named struct {
	name  string
	build func(*globals) *cobra.Command
}

// some constructs the commands the tree needs.
func (g *globals) some(cmds ...named) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range cmds {
		if g.want(c.name) {
			out = append(out, c.build(g))
		}
	}
	return out
}

// firstCommand is the first word of args that is not a global flag or
// its value.
func firstCommand(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--config" || a == "--root" || a == "--run-root" || a == "--log-level":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}

// resolve loads the config file and applies flag and environment overrides.
func (g *globals) resolve(cmd *cobra.Command) error {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return err
	}
	if v := os.Getenv("HULL_ROOT"); v != "" {
		cfg.Root = v
	}
	if v := os.Getenv("HULL_RUN_ROOT"); v != "" {
		cfg.RunRoot = v
	}
	for _, name := range []string{"root", "run-root"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed && f.Value.String() == "" {
			return fmt.Errorf("--%s is empty: give a directory (the default is %s)", name, map[string]string{"root": cfg.Root, "run-root": cfg.RunRoot}[name])
		}
	}
	if g.root != "" {
		cfg.Root = g.root
	}
	if g.runRoot != "" {
		cfg.RunRoot = g.runRoot
	}
	if g.logLevel != "" {
		cfg.LogLevel = g.logLevel
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
	g.cfg = cfg
	return nil
}

// The monitor hands over to hull-shim by exec from its main goroutine;
// locked to the main thread, the exec comes from the thread group leader
// (see cmd/hull-shim).
func init() { goruntime.LockOSThread() }

func main() {
	ociInitIfRequested()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if path := os.Getenv("HULL_CPUPROFILE"); path != "" {
		// For performance work: HULL_CPUPROFILE=cpu.out hull pull ...
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	engine.Mark("main")
	cmd := newRootCmdFor(firstCommand(args))
	engine.Mark("command tree")
	cmd.SetArgs(args)
	err := cmd.Execute()
	engine.Mark("command done")
	if err == nil {
		return 0
	}
	if err.Error() != "" { // a silent error carries only a status
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
