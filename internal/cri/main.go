package cri

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"hull/internal/config"
	"hull/internal/cri/stream"
	"hull/internal/engine"
	"hull/internal/network"
)

// Main is the hull-cri process (`hull cri serve` execs it): it opens the
// engine under hull's configuration, serves the CRI until SIGTERM or
// SIGINT, and closes the engine. It is a binary of its own so that gRPC
// and the CRI's generated code (about 55 package inits and 350 KB of
// allocations at start) are not linked into hull, which every container
// start runs two or three times.
//
// The containers it will start are supervised by `hull monitor`, so it
// needs the hull binary (--hull, default: hull next to hull-cri).
func Main(args []string, version string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hull-cri", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", os.Getenv("HULL_CONFIG"), "config file (TOML; default "+config.DefaultPath+" if present)")
		root       = fs.String("root", "", "persistent state directory (default /var/lib/hull)")
		runRoot    = fs.String("run-root", "", "runtime state directory (default /run/hull)")
		logLevel   = fs.String("log-level", "", "log level: debug, info, warn, error")
		listen     = fs.String("listen", DefaultListen, "the unix socket to serve on (kubelet's containerRuntimeEndpoint)")
		streamAddr = fs.String("streaming-address", stream.DefaultAddr, "the TCP address of the streaming server (the URLs Exec, Attach and PortForward answer); port 0: one the kernel picks")
		hull       = fs.String("hull", "", "the hull binary monitors run as (default: hull next to hull-cri)")
		showVer    = fs.Bool("version", false, "print the version and exit")
		spares     = fs.Int("spares", 1, "warm spare monitors kept for StartContainer (each a hull monitor process waiting for its container); 0: none")
		cniConf    = fs.String("cni-conf-dir", DefaultCNIConfDir, "the CNI configuration directory: its first conflist in lexical order is the pod network (hull.toml [cri] cni_conf_dir; '' = hull's default bridge network)")
		nriOn      = fs.Bool("nri", true, "serve NRI plugins (the Node Resource Interface; on by default, as in containerd 2)")
		nriSocket  = fs.String("nri-socket", DefaultNRISocket, "the unix socket NRI plugins connect to")
		nriPlugins = fs.String("nri-plugin-path", "/opt/nri/plugins", "pre-installed NRI plugins hull-cri starts")
		nriConfigs = fs.String("nri-plugin-config-path", "/etc/nri/conf.d", "configuration of the pre-installed NRI plugins")
		nriRegTO   = fs.Duration("nri-plugin-registration-timeout", 5*time.Second, "how long an NRI plugin may take to register")
		nriReqTO   = fs.Duration("nri-plugin-request-timeout", 2*time.Second, "how long an NRI plugin may take to answer an event")
		pinned     stringList
		cniBin     stringList
	)
	fs.Var(&cniBin, "cni-bin-dir", "a directory of CNI plugins, searched in order (repeatable or comma-separated; hull.toml [network] plugin_dirs; default /usr/lib/cni,/opt/cni/bin)")
	fs.Var(&pinned, "pinned-image", "an image kubelet's image GC must keep (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hull-cri [OPTIONS]\n\nServe the Container Runtime Interface (k8s.io/cri-api v1) for kubelet and crictl.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (hull-cri takes only flags; see --help)", fs.Arg(0))
	}
	if *showVer {
		fmt.Fprintf(os.Stdout, "hull-cri version %s\n", version)
		return nil
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		dst *string
		env string
		val string
	}{{&cfg.Root, "HULL_ROOT", *root}, {&cfg.RunRoot, "HULL_RUN_ROOT", *runRoot}, {&cfg.LogLevel, "", *logLevel}} {
		if v := os.Getenv(o.env); o.env != "" && v != "" {
			*o.dst = v
		}
		if o.val != "" {
			*o.dst = o.val
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["cni-conf-dir"] && cfg.CRI.CNIConfDir != nil {
		*cniConf = *cfg.CRI.CNIConfDir
	}
	if len(cniBin) > 0 {
		cfg.Network.PluginDirs = nil
		for _, d := range cniBin {
			for _, p := range strings.Split(d, ",") {
				if p = strings.TrimSpace(p); p != "" {
					cfg.Network.PluginDirs = append(cfg.Network.PluginDirs, p)
				}
			}
		}
	}
	binDirs := cfg.Network.PluginDirs
	if len(binDirs) == 0 {
		binDirs = network.DefaultPluginDirs
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *spares < 0 {
		return fmt.Errorf("--spares %d: give 0 (no spare monitors) or more", *spares)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	routeKlog(log)
	hullPath, err := hullBinary(*hull)
	if err != nil {
		return err
	}
	eng, err := openEngine(cfg, hullPath, *configPath, log, true)
	if err != nil {
		return err
	}
	defer eng.Close()
	// A removal's files go while the next call is served, not in it.
	eng.PurgeConcurrently()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	o := Options{Version: version, Root: cfg.Root, RunRoot: cfg.RunRoot, PinnedImages: pinned, Log: log, StreamingAddress: *streamAddr,
		CNIConfDir: *cniConf, CNIBinDirs: binDirs, Spares: *spares, RemovalIntents: true}
	if *nriOn {
		o.NRI = &NRIOptions{Socket: *nriSocket, PluginPath: *nriPlugins, PluginConfigPath: *nriConfigs,
			RegistrationTimeout: *nriRegTO, RequestTimeout: *nriReqTO}
	}
	s := New(eng, o)
	defer s.Close()
	if err := s.Recover(ctx); err != nil {
		log.Warn("recovering what a killed server left", "error", err)
	}
	err = s.Serve(ctx, *listen, func() {
		if o.NRI != nil {
			log.Info("serving the CRI", "listen", *listen, "root", cfg.Root, "nri-socket", o.NRI.Socket)
		} else {
			log.Info("serving the CRI", "listen", *listen, "root", cfg.Root)
		}
	})
	if err == nil {
		log.Info("stopped", "listen", *listen)
	}
	return err
}

// hullBinary is the hull the engine runs monitors as.
func hullBinary(flagged string) (string, error) {
	p := flagged
	if p == "" {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		p = filepath.Join(filepath.Dir(self), "hull")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("hull binary: %w (give --hull PATH; containers are supervised by `hull monitor`)", err)
	}
	return p, nil
}

// openEngine opens the engine as the CLI does, with hull-init and
// hull-shim next to hull (or $HULL_INIT, $HULL_SHIM) and monitors run as
// `hull monitor ID` with this server's configuration.
// openEngine opens hull-cri's engine; longLived for `cri serve` (see
// engine.Options.LongLived), not for `hull-cri kube`'s commands and pod
// supervisors, which end soon after their work.
func openEngine(cfg config.Config, hullPath, configPath string, log *slog.Logger, longLived bool) (*engine.Engine, error) {
	dir := filepath.Dir(hullPath)
	initPath, shimPath := envOr("HULL_INIT", filepath.Join(dir, "hull-init")), envOr("HULL_SHIM", filepath.Join(dir, "hull-shim"))
	if shimPath == "none" {
		shimPath = ""
	}
	eng, err := engine.Open(cfg, engine.Options{
		InitPath: initPath, ShimPath: shimPath,
		Warn:      func(m string) { log.Warn(m) },
		LongLived: longLived,
	})
	if err != nil {
		return nil, err
	}
	global := []string{"--root", cfg.Root, "--run-root", cfg.RunRoot, "--log-level", cfg.LogLevel}
	if configPath != "" {
		global = append(global, "--config", configPath)
	}
	eng.MonitorCommand = func(id string, waitAttach bool) *exec.Cmd {
		if id == "" {
			id = engine.SpareID
		}
		args := append(append([]string{}, global...), "monitor", id)
		if waitAttach {
			args = append(args, "--"+engine.MonitorFlagWaitAttach)
		}
		c := exec.Command(hullPath, args...)
		c.Dir = "/"
		return c
	}
	eng.HullCommand = func(args ...string) []string {
		return append(append([]string{hullPath}, global...), args...)
	}
	return eng, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
