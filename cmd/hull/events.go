package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// eventMessage is docker's events JSON shape (for --format).
type eventMessage struct {
	Status   string     `json:"status,omitempty"`
	ID       string     `json:"id,omitempty"`
	From     string     `json:"from,omitempty"`
	Type     string     `json:"Type"`
	Action   string     `json:"Action"`
	Actor    eventActor `json:"Actor"`
	Scope    string     `json:"scope"`
	Time     int64      `json:"time"`
	TimeNano int64      `json:"timeNano"`
}

type eventActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

func messageOf(ev engine.Event) eventMessage {
	m := eventMessage{Type: ev.Type, Action: ev.Action, Actor: eventActor{ID: ev.ID, Attributes: ev.Attrs},
		Scope: "local", Time: ev.Time.Unix(), TimeNano: ev.Time.UnixNano()}
	if ev.Type == "container" {
		m.Status, m.ID, m.From = ev.Action, ev.ID, ev.Attrs["image"]
	}
	if m.Actor.Attributes == nil {
		m.Actor.Attributes = map[string]string{}
	}
	return m
}

// eventLine is docker's default line:
// 2026-01-02T15:04:05.000000000Z container start ID (image=..., name=...)
func eventLine(ev engine.Event) string {
	keys := make([]string, 0, len(ev.Attrs))
	for k := range ev.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = k + "=" + ev.Attrs[k]
	}
	line := fmt.Sprintf("%s %s %s %s", ev.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"), ev.Type, ev.Action, ev.ID)
	if len(attrs) > 0 {
		line += " (" + strings.Join(attrs, ", ") + ")"
	}
	return line
}

// eventFilter is docker's events filters: container=, event=, type=,
// image=, volume=, network=.
func eventFilter(args []string) (func(engine.Event) bool, error) {
	fs, err := parseFilterSet(args, "container", "event", "type", "image", "volume", "network")
	if err != nil {
		return nil, err
	}
	return func(ev engine.Event) bool {
		return fs.anyOf("type", func(v string) bool { return ev.Type == v }) &&
			fs.anyOf("event", func(v string) bool { return ev.Action == v || strings.HasPrefix(ev.Action, v+":") }) &&
			fs.anyOf("container", func(v string) bool {
				return ev.Type == "container" && (ev.Name == v || strings.HasPrefix(ev.ID, v))
			}) &&
			fs.anyOf("volume", func(v string) bool { return ev.Type == "volume" && ev.ID == v }) &&
			fs.anyOf("network", func(v string) bool {
				return ev.Type == "network" && (ev.Name == v || strings.HasPrefix(ev.ID, v))
			}) &&
			fs.anyOf("image", func(v string) bool { return ev.Attrs["image"] == v })
	}, nil
}

func newEventsCmd(g *globals) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Show events as they happen (past ones with --since; stop at --until)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := eventFilter(filters)
			if err != nil {
				return err
			}
			from, err := parseTimeArg("--since", since)
			if err != nil {
				return err
			}
			to, err := parseTimeArg("--until", until)
			if err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			return followEvents(cmd.Context(), eng, cmd.OutOrStdout(), from, to, match, format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "show events since a timestamp (RFC 3339, unix seconds) or relative (10m)")
	f.StringVar(&until, "until", "", "stop at a timestamp (RFC 3339, unix seconds) or relative (10m)")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: container=, event=, type=, image=, volume=, network=")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

// followEvents prints past events from since, then polls the events
// table for new ones until until (forever without it).
func followEvents(ctx context.Context, eng *engine.Engine, out io.Writer, since, until time.Time, match func(engine.Event) bool, format string) error {
	var seq int64
	if since.IsZero() {
		// Only what happens from now on.
		evs, err := eng.Events(ctx, 0)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			seq = evs[len(evs)-1].Seq
		}
	}
	for {
		evs, err := eng.Events(ctx, seq)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			seq = ev.Seq
			if !until.IsZero() && ev.Time.After(until) {
				return nil
			}
			if ev.Time.Before(since) || !match(ev) {
				continue
			}
			if format != "" {
				if err := ui.Format(out, format, []any{messageOf(ev)}); err != nil {
					return err
				}
				continue
			}
			if _, err := fmt.Fprintln(out, eventLine(ev)); err != nil {
				return err // the reader went away
			}
		}
		if !until.IsZero() && !time.Now().Before(until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
