package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/reference"
	"hull/internal/ui"
)

// addContainerCommands adds the docker-style container commands, both at
// the top level and under `hull container` (see containerCommands), and
// the hidden monitor and name server.
func addContainerCommands(root *cobra.Command, g *globals) {
	addContainerGroup(root, g)
	root.AddCommand(g.some(named{"monitor", newMonitorCmd}, named{engine.DNSCommand, newDNSCmd})...)
}

// forEach runs fn for each named container, printing the name on success
// like docker, and joins the errors.
// The containers are handled concurrently (each operation is its own
// transaction), results reported in argument order.
func forEach(cmd *cobra.Command, args []string, fn func(ref string) error) error {
	results := make([]chan error, len(args))
	sem := make(chan struct{}, 8)
	for i, a := range args {
		results[i] = make(chan error, 1)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] <- fn(a)
		}()
	}
	var errs []error
	for i, a := range args {
		if err := <-results[i]; err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), a)
	}
	return errors.Join(errs...)
}

func newStartCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1, "at least one container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			if attach || interactive {
				if len(args) != 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				c, err := eng.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				ao := attachOptions{streams: engine.Streams{Stdin: interactive, Stdout: true, Stderr: true}, sigProxy: true, detachKeys: detachKeys}
				code, err := startAttached(cmd, eng, c, ao, false)
				if err != nil {
					return withCode(failureStatus(err, false), err)
				}
				if code != 0 {
					return withCode(code, silentError{})
				}
				return nil
			}
			return forEach(cmd, args, func(ref string) error {
				st, err := eng.Start(cmd.Context(), ref, engine.StartOptions{})
				if err != nil || st == nil {
					return err
				}
				return st.Ready()
			})
		}),
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach stdout/stderr and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach stdin")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches, leaving the container running")
	return cmd
}

// psRow has docker's `ps --format` field names.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Mounts, Networks string
	LocalVolumes                                                                                           string
	labels                                                                                                 map[string]string
}

// Label is docker's {{.Label "KEY"}}: the value of one label.
func (r psRow) Label(name string) string { return r.labels[name] }

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet, noTrunc, latest, allNamespaces bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs, err := parsePsFilters(filters)
			if err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			cs, err := eng.List(cmd.Context())
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			var rows []psRow
			for _, c := range cs {
				if !all && last == 0 && !c.IsRunning() && !fs.hasStatus() {
					continue
				}
				if !fs.match(c) || (c.Kubernetes() && !allNamespaces) {
					continue
				}
				r := psRowOf(c, noTrunc)
				if c.IsRunning() {
					var exposed map[string]struct{}
					if c.Config.Effective != nil {
						exposed = c.Config.Effective.ExposedPorts
					}
					r.Ports = portsColumn(eng.PublishedPorts(c), exposed)
				}
				rows = append(rows, r)
				if last > 0 && len(rows) == last {
					break
				}
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
				return nil
			}
			if format != "" {
				return ui.Format(out, format, rows)
			}
			t := ui.NewTable(out, "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
			for _, r := range rows {
				t.Row(r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names)
			}
			return t.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.IntVarP(&last, "last", "n", 0, "show the n last created containers (all states)")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container")
	f.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "also show the containers kubelet made through hull cri serve")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: status=, name=, label=, ancestor=, exited=, id=, health=")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func psRowOf(c *engine.Container, noTrunc bool) psRow {
	id := c.ID
	command := strings.TrimSpace(c.Config.Path + " " + strings.Join(c.Config.Args, " "))
	if !noTrunc {
		id = id[:12]
		if len(command) > 20 {
			command = command[:19] + "…"
		}
	}
	img := c.ImageName() // a Kubernetes container's: the pod's name, not the ID kubelet sent
	if ref, err := reference.Parse(img); err == nil {
		img = ref.Familiar()
	}
	r := psRow{
		ID: id, Image: img, Command: fmt.Sprintf("%q", command), CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: ui.Ago(c.Created), State: c.State, Status: StatusLine(c), Names: c.Name,
		labels: c.Config.Labels, Networks: c.Config.Spec.Network,
	}
	if len(c.Config.Net.Networks) > 0 {
		var names []string
		for _, ep := range c.Config.Net.Networks {
			names = append(names, ep.Network)
		}
		r.Networks = strings.Join(names, ",")
	}
	if r.Networks == "" {
		r.Networks = "none"
	}
	var labels, mounts []string
	for k, v := range c.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	volumes := 0
	for _, m := range c.Config.Spec.Mounts {
		name := m.Source
		if m.Type == "volume" {
			volumes++
			// A named volume is resolved to <root>/volumes/NAME/_data.
			if dir, ok := strings.CutSuffix(name, "/_data"); ok {
				name = path.Base(dir)
			}
		}
		mounts = append(mounts, name)
	}
	sort.Strings(labels)
	r.Labels, r.Mounts, r.LocalVolumes = strings.Join(labels, ","), strings.Join(mounts, ","), strconv.Itoa(volumes)
	return r
}

