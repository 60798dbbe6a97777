// Package kube is `hull kube`: kubectl's words for pods on the local
// machine, with kubelet's semantics. Manifests (k8s.io/api types, strict
// YAML) become the same CRI calls kubelet makes, against internal/cri's
// Server used in-process, so a real kubelet and `hull kube` exercise one
// code path.
//
// Daemonless: apply checks every document, records each pod under
// <root>/kube/pods and starts one small detached supervisor per pod
// (`hull-cri kube supervise DIR`, supervisor.go): that pod's kubelet.
// get, describe and logs read what it records; delete asks it to tear
// the pod down. Every command first runs a reconcile pass: a pod whose
// supervisor is gone while the pod still needs one gets another, and
// the deployment controller runs once; the commands that wait (wait,
// apply --wait, get -w, rollout status) run one again each supervisor
// round while they wait.
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/config"
	"hull/internal/cri"
	"hull/internal/engine"
	"hull/internal/trace"
)

// env is one `hull-cri kube` invocation: hull's configuration, the
// store, and the engine once a command needs it.
type env struct {
	configPath, root, runRoot, logLevel, hull string
	namespace                                 string
	version                                   string

	cfg    config.Config
	store  *Store
	eng    *engine.Engine
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	// report: this is apply run by hull as its child, which reports its
	// exit status here and stays as the supervisor of kept, the first
	// pod it records (applier.go), with srv; applying: apply's command
	// runs, without --wait.
	report   *os.File
	applying bool
	kept     string
	srv      *cri.Server
	// ready is closed once the engine and srv are ready for kept
	// (prepareSupervision; nil: not started).
	ready chan struct{}
	// spare is the pod's spare monitor hull started (kubefast.c), until
	// given to srv.
	spare *engine.Spare
	// sigpipe: apply's stdout or stderr lost its reader (applier.go);
	// outBroken: a write to either found it gone (brokenWriter), which
	// the signal's asynchronous delivery may not have said yet.
	sigpipe   chan os.Signal
	outBroken atomic.Bool
	engMu     sync.Mutex // engine(), which apply and prepareSupervision call
	// reconciled is when reconcile last ran (reconcileDue).
	reconciled time.Time
}

// Main runs `hull-cri kube ARGS` (`hull kube` execs it with hull's
// resolved configuration and the hull binary as flags).
func Main(args []string, version string, stdin io.Reader, stdout, stderr io.Writer) error {
	startGOGC() // supervisor_mem.go
	e := &env{version: version, stdin: stdin}
	// A write that finds its reader gone is noted (applier.go finishApply).
	stdout = brokenWriter{w: stdout, broken: &e.outBroken}
	stderr = brokenWriter{w: stderr, broken: &e.outBroken}
	e.stdout, e.stderr = stdout, stderr
	e.takeReport() // applier.go
	root := &cobra.Command{
		Use:           "kube",
		Short:         "Run Kubernetes pods on this machine with kubectl's commands and kubelet's semantics",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := e.setup(); err != nil {
				return err
			}
			if cmd.Name() != "supervise" {
				e.reconcile()
			}
			return nil
		},
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for \"hull kube\" (see hull kube --help)", args[0])
			}
			return cmd.Help()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.configPath, "config", os.Getenv("HULL_CONFIG"), "config file")
	pf.StringVar(&e.root, "root", "", "persistent state directory")
	pf.StringVar(&e.runRoot, "run-root", "", "runtime state directory")
	pf.StringVar(&e.logLevel, "log-level", "", "log level")
	pf.StringVar(&e.hull, "hull", "", "the hull binary monitors run as")
	for _, n := range []string{"config", "root", "run-root", "log-level", "hull"} {
		pf.MarkHidden(n)
	}
	pf.StringVarP(&e.namespace, "namespace", "n", "", "the namespace (default \"default\")")
	root.AddCommand(e.applyCmd(), e.getCmd(), e.describeCmd(), e.logsCmd(), e.execCmd(), e.deleteCmd(), e.waitCmd(), e.superviseCmd())
	// Under a "hull" root, so help and errors name `hull kube ...`.
	top := &cobra.Command{Use: "hull", SilenceUsage: true, SilenceErrors: true}
	top.CompletionOptions.DisableDefaultCmd = true
	top.AddCommand(root)
	root.AddCommand(e.rolloutCmd()) // rollout.go
	top.SetArgs(append([]string{"kube"}, args...))
	top.SetIn(stdin)
	top.SetOut(stdout)
	top.SetErr(stderr)
	err := top.Execute()
	if e.report != nil {
		err = e.finishApply(err) // applier.go
	}
	if e.eng != nil {
		e.eng.Close()
	}
	return err
}

