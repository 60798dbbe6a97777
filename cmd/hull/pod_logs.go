package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"hull/internal/engine"
)

// newPodLogsCmd is podman's pod logs: the output of a pod's containers (or
// the one --container names). When it shows more than one container each
// line starts with the container's short ID (its name with --names), as
// podman's. Without --follow the lines of all containers are merged in
// time order; with it, each container's lines come as they are written,
// until every container has stopped.
func newPodLogsCmd(g *globals) *cobra.Command {
	var follow, timestamps, names bool
	var tail, since, until, only string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] POD",
		Short: "Show the output of a pod's containers",
		Args:  exactArgs(1, "a pod"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			ctx := cmd.Context()
			o, err := logsOptions(tail, since, until, follow)
			if err != nil {
				return err
			}
			p, err := eng.GetPod(ctx, args[0])
			if err != nil {
				return err
			}
			cs, err := eng.PodContainers(ctx, p)
			if err != nil {
				return err
			}
			if only != "" {
				c, err := eng.Get(ctx, only)
				if err != nil {
					return err
				}
				if c.Config.Pod != p.ID {
					return fmt.Errorf("container %s is not in pod %s: %w", only, p.Name, errdefs.ErrNotFound)
				}
				cs = []*engine.Container{c}
			}
			prefix := func(c *engine.Container) string {
				switch {
				case len(cs) < 2:
					return ""
				case names:
					return c.Name + " "
				}
				return c.ID[:12] + " "
			}
			w := &podLogWriter{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), timestamps: timestamps}
			if follow {
				return followPodLogs(ctx, eng, cs, o, prefix, w)
			}
			var all []podLogLine
			for _, c := range cs {
				recs, err := readLogs(ctx, eng, c.ID, o)
				if err != nil {
					return fmt.Errorf("logs of %s: %w", c.Name, err)
				}
				for _, r := range recs {
					all = append(all, podLogLine{prefix(c), r})
				}
			}
			sort.SliceStable(all, func(i, j int) bool { return all[i].rec.Time.Before(all[j].rec.Time) })
			for _, l := range all {
				w.write(l)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&only, "container", "c", "", "show only this container's output")
	f.BoolVarP(&follow, "follow", "f", false, "follow log output")
	f.BoolVarP(&names, "names", "n", false, "prefix lines with the container's name instead of its ID")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVar(&tail, "tail", "all", "number of lines to show from the end of each container's output")
	f.StringVar(&since, "since", "", "show logs since a timestamp (RFC 3339) or relative (42m)")
	f.StringVar(&until, "until", "", "show logs before a timestamp (RFC 3339) or relative (42m)")
	return cmd
}

// podLogLine is one record with the prefix naming its container.
type podLogLine struct {
	prefix string
	rec    engine.LogRecord
}

// podLogWriter prints records, stdout's to out and stderr's to errOut,
// one line at a time (followers write from several goroutines).
type podLogWriter struct {
	mu          sync.Mutex
	out, errOut io.Writer
	timestamps  bool
}

func (w *podLogWriter) write(l podLogLine) {
	w.mu.Lock()
	defer w.mu.Unlock()
	dst := w.out
	if l.rec.Stream == "stderr" {
		dst = w.errOut
	}
	if w.timestamps {
		fmt.Fprintf(dst, "%s%s %s\n", l.prefix, l.rec.Time.Format(time.RFC3339Nano), l.rec.Line)
	} else {
		fmt.Fprintf(dst, "%s%s\n", l.prefix, l.rec.Line)
	}
}

// readLogs returns a container's records as o selects (o.Follow false).
func readLogs(ctx context.Context, eng *engine.Engine, id string, o engine.LogsOptions) ([]engine.LogRecord, error) {
	logs, err := eng.Logs(ctx, id, o)
	if err != nil {
		return nil, err
	}
	defer logs.Close()
	var out []engine.LogRecord
	for {
		r, err := logs.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// followPodLogs follows every container's output at once; it returns when
// all have stopped or ctx ends, with the errors of those that failed.
func followPodLogs(ctx context.Context, eng *engine.Engine, cs []*engine.Container, o engine.LogsOptions, prefix func(*engine.Container) string, w *podLogWriter) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		logs, err := eng.Logs(ctx, c.ID, o)
		if err != nil {
			errs[i] = fmt.Errorf("logs of %s: %w", c.Name, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer logs.Close()
			for {
				r, err := logs.Next()
				if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					errs[i] = fmt.Errorf("logs of %s: %w", c.Name, err)
					return
				}
				w.write(podLogLine{prefix(c), r})
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
