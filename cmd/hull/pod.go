package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hull/internal/engine"
	"hull/internal/ui"
)

// newPodCmd is `hull pod`: groups of containers that share a network,
// IPC and UTS namespace (podman's pod commands; pods are what kubelet's
// pod sandboxes are, see engine/pods.go).
func newPodCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pod", Short: "Manage pods"}
	ls := newPodLsCmd(g)
	cmd.AddCommand(newPodCreateCmd(g), ls, newPodInspectCmd(g), newPodStartCmd(g), newPodStopCmd(g), newPodRmCmd(g),
		newPodRestartCmd(g), newPodKillCmd(g), newPodPauseCmd(g, true), newPodPauseCmd(g, false), newPodPruneCmd(g),
		newPodTopCmd(g), newPodStatsCmd(g), newPodLogsCmd(g))
	return cmd
}

func newPodCreateCmd(g *globals) *cobra.Command {
	var name, hostname string
	var labels, share, uidmaps, gidmaps []string
	var nf netFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS]",
		Short: "Create a pod",
		Args:  exactArgs(0, "no arguments"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var c engine.Config
			if err := nf.apply(&c); err != nil {
				return err
			}
			cfg := engine.PodConfig{Hostname: hostname, Network: c.Spec.Network, Net: c.Net}
			var err error
			if cfg.UIDMap, cfg.GIDMap, err = engine.ParseIDMaps(uidmaps, gidmaps); err != nil {
				return err
			}
			if len(labels) > 0 {
				cfg.Labels = map[string]string{}
				for _, l := range labels {
					k, v, _ := strings.Cut(l, "=")
					cfg.Labels[k] = v
				}
			}
			for _, s := range share {
				for _, k := range strings.Split(s, ",") {
					if k = strings.TrimSpace(k); k != "" {
						cfg.Share = append(cfg.Share, k)
					}
				}
			}
			p, err := eng.CreatePod(cmd.Context(), name, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.ID)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "assign a name to the pod")
	f.StringVar(&hostname, "hostname", "", "the pod's host name (default: its name)")
	f.StringArrayVarP(&labels, "label", "l", nil, "set metadata: key=value")
	f.StringArrayVar(&share, "share", nil, "namespaces the containers share: net,ipc,uts (default), and pid")
	f.StringArrayVar(&uidmaps, "uidmap", nil, "a user namespace for the pod, mapping container uids to host uids: CONTAINER:HOST:SIZE")
	f.StringArrayVar(&gidmaps, "gidmap", nil, "the pod's user namespace's gid mapping: CONTAINER:HOST:SIZE")
	nf.register(f)
	return cmd
}

// podRow is a pod ls row (podman's fields).
type podRow struct {
	ID, Name, Status, Created, Containers, Networks string
	Labels                                          map[string]string `json:"Labels"`
}

// podPsJSON is a pod as pod ls --format json prints it: podman's pod ps
// shape (one JSON array of these), its keys and types.
type podPsJSON struct {
	Cgroup     string            `json:"Cgroup"`
	Containers []podPsContainer  `json:"Containers"`
	Created    time.Time         `json:"Created"`
	ID         string            `json:"Id"`
	InfraID    string            `json:"InfraId"` // hull's pods have no infra container
	Name       string            `json:"Name"`
	Namespace  string            `json:"Namespace"`
	Networks   []string          `json:"Networks"`
	Status     string            `json:"Status"`
	Labels     map[string]string `json:"Labels"`
}

type podPsContainer struct {
	ID     string `json:"Id"`
	Names  string `json:"Names"`
	Status string `json:"Status"`
}

// podPs is p (with its containers cs and status) in podman's pod ps JSON.
func podPs(p *engine.Pod, cs []*engine.Container, status string) podPsJSON {
	j := podPsJSON{Cgroup: p.Config.CgroupParent, Containers: []podPsContainer{}, Created: p.Created, ID: p.ID, Name: p.Name,
		Networks: []string{}, Status: status, Labels: map[string]string{}}
	for _, c := range cs {
		j.Containers = append(j.Containers, podPsContainer{ID: c.ID, Names: c.Name, Status: c.State})
	}
	if p.Config.Network != "" {
		j.Networks = append(j.Networks, p.Config.Network)
	}
	maps.Copy(j.Labels, p.Config.Labels)
	return j
}