// setup resolves the configuration as hull-cri does.
func (e *env) setup() error {
	cfg, err := cri.LoadConfig(e.configPath, e.root, e.runRoot, e.logLevel)
	if err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		lvl = slog.LevelWarn
	}
	e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
	e.cfg = cfg
	e.store = NewStore(cfg.Root)
	return nil
}

// ns is the namespace a command works in.
func (e *env) ns() string {
	if e.namespace == "" {
		return "default"
	}
	return e.namespace
}

// engine opens the engine (once).
func (e *env) engine() (*engine.Engine, error) {
	e.engMu.Lock()
	defer e.engMu.Unlock()
	if e.eng != nil {
		return e.eng, nil
	}
	hullPath, err := cri.HullBinary(e.hull)
	if err != nil {
		return nil, err
	}
	e.hull = hullPath
	eng, err := cri.OpenEngine(e.cfg, hullPath, e.configPath, e.log)
	if err != nil {
		return nil, err
	}
	e.eng = eng
	return eng, nil
}

// server is the CRI server over the engine, used in-process.
func (e *env) server() (*cri.Server, error) {
	eng, err := e.engine()
	if err != nil {
		return nil, err
	}
	return cri.New(eng, cri.Options{Version: e.version, Root: e.cfg.Root, RunRoot: e.cfg.RunRoot, Log: e.log}), nil
}

// globalArgs are the flags a child hull-cri kube gets.
func (e *env) globalArgs() []string {
	args := []string{"--root", e.cfg.Root, "--run-root", e.cfg.RunRoot, "--log-level", e.cfg.LogLevel}
	if e.configPath != "" {
		args = append(args, "--config", e.configPath)
	}
	if e.hull != "" {
		args = append(args, "--hull", e.hull)
	}
	return args
}

// startSupervisor starts the pod's supervisor detached: a session of
// its own, no terminal, its stderr in the pod's supervisor.log.
func (e *env) startSupervisor(dir string) error {
	if e.keepPod(dir) { // applier.go
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, append(append([]string{"kube"}, e.globalArgs()...), "supervise", dir)...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), supervisorEnv...) // supervisor_mem.go
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the supervisor of %s: %w", filepath.Base(dir), err)
	}
	trace.Mark("kube: supervisor started")
	return cmd.Process.Release()
}

// reconcile is the pass every command runs first: the deployment
// controller (deployment.go), then a supervisor started for every pod
// that needs one and has none (it died, or the machine restarted): one
// not finished, or one being deleted. It reads each pod's supervisor
// pid file and /proc entry, and only starts a process for a pod that
// has none (two started at once: the second exits, as Supervise locks).
func (e *env) reconcile() {
	e.reconciled = time.Now()
	e.reconcileDeployments() // deployment.go
	pods, err := e.store.podDirs("")
	if err != nil {
		return
	}
	for _, p := range pods {
		dir := e.store.PodDir(p[0], p[1])
		if supervisorPID(dir) != 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "pod.json")); err != nil {
			continue // being created or removed
		}
		var st kubeletState
		readJSON(filepath.Join(dir, "kubelet.json"), &st)
		if _, deleting := e.store.deleting(dir); st.Finished && !deleting {
			continue
		}
		if err := e.startSupervisor(dir); err != nil {
			e.log.Warn("restart a pod's supervisor", "pod", p[1], "namespace", p[0], "err", err)
		}
	}
}

// reconcileDue is reconcile for a command that waits, run each round of
// its wait: at most once per supervisor round (relist), so a supervisor
// that dies during a wait is restarted within a second, and the wait's
// own faster polling of one status file stays cheap.
func (e *env) reconcileDue() {
	if time.Since(e.reconciled) >= scaled(relist) {
		e.reconcile()
	}
}

func (e *env) superviseCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "supervise DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneSupervisorMemory()
			srv, err := e.server()
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(args[0], "kubelet.json")); errors.Is(err, os.ErrNotExist) {
				e.armMonitorSpare(srv) // a new pod (spare.go)
			}
			defer srv.Close()
			defer srv.CloseSpares()
			ctx := context.Background()
			err = Supervise(ctx, srv, args[0], e.cfg.KubeCgroupRoot(), e.log, e.reconcileDeployments) // a deployment pod's changes move its rollout
			if err != nil && !errors.Is(err, context.Canceled) {
				e.log.Error("supervisor", "pod", filepath.Base(args[0]), "err", err)
			}
			return err
		},
	}
}

// brokenWriter is w noting in broken a write that found its reader gone
// (EPIPE).
type brokenWriter struct {
	w      io.Writer
	broken *atomic.Bool
}

func (b brokenWriter) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		b.broken.Store(true)
	}
	return n, err
}