// StatusLine is docker's STATUS column, with hull's OOM and error clues:
// "Up 3 seconds", "Exited (137) OOMKilled 3 seconds ago", "Created"; a
// restart loop's OOM kill shows too ("Restarting (137) OOMKilled ...").
func StatusLine(c *engine.Container) string {
	switch c.State {
	case engine.StateRunning:
		return "Up " + ui.Duration(time.Since(c.Started)) + healthSuffix(c)
	case engine.StatePaused:
		return "Up " + ui.Duration(time.Since(c.Started)) + " (Paused)"
	case engine.StateRestarting:
		oom := ""
		if c.OOMKilled {
			oom = "OOMKilled "
		}
		return fmt.Sprintf("Restarting (%d) %s%s ago", c.ExitCode, oom, ui.Duration(time.Since(c.Finished)))
	case engine.StateRemoving:
		return "Removal In Progress"
	case engine.StateDead:
		return "Dead"
	case engine.StateCreated:
		if c.CreationInterrupted() {
			return fmt.Sprintf("Created (interrupted at %s)", c.Stage)
		}
		if c.Error != "" {
			return fmt.Sprintf("Created (failed at %s)", c.Stage)
		}
		return "Created"
	}
	s := fmt.Sprintf("Exited (%d) ", c.ExitCode)
	if c.OOMKilled {
		s += "OOMKilled "
	}
	if c.Finished.IsZero() {
		return strings.TrimSpace(s)
	}
	return s + ui.Duration(time.Since(c.Finished)) + " ago"
}

type psFilters struct {
	status, name, label, ancestor, exited, id, health []string
}

func parsePsFilters(args []string) (*psFilters, error) {
	f := &psFilters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad filter %q: use key=value", a)
		}
		switch k {
		case "status":
			switch v {
			case "created", "running", "paused", "restarting", "exited", "dead", "removing":
			default:
				return nil, fmt.Errorf("bad filter %q: status is one of created, restarting, running, removing, paused, exited, dead", a)
			}
			f.status = append(f.status, v)
		case "name":
			f.name = append(f.name, v)
		case "label":
			f.label = append(f.label, v)
		case "ancestor":
			f.ancestor = append(f.ancestor, v)
		case "exited":
			f.exited = append(f.exited, v)
		case "id":
			f.id = append(f.id, v)
		case "health":
			if !validHealthFilter(v) {
				return nil, fmt.Errorf("bad filter %q: health is one of starting, healthy, unhealthy, none", a)
			}
			f.health = append(f.health, v)
		default:
			return nil, fmt.Errorf("bad filter %q: unknown key %q (use status, name, label, ancestor, exited, id or health)", a, k)
		}
	}
	return f, nil
}

func (f *psFilters) hasStatus() bool { return len(f.status) > 0 || len(f.exited) > 0 }

