package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"hull/internal/engine"
)

// healthFlags are run/create's health check flags (docker's), laid over
// the image's HEALTHCHECK field by field by the engine.
type healthFlags struct{ engine.HealthFlags }

func (f *healthFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Cmd, "health-cmd", "", "command to run to check health (run by /bin/sh -c in the container)")
	fs.DurationVar(&f.Interval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 30s)")
	fs.DurationVar(&f.Timeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 30s)")
	fs.IntVar(&f.Retries, "health-retries", 0, "consecutive failures needed to report unhealthy (default 3)")
	fs.DurationVar(&f.StartPeriod, "health-start-period", 0, "start period for the container to initialize before failures count (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.StartInterval, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h) (default 5s)")
	fs.BoolVar(&f.NoHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// apply sets c's health check from the flags; errors name the flag.
func (f *healthFlags) apply(c *engine.Config) error {
	h, err := f.Healthcheck()
	c.Healthcheck = h
	return err
}

// newHealthCmd is the hidden `hull health ID`: one round of a container's
// health checks, paced by the hull-shim health its monitor starts; with
// --serve the whole prober (engine.ServeHealth).
func newHealthCmd(g *globals) *cobra.Command {
	var serve bool
	cmd := &cobra.Command{
		Use:    "health ID",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return eng.ServeHealth(cmd.Context(), args[0], serve)
		}),
	}
	cmd.Flags().BoolVar(&serve, engine.HealthFlagServe, false, "run every round in this process, until the monitor exits")
	return cmd
}

// healthSuffix is what ps's STATUS adds for a running container's health:
// " (healthy)", " (unhealthy)", " (health: starting)" (docker's words).
func healthSuffix(c *engine.Container) string {
	switch {
	case c.Health == nil:
		return ""
	case c.Health.Status == engine.HealthStarting:
		return " (health: starting)"
	}
	return " (" + c.Health.Status + ")"
}

// validHealthFilter is ps --filter health='s values, docker's.
func validHealthFilter(v string) bool {
	switch v {
	case engine.HealthStarting, engine.HealthHealthy, engine.HealthUnhealthy, engine.HealthNone:
		return true
	}
	return false
}