func newPodLsCmd(g *globals) *cobra.Command {
	var quiet, noTrunc, allNamespaces bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"ps", "list"},
		Short:   "List pods",
		Args:    exactArgs(0, "no arguments"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			fs, err := parseFilterSet(filters, "id", "label", "name", "status")
			if err != nil {
				return err
			}
			pods, err := eng.ListPods(cmd.Context())
			if err != nil {
				return err
			}
			var rows []podRow
			docs := []podPsJSON{}
			for _, p := range pods {
				if p.Kubernetes() && !allNamespaces {
					continue
				}
				cs, err := eng.PodContainers(cmd.Context(), p)
				if err != nil {
					return err
				}
				r := podRow{ID: p.ID, Name: p.Name, Status: eng.PodStatus(p, cs), Created: ui.Ago(p.Created),
					Containers: strconv.Itoa(len(cs)), Networks: p.Config.Network, Labels: p.Config.Labels}
				if !noTrunc {
					r.ID = r.ID[:12]
				}
				if !podMatches(r, p, fs) {
					continue
				}
				rows = append(rows, r)
				if format == "json" {
					docs = append(docs, podPs(p, cs, r.Status))
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
				return nil
			case format == "json":
				b, _ := json.MarshalIndent(docs, "", "  ")
				fmt.Fprintln(out, string(b))
				return nil
			case format != "":
				return ui.Format(out, format, rows)
			}
			t := ui.NewTable(out, "POD ID", "NAME", "STATUS", "CREATED", "# OF CONTAINERS")
			for _, r := range rows {
				t.Row(r.ID, r.Name, r.Status, r.Created, r.Containers)
			}
			return t.Flush()
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only display pod IDs")
	f.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "also show the pod sandboxes kubelet made through hull cri serve")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "format output with a Go template, or json")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: name=, id=, label=, status=")
	return cmd
}

// podMatches applies pod ls's filters (each key's values OR'ed, keys
// AND'ed, as podman).
func podMatches(r podRow, p *engine.Pod, fs filterSet) bool {
	return fs.anyOf("name", func(v string) bool { return strings.Contains(p.Name, v) }) &&
		fs.anyOf("id", func(v string) bool { return strings.HasPrefix(p.ID, v) }) &&
		fs.anyOf("status", func(v string) bool { return strings.EqualFold(r.Status, v) }) &&
		fs.anyOf("label", func(v string) bool { return labelMatches(p.Config.Labels, v) })
}

// podDoc is pod inspect's document (podman's main fields).
type podDoc struct {
	ID               string            `json:"Id"`
	Name             string            `json:"Name"`
	Created          time.Time         `json:"Created"`
	State            string            `json:"State"`
	Hostname         string            `json:"Hostname"`
	Labels           map[string]string `json:"Labels"`
	SharedNamespaces []string          `json:"SharedNamespaces"`
	NetworkMode      string            `json:"NetworkMode"`
	NumContainers    int               `json:"NumContainers"`
	Ports            []string          `json:"Ports"`
	Containers       []podContainer    `json:"Containers"`
}

type podContainer struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State string `json:"State"`
}

func newPodInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] POD [POD...]",
		Short: "Display detailed information on pods",
		Args:  minArgs(1, "a pod"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var docs []podDoc
			for _, ref := range args {
				p, err := eng.GetPod(cmd.Context(), ref)
				if err != nil {
					return err
				}
				cs, err := eng.PodContainers(cmd.Context(), p)
				if err != nil {
					return err
				}
				d := podDoc{ID: p.ID, Name: p.Name, Created: p.Created, State: eng.PodStatus(p, cs), Hostname: p.Config.Hostname,
					Labels: p.Config.Labels, SharedNamespaces: p.Config.Share, NetworkMode: p.Config.Network, NumContainers: len(cs),
					Containers: []podContainer{}, Ports: []string{}}
				for _, pm := range eng.PodPorts(p) {
					d.Ports = append(d.Ports, pm.String())
				}
				if len(d.SharedNamespaces) == 0 {
					d.SharedNamespaces = []string{"ipc", "net", "uts"}
				}
				sort.Strings(d.SharedNamespaces)
				for _, c := range cs {
					d.Containers = append(d.Containers, podContainer{ID: c.ID, Name: c.Name, State: c.State})
				}
				docs = append(docs, d)
			}
			out := cmd.OutOrStdout()
			if format != "" {
				return ui.Format(out, format, docs)
			}
			b, _ := json.MarshalIndent(docs, "", "    ")
			fmt.Fprintln(out, string(b))
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output with a Go template")
	return cmd
}