// match applies docker's rule: values of one key are ORed, keys ANDed.
func (f *psFilters) match(c *engine.Container) bool {
	any := func(vals []string, ok func(string) bool) bool {
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return any(f.status, func(v string) bool { return c.State == v }) &&
		any(f.name, func(v string) bool { return strings.Contains(c.Name, v) }) &&
		any(f.id, func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		any(f.exited, func(v string) bool { return c.State == engine.StateExited && fmt.Sprint(c.ExitCode) == v }) &&
		any(f.health, func(v string) bool { return c.HealthStatus() == v }) &&
		any(f.label, func(v string) bool {
			k, val, has := strings.Cut(v, "=")
			got, ok := c.Config.Labels[k]
			return ok && (!has || got == val)
		}) &&
		any(f.ancestor, func(v string) bool {
			if ref, err := reference.Parse(v); err == nil {
				if r2, err := reference.Parse(c.ImageName()); err == nil && (r2.String() == ref.String() || r2.Name() == ref.Name() && ref.ImplicitTag) {
					return true
				}
			}
			return strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), strings.TrimPrefix(v, "sha256:"))
		})
}

func newLogsCmd(g *globals) *cobra.Command {
	var follow, timestamps, details bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Show a container's output",
		Args:  exactArgs(1, "a container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			o, err := logsOptions(tail, since, until, follow)
			if err != nil {
				return err
			}
			return printLogs(cmd.Context(), eng, args[0], o, timestamps, details, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end")
	f.StringVar(&since, "since", "", "show logs since a timestamp (RFC 3339) or relative (42m)")
	f.StringVar(&until, "until", "", "show logs before a timestamp (RFC 3339) or relative (42m)")
	f.BoolVar(&details, "details", false, "show the extra attributes of each line (hull's log has none: docker's empty attribute list, a space, prefixes the line)")
	return cmd
}

// logsOptions reads the --tail, --since and --until flags of logs and
// pod logs.
func logsOptions(tail, since, until string, follow bool) (engine.LogsOptions, error) {
	o := engine.LogsOptions{Tail: -1, Follow: follow}
	if tail != "" && tail != "all" {
		if _, err := fmt.Sscanf(tail, "%d", &o.Tail); err != nil || o.Tail < 0 {
			return o, fmt.Errorf("--tail %q: give a number or all", tail)
		}
	}
	var err error
	if o.Since, err = parseTimeArg("--since", since); err != nil {
		return o, err
	}
	o.Until, err = parseTimeArg("--until", until)
	return o, err
}

func parseTimeArg(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := engine.ParseTimestamp(s, time.Now())
	if err != nil {
		return t, fmt.Errorf("%s: %w", flag, err)
	}
	return t, nil
}

// printLogs prints a container's output as o selects, stdout records to
// out and stderr records to errOut, with their times if timestamps.
func printLogs(ctx context.Context, eng *engine.Engine, ref string, o engine.LogsOptions, timestamps, details bool, out, errOut io.Writer) error {
	logs, err := eng.Logs(ctx, ref, o)
	if err != nil {
		return err
	}
	defer logs.Close()
	for {
		r, err := logs.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return err
		}
		w := out
		if r.Stream == "stderr" {
			w = errOut
		}
		line := r.Line
		if details {
			line = " " + line // docker's: the attributes (none here), a space, the line
		}
		if timestamps {
			fmt.Fprintf(w, "%s %s\n", r.Time.Format(time.RFC3339Nano), line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func newStopCmd(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop containers: the stop signal, then SIGKILL after the timeout",
		Args:  minArgs(1, "at least one container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return forEach(cmd, args, func(ref string) error {
				_, err := eng.Stop(cmd.Context(), ref, stopSeconds(cmd, timeout))
				return err
			})
		}),
	}
	stopTimeoutFlags(cmd, &timeout)
	return cmd
}

// seconds is the flag's duration, or -1 (the container's own default)
// when the flag was not given.
func seconds(cmd *cobra.Command, flag string, v int) time.Duration {
	if !cmd.Flags().Changed(flag) {
		return -1
	}
	return time.Duration(v) * time.Second
}

func newRestartCmd(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart containers",
		Args:  minArgs(1, "at least one container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return forEach(cmd, args, func(ref string) error {
				if _, err := eng.Stop(cmd.Context(), ref, stopSeconds(cmd, timeout)); err != nil {
					return err
				}
				st, err := eng.Start(cmd.Context(), ref, engine.StartOptions{})
				if err != nil || st == nil {
					return err
				}
				return st.Ready()
			})
		}),
	}
	stopTimeoutFlags(cmd, &timeout)
	return cmd
}

