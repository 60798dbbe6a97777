package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// newVolumeCmd is `hull volume create|ls|inspect|rm|prune`.
func newVolumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(newVolumeCreateCmd(g), newVolumeLsCmd(g), newVolumeInspectCmd(g), newVolumeRmCmd(g), newVolumePruneCmd(g))
	return cmd
}

// volumeDoc is docker's `volume inspect` shape.
type volumeDoc struct {
	CreatedAt  string            `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

// Links and Size are docker's volume ls fields: "N/A" unless docker
// computes them (system df -v); hull's system df shows volumes' use.
func (volumeDoc) Links() string { return "N/A" }

// Size: see Links.
func (volumeDoc) Size() string { return "N/A" }

func volumeDocOf(v *engine.Volume) volumeDoc {
	opts := v.Options
	if opts == nil {
		opts = map[string]string{}
	}
	return volumeDoc{CreatedAt: v.Created.Local().Format(time.RFC3339), Driver: "local", Labels: v.Labels,
		Mountpoint: v.Mountpoint, Name: v.Name, Options: opts, Scope: "local"}
}

func parseLabels(list []string) map[string]string {
	labels := map[string]string{}
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	return labels
}

func newVolumeCreateCmd(g *globals) *cobra.Command {
	var labels, opts []string
	var driver string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume (a random name if none is given)",
		Args:  maxArgs(1, "at most one volume name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "local" {
				return fmt.Errorf("volume driver %q: hull has only the local driver", driver)
			}
			// docker's map option: k=v, a later k replaces an earlier.
			options := map[string]string{}
			for _, o := range opts {
				k, v, _ := strings.Cut(o, "=")
				options[k] = v
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			v, err := eng.CreateVolume(cmd.Context(), name, parseLabels(labels), options)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver (only local)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set metadata: key=value")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "driver options: type=tmpfs|none|FSTYPE, device=tmpfs|/host/dir|DEVICE, o=MOUNT-OPTIONS (e.g. -o type=tmpfs -o device=tmpfs -o o=size=100m)")
	return cmd
}

// volumeFilter is docker's volume filters: dangling=, name=, label=,
// label!=, driver=.
func volumeFilter(args []string) (func(v *engine.Volume, inUse bool) bool, error) {
	fs, err := parseFilterSet(args, "dangling", "name", "label", "label!", "driver")
	if err != nil {
		return nil, err
	}
	for _, d := range fs["dangling"] {
		if d != "true" && d != "false" && d != "1" && d != "0" {
			return nil, fmt.Errorf("bad filter dangling=%s: use true or false", d)
		}
	}
	return func(v *engine.Volume, inUse bool) bool {
		for _, l := range fs["label!"] {
			if labelMatches(v.Labels, l) {
				return false
			}
		}
		return fs.anyOf("dangling", func(s string) bool { return (s == "true" || s == "1") != inUse }) &&
			fs.anyOf("name", func(s string) bool { return strings.Contains(v.Name, s) }) &&
			fs.anyOf("driver", func(s string) bool { return s == "local" }) &&
			fs.anyOf("label", func(s string) bool { return labelMatches(v.Labels, s) })
	}, nil
}

func newVolumeLsCmd(g *globals) *cobra.Command {
	var quiet bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := volumeFilter(filters)
			if err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			vols, err := eng.Volumes(cmd.Context())
			if err != nil {
				return err
			}
			var rows []volumeDoc
			for _, v := range vols {
				users, err := eng.VolumeUsers(cmd.Context(), v.Name)
				if err != nil {
					return err
				}
				if match(v, len(users) > 0) {
					rows = append(rows, volumeDocOf(v))
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.Name)
				}
				return nil
			case format != "":
				return ui.Format(out, format, rows)
			}
			t := ui.NewTable(out, "DRIVER", "VOLUME NAME")
			for _, r := range rows {
				t.Row(r.Driver, r.Name)
			}
			return t.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: dangling=true|false, name=, label=, driver=")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	return cmd
}

func newVolumeInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Show detailed information on volumes",
		Args:  minArgs(1, "at least one volume"),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			var docs []any
			var errs []error
			for _, a := range args {
				v, err := eng.Volume(cmd.Context(), a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				docs = append(docs, volumeDocOf(v))
			}
			if err := printInspect(cmd.OutOrStdout(), format, docs); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template")
	return cmd
}

func newVolumeRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove volumes (one in use by a container only with -f)",
		Args:    minArgs(1, "at least one volume"),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			return forEach(cmd, args, func(name string) error { return eng.RemoveVolume(cmd.Context(), name, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even a volume that containers use")
	return cmd
}