// podEach runs fn on each named pod and prints its ID, as podman's pod
// start/stop/rm.
func podEach(g *globals, use, short string, fn func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1, "a pod"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var errs []error
			for _, ref := range args {
				p, err := fn(cmd, eng, ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), p.ID)
			}
			return errors.Join(errs...)
		}),
	}
}

func newPodStartCmd(g *globals) *cobra.Command {
	return podEach(g, "start POD [POD...]", "Start pods and their containers", func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error) {
		return eng.StartPod(cmd.Context(), ref)
	})
}

func newPodStopCmd(g *globals) *cobra.Command {
	var timeout int
	cmd := podEach(g, "stop [OPTIONS] POD [POD...]", "Stop pods: their containers, then their namespaces and networks", func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error) {
		return eng.StopPod(cmd.Context(), ref, stopSeconds(cmd, timeout))
	})
	stopTimeoutFlags(cmd, &timeout)
	return cmd
}

func newPodRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := podEach(g, "rm [OPTIONS] POD [POD...]", "Remove pods", func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error) {
		return eng.RemovePod(cmd.Context(), ref, force)
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the pod's containers too, running ones killed")
	return cmd
}

func newPodRestartCmd(g *globals) *cobra.Command {
	var timeout int
	cmd := podEach(g, "restart [OPTIONS] POD [POD...]", "Restart pods and their containers", func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error) {
		return eng.RestartPod(cmd.Context(), ref, stopSeconds(cmd, timeout))
	})
	stopTimeoutFlags(cmd, &timeout)
	return cmd
}

func newPodKillCmd(g *globals) *cobra.Command {
	var sig string
	cmd := podEach(g, "kill [OPTIONS] POD [POD...]", "Send a signal to the running containers of pods", func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error) {
		s, err := engine.ParseSignal(sig)
		if err != nil {
			return nil, err
		}
		return eng.EachPodContainer(cmd.Context(), ref, true, func(c *engine.Container) error { return eng.Kill(cmd.Context(), c.ID, s) })
	})
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send")
	return cmd
}

// newPodPauseCmd is pod pause (pause) or pod unpause.
func newPodPauseCmd(g *globals, pause bool) *cobra.Command {
	use, short := "pause POD [POD...]", "Pause the running containers of pods"
	if !pause {
		use, short = "unpause POD [POD...]", "Unpause the paused containers of pods"
	}
	return podEach(g, use, short, func(cmd *cobra.Command, eng *engine.Engine, ref string) (*engine.Pod, error) {
		return eng.EachPodContainer(cmd.Context(), ref, true, func(c *engine.Container) error {
			switch {
			case pause && c.State == engine.StateRunning:
				return eng.Pause(cmd.Context(), c.ID)
			case !pause && c.State == engine.StatePaused:
				return eng.Unpause(cmd.Context(), c.ID)
			}
			return nil
		})
	})
}

func newPodPruneCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove pods that are not running, with their containers",
		Args:  exactArgs(0, "no arguments"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			if !force && !confirm(cmd, "WARNING! This will remove all stopped pods and their containers.") {
				return nil
			}
			ids, err := eng.PrunePods(cmd.Context())
			for _, id := range ids {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return err
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// newPodTopCmd is pod top: the processes of every running container of
// the pod, with the container's name first (podman's pod top).
func newPodTopCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top POD [ps OPTIONS]",
		Short: "Display the running processes of a pod's containers",
		Args:  minArgs(1, "a pod"),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			var t *ui.Table
			_, err := eng.EachPodContainer(cmd.Context(), args[0], true, func(c *engine.Container) error {
				top, err := eng.Top(cmd.Context(), c.ID, args[1:])
				if err != nil {
					return err
				}
				if t == nil {
					t = ui.NewTable(cmd.OutOrStdout(), append([]string{"CONTAINER"}, top.Titles...)...)
				}
				for _, p := range top.Processes {
					t.Row(append([]string{c.Name}, p...)...)
				}
				return nil
			})
			if t != nil {
				t.Flush()
			}
			return err
		}),
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}
