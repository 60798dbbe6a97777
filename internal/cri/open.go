package cri

import (
	"log/slog"
	"os"

	"hull/internal/config"
	"hull/internal/engine"
)

// OpenEngine opens the engine as hull-cri does (monitors run as `hull
// monitor` with this configuration), for `hull-cri kube`, which drives
// a Server in-process.
func OpenEngine(cfg config.Config, hullPath, configPath string, log *slog.Logger) (*engine.Engine, error) {
	return openEngine(cfg, hullPath, configPath, log, false)
}

// HullBinary is the hull binary monitors run as: flagged, else hull next
// to this executable.
func HullBinary(flagged string) (string, error) { return hullBinary(flagged) }

// LoadConfig is hull's configuration as hull-cri resolves it: the file,
// then $HULL_ROOT and $HULL_RUN_ROOT, then the flags given (non-empty).
// (Main does the same inline; it is left as it is here so concurrent
// work on Main merges cleanly: one can call the other later.)
func LoadConfig(configPath, root, runRoot, logLevel string) (config.Config, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return cfg, err
	}
	for _, o := range []struct {
		dst *string
		env string
		val string
	}{{&cfg.Root, "HULL_ROOT", root}, {&cfg.RunRoot, "HULL_RUN_ROOT", runRoot}, {&cfg.LogLevel, "", logLevel}} {
		if v := os.Getenv(o.env); o.env != "" && v != "" {
			*o.dst = v
		}
		if o.val != "" {
			*o.dst = o.val
		}
	}
	return cfg, cfg.Validate()
}