func newKillCmd(g *globals) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Send a signal to containers (default SIGKILL)",
		Args:  minArgs(1, "at least one container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := engine.ParseSignal(sig)
			if err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			return forEach(cmd, args, func(ref string) error { return eng.Kill(cmd.Context(), ref, s) })
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send")
	return cmd
}

func newRmCmd(g *globals) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove containers",
		Args:  minArgs(1, "at least one container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			// Removed is gone from every record at once; the files
			// follow in the background.
			eng.PurgeInBackground()
			return forEach(cmd, args, func(ref string) error { return eng.Remove(cmd.Context(), ref, force) })
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and remove a running container")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes too")
	return cmd
}

func newWaitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until containers stop, then print their exit codes",
		Args:  minArgs(1, "at least one container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var errs []error
			for _, a := range args {
				code, err := eng.Wait(cmd.Context(), a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			return errors.Join(errs...)
		}),
	}
}

func newPauseCmd(g *globals, pause bool) *cobra.Command {
	use, short := "pause", "Freeze all processes of containers"
	if !pause {
		use, short = "unpause", "Thaw paused containers"
	}
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1, "at least one container"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return forEach(cmd, args, func(ref string) error {
				if pause {
					return eng.Pause(cmd.Context(), ref)
				}
				return eng.Unpause(cmd.Context(), ref)
			})
		}),
	}
}

func newRenameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2, "CONTAINER and NEW_NAME"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return eng.Rename(cmd.Context(), args[0], args[1])
		}),
	}
}

func newWhyCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "why CONTAINER | pod/POD",
		Short: "Say where in its lifecycle a container (or pod) stopped, why, and what to check next",
		Args:  exactArgs(1, "a container, or pod/NAME"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var d *engine.Diagnosis
			var err error
			if pod, ok := engine.PodRef(args[0]); ok {
				d, err = eng.WhyPod(cmd.Context(), pod)
			} else {
				d, err = eng.Why(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format != "" {
				return ui.Format(out, format, []any{d})
			}
			fmt.Fprintf(out, "Container: %s\n", d.Container)
			fmt.Fprintf(out, "Stage:     %s\n", d.Stage)
			fmt.Fprintf(out, "Status:    %s\n", d.Status)
			if len(d.Evidence) > 0 {
				fmt.Fprintln(out, "Evidence:")
				for _, e := range d.Evidence {
					fmt.Fprintf(out, "  %s\n", e)
				}
			}
			fmt.Fprintf(out, "Next:      %s\n", d.Next)
			for _, c := range d.Containers {
				fmt.Fprintf(out, "\nContainer %s: %s (%s)\n", c.Container, c.Status, c.Stage)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func newContainerInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Show detailed information on containers (or images)",
		Args:  minArgs(1, "at least one container or image"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			return inspectEach(cmd, format, args, func(a string) (any, error) {
				if c, err := eng.Get(cmd.Context(), a); err == nil {
					return eng.Inspect(c), nil
				}
				// Like docker, inspect falls back to images.
				if _, err := eng.ImageResolve(cmd.Context(), a); err == nil {
					return eng.ImageInspect(cmd.Context(), a)
				}
				return nil, fmt.Errorf("No such object: %s", a)
			})
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template")
	return cmd
}
