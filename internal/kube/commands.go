package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"hull/internal/engine"
)

// newUID is a random RFC 4122 version 4 UUID, as the API server gives
// every object.
func newUID() types.UID {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]))
}

// notFound is the API server's NotFound for a pod.
func notFound(name string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pods %q not found", name))
}

func (e *env) applyCmd() *cobra.Command {
	var files []string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [--wait [--timeout 5m]]",
		Short: "Create the pods a manifest describes (multi-document YAML or JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if e.applying = !wait; e.applying && e.report != nil { // applier.go
				e.prepareSupervision()
			}
			docs, err := ReadManifests(files, e.stdin, e.namespace)
			if err != nil {
				return err
			}
			// Every document is checked against what exists before
			// anything is made.
			if err := e.checkKeyRefs(docs); err != nil { // keyrefs.go
				return err
			}
			create := make([]bool, len(docs))
			for i, d := range docs {
				warnUnapplied(e.stderr, d) // unapplied.go
				if d.Pod == nil {
					continue
				}
				old, err := e.store.Get(d.Pod.Namespace, d.Pod.Name)
				switch {
				case errors.Is(err, os.ErrNotExist):
					create[i] = true
				case err != nil:
					return err
				case old.Pod.DeletionTimestamp != nil:
					return fmt.Errorf("%s: pod %q is being deleted: wait for it to go, then apply again", d.where(), d.Pod.Name)
				case !sameSpec(old.Pod.Spec, withNode(d.Pod.Spec, old.Pod.Spec.NodeName)):
					return fmt.Errorf("%s: The Pod %q is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative): hull kube does not update pods yet, delete it and apply again", d.where(), d.Pod.Name)
				}
			}
			for i, d := range docs {
				if d.Pod == nil {
					if err := e.applyObject(d); err != nil { // configmap.go
						return err
					}
					continue
				}
				if !create[i] {
					fmt.Fprintf(e.stdout, "pod/%s unchanged\n", d.Pod.Name)
					continue
				}
				p := d.Pod
				if err := e.createPod(p); err != nil {
					if errors.Is(err, os.ErrExist) {
						return fmt.Errorf("%s: pod %q was created by another command meanwhile", d.where(), p.Name)
					}
					return err
				}
				fmt.Fprintf(e.stdout, "pod/%s created\n", p.Name)
			}
			if wait {
				return e.waitApplied(docs, timeout) // wait.go
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "a manifest file, a directory of them, or - for stdin (repeatable)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every pod applied is Ready (or Succeeded); fail at once for one that fails or is stuck (e.g. CrashLoopBackOff)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, how long to wait")
	return cmd
}

// sameSpec compares specs as stored (JSON: quantities compare by value
// and form, not by their parsed internals).
func sameSpec(a, b v1.PodSpec) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// withNode is spec as stored (the node name apply sets).
func withNode(s v1.PodSpec, node string) v1.PodSpec {
	s.NodeName = node
	return s
}

// podArgs resolves "pods NAME...", "pod/NAME" and "NAME" arguments to pod
// names; kind is the first argument's resource.
func podArgs(args []string, needKind bool) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("you must specify the type of resource: pods (hull kube knows pods, deployments, configmaps, secrets, persistentvolumeclaims and events)")
	}
	var names []string
	first := args[0]
	if kind, name, ok := strings.Cut(first, "/"); ok {
		if !isPodKind(kind) {
			return nil, fmt.Errorf("the server doesn't have a resource type %q (hull kube knows pods, deployments, configmaps, secrets, persistentvolumeclaims and events)", kind)
		}
		names = append(names, name)
		for _, a := range args[1:] {
			kind, name, ok := strings.Cut(a, "/")
			if !ok || !isPodKind(kind) {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'hull kube get resource/<resource_name>' instead of 'hull kube get resource resource/<resource_name>'")
			}
			names = append(names, name)
		}
		return names, nil
	}
	if !isPodKind(first) {
		if needKind {
			return nil, fmt.Errorf("the server doesn't have a resource type %q (hull kube knows pods, deployments, configmaps, secrets, persistentvolumeclaims and events)", first)
		}
		return args, nil
	}
	return args[1:], nil
}

// noResources is kubectl's message for an empty list.
func noResources(ns string) string {
	if ns == "" {
		return "No resources found"
	}
	return fmt.Sprintf("No resources found in %s namespace.", ns)
}

func isEventKind(k string) bool {
	switch strings.ToLower(k) {
	case "event", "events", "ev":
		return true
	}
	return false
}

func isPodKind(k string) bool {
	switch strings.ToLower(k) {
	case "pod", "pods", "po":
		return true
	}
	return false
}

func (e *env) getCmd() *cobra.Command {
	var output, selector string
	var all, watch bool
	cmd := &cobra.Command{
		Use:   "get pods [NAME...] [-o wide|yaml|json|name|jsonpath=TEMPLATE]",
		Short: "List pods, as kubectl prints them",
		RunE: func(cmd *cobra.Command, args []string) error {
			ns := e.ns()
			if all {
				ns = ""
			}
			if len(args) > 0 && resourceOf(strings.SplitN(args[0], "/", 2)[0]) != "" {
				return e.getObjects(args, ns, output, all) // configmap.go
			}
			if len(args) > 0 && isEventKind(args[0]) {
				if len(args) > 1 {
					return errors.New("hull kube get events lists every event of the namespace: it takes no names")
				}
				recs, err := e.store.List(ns)
				if err != nil {
					return err
				}
				if !printEvents(e.stdout, recs, all) {
					fmt.Fprintln(e.stderr, noResources(ns))
				}
				return nil
			}
			names, err := podArgs(args, true)
			if err != nil {
				return err
			}
			if len(names) > 0 && selector != "" {
				return errors.New("name cannot be provided when a selector is specified") // kubectl's
			}
			sel, err := labels.Parse(selector)
			if err != nil {
				return fmt.Errorf("-l %q: %w", selector, err)
			}
			var pods []*v1.Pod
			if len(names) > 0 {
				for _, n := range names {
					r, err := e.store.Get(e.ns(), n)
					if err != nil {
						return notFound(n)
					}
					pods = append(pods, r.Pod)
				}
			} else {
				recs, err := e.store.List(ns)
				if err != nil {
					return err
				}
				for _, r := range recs {
					if sel.Matches(labels.Set(r.Pod.Labels)) {
						pods = append(pods, r.Pod)
					}
				}
			}
			if watch {
				return e.watchPods(ns, names, sel, output, all)
			}
			if len(pods) == 0 && (output == "" || output == "wide") {
				fmt.Fprintln(e.stderr, noResources(ns))
				return nil
			}
			return printPods(e.stdout, pods, output, all, len(names) > 0)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name, jsonpath=TEMPLATE")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the pods of every namespace")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after the list, print a pod's row again each time it changes (until interrupted)")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "only pods whose labels match (key=value, key!=value, key in (a,b), key, !key)")
	return cmd
}

func (e *env) describeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe pod NAME",
		Short: "Show a pod in detail, with its events, as kubectl describes it",
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := podArgs(args, true)
			if err != nil {
				return err
			}
			var recs []*PodRecord
			if len(names) == 0 {
				if recs, err = e.store.List(e.ns()); err != nil {
					return err
				}
			}
			for _, n := range names {
				r, err := e.store.Get(e.ns(), n)
				if err != nil {
					return notFound(n)
				}
				recs = append(recs, r)
			}
			for i, r := range recs {
				if i > 0 {
					fmt.Fprintln(e.stdout)
					fmt.Fprintln(e.stdout)
				}
				describePod(e.stdout, r)
			}
			return nil
		},
	}
}

// containerOf is the container a logs or exec command means: -c, else
// the pod's only container (or its default-container annotation).
func containerOf(pod *v1.Pod, name string) (*v1.Container, error) {
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	if name == "" {
		if def := pod.Annotations["kubectl.kubernetes.io/default-container"]; def != "" {
			name = def
		} else {
			name = pod.Spec.Containers[0].Name
		}
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %s is not valid for pod %s: choose one of [%s]", name, pod.Name, strings.Join(names, " ")))
}

// podContainer resolves a command's pod argument (NAME, pod/NAME, or
// NAME CONTAINER) and -c to the pod and its container.
func (e *env) podContainer(args []string, container, usage string) (*PodRecord, *v1.Container, error) {
	names, err := podArgs(args, false)
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 2 && container == "" {
		container, names = names[1], names[:1]
	}
	if len(names) != 1 {
		return nil, nil, errors.New("expected one pod: " + usage)
	}
	r, err := e.store.Get(e.ns(), names[0])
	if err != nil {
		return nil, nil, notFound(names[0])
	}
	c, err := containerOf(r.Pod, container)
	return r, c, err
}

// containerIDs is the current and previous container of a spec
// container, from the supervisor's state.
func containerIDs(r *PodRecord, name string) (cur, prev string) {
	var st kubeletState
	readJSON(filepath.Join(r.Dir, "kubelet.json"), &st)
	if s := st.Containers[name]; s != nil {
		return s.ID, s.PrevID
	}
	return "", ""
}

func (e *env) logsCmd() *cobra.Command {
	var container string
	var previous, follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs NAME [-c CONTAINER] [-p] [-f] [--tail N]",
		Short: "Print a container's logs",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, c, err := e.podContainer(args, container, "hull kube logs NAME [-c CONTAINER]")
			if err != nil {
				return err
			}
			cur, prev := containerIDs(r, c.Name)
			id := cur
			if previous {
				if prev == "" {
					return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("previous terminated container %q in pod %q not found", c.Name, r.Pod.Name))
				}
				id = prev
			}
			if id == "" {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %q in pod %q is waiting to start: %s", c.Name, r.Pod.Name, waitingReason(r.Pod, c.Name)))
			}
			eng, err := e.engine()
			if err != nil {
				return err
			}
			ctx := context.Background()
			ls, err := eng.Logs(ctx, id, engine.LogsOptions{Tail: tail, Follow: follow})
			if err != nil {
				return err
			}
			defer ls.Close()
			for {
				rec, err := ls.Next()
				if err != nil {
					break
				}
				if rec.Partial {
					fmt.Fprint(e.stdout, rec.Line)
				} else {
					fmt.Fprintln(e.stdout, rec.Line)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "the container (default: the pod's only one)")
	f.BoolVarP(&previous, "previous", "p", false, "the previous instance of the container")
	f.BoolVarP(&follow, "follow", "f", false, "stream the logs")
	f.IntVar(&tail, "tail", -1, "lines of recent log to show (-1: all)")
	return cmd
}

// waitingReason is why a container has no instance yet.
func waitingReason(pod *v1.Pod, name string) string {
	for _, s := range append(append([]v1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if s.Name == name && s.State.Waiting != nil {
			return s.State.Waiting.Reason
		}
	}
	return "ContainerCreating"
}

func (e *env) execCmd() *cobra.Command {
	var container string
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec NAME [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in a container of a pod",
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 || dash == len(args) {
				return errors.New("you must specify at least one command for the container: hull kube exec NAME -- COMMAND")
			}
			r, c, err := e.podContainer(args[:dash], container, "hull kube exec NAME [-c CONTAINER] -- COMMAND")
			if err != nil {
				return err
			}
			id, _ := containerIDs(r, c.Name)
			running := false
			for _, s := range r.Pod.Status.ContainerStatuses {
				if s.Name == c.Name && s.State.Running != nil {
					running = true
				}
			}
			if id == "" || !running {
				return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("unable to upgrade connection: container not found (%q): it is not running", c.Name))
			}
			hull, err := hullPath(e.hull)
			if err != nil {
				return err
			}
			argv := append([]string{hull}, e.globalArgsNoHull()...)
			argv = append(argv, "exec")
			if stdin {
				argv = append(argv, "-i")
			}
			if tty {
				argv = append(argv, "-t")
			}
			argv = append(append(argv, id), args[dash:]...)
			return syscall.Exec(hull, argv, os.Environ())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "the container (default: the pod's only one)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the container")
	f.BoolVarP(&tty, "tty", "t", false, "stdin is a TTY")
	return cmd
}

// hullPath is the hull binary exec runs.
func hullPath(flagged string) (string, error) {
	if flagged != "" {
		return flagged, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), "hull"), nil
}

func (e *env) globalArgsNoHull() []string {
	args := []string{"--root", e.cfg.Root, "--run-root", e.cfg.RunRoot}
	if e.configPath != "" {
		args = append(args, "--config", e.configPath)
	}
	return args
}

func (e *env) deleteCmd() *cobra.Command {
	var files []string
	var grace int64
	var now, wait bool
	cmd := &cobra.Command{
		Use:   "delete -f FILE | pod NAME... [--grace-period N]",
		Short: "Delete pods: their containers are stopped within the grace period and removed",
		RunE: func(cmd *cobra.Command, args []string) error {
			var targets [][2]string // namespace, name
			switch {
			case len(files) > 0 && len(args) > 0:
				return errors.New("give either -f or pod NAME, not both")
			case len(files) > 0:
				docs, err := ReadManifests(files, e.stdin, e.namespace)
				if err != nil {
					return err
				}
				for _, d := range docs {
					if d.Pod == nil {
						if err := e.deleteObject(d, grace, wait); err != nil { // configmap.go
							return err
						}
						continue
					}
					targets = append(targets, [2]string{d.Pod.Namespace, d.Pod.Name})
				}
			case len(args) > 0 && resourceOf(strings.SplitN(args[0], "/", 2)[0]) != "":
				return e.deleteNamed(args, grace, wait) // configmap.go
			default:
				names, err := podArgs(args, true)
				if err != nil {
					return err
				}
				if len(names) == 0 {
					return errors.New("resource(s) were provided, but no name was specified: hull kube delete pod NAME")
				}
				for _, n := range names {
					targets = append(targets, [2]string{e.ns(), n})
				}
			}
			if now {
				grace = 1
			}
			var errs []error
			var waitFor []*PodRecord
			for _, t := range targets {
				r, err := e.store.Get(t[0], t[1])
				if err != nil {
					errs = append(errs, notFound(t[1]))
					continue
				}
				g := *r.Pod.Spec.TerminationGracePeriodSeconds
				if grace >= 0 {
					g = grace
				}
				if err := e.store.MarkDeleted(r.Dir, g); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "pod %q deleted from %s namespace\n", r.Pod.Name, r.Pod.Namespace)
				waitFor = append(waitFor, r)
			}
			for _, r := range waitFor {
				if err := e.finishDelete(r, wait); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "the manifests whose pods to delete")
	f.Int64Var(&grace, "grace-period", -1, "seconds the containers get to stop (-1: the pod's terminationGracePeriodSeconds)")
	f.BoolVar(&now, "now", false, "stop at once (grace period 1)")
	f.BoolVar(&wait, "wait", true, "wait until the pod is gone")
	return cmd
}

// finishDelete has the pod's supervisor tear it down (signalled to look
// now), or does it here when it has none, and waits for the pod's
// directory to go.
func (e *env) finishDelete(r *PodRecord, wait bool) error {
	for {
		if _, err := os.Stat(r.Dir); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		pid := supervisorPID(r.Dir)
		if pid == 0 {
			srv, err := e.server()
			if err != nil {
				return err
			}
			// The supervisor's teardown, in this process, under the lock
			// a supervisor takes (if one just took it, it does the work).
			err = Supervise(context.Background(), srv, r.Dir, e.cfg.KubeCgroupRoot(), e.log, nil)
			srv.Close()
			if err != nil {
				return err
			}
			continue
		}
		syscall.Kill(pid, syscall.SIGUSR1)
		if !wait {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// watchPods is get -w: the pods, then a pod again each time it appears
// or changes, until interrupted. The table prints a row when READY,
// STATUS or RESTARTS change (like kubectl, the header once and the
// columns not realigned); the other formats print the pod whenever its
// object changes, as kubectl prints each watch event: yaml documents
// separated by ---, json objects one after another, pod/NAME, or the
// jsonpath template's output. It reads the statuses five times per
// supervisor round (watchEvery), so that a status one round wrote and
// the next replaced (ErrImagePull, then ImagePullBackOff) is seen, and
// reconciles once per round (a supervisor that dies meanwhile is
// restarted).
func (e *env) watchPods(ns string, names []string, sel labels.Selector, output string, all bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	table, wide := output == "" || output == "wide", output == "wide"
	last := map[string]string{}
	first := true
	printed := 0
	for {
		e.reconcileDue() // main.go
		recs, err := e.store.List(ns)
		if err != nil {
			return err
		}
		tw := newTable(e.stdout)
		if first && table {
			head := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
			if wide {
				head = append(head, "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
			}
			if all {
				head = append([]string{"NAMESPACE"}, head...)
			}
			fmt.Fprintln(tw, strings.Join(head, "\t"))
		}
		for _, r := range recs {
			p := r.Pod
			if (len(names) > 0 && !slices.Contains(names, p.Name)) || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			key := p.Namespace + "/" + p.Name
			if !table {
				b, err := json.Marshal(p)
				if err != nil {
					return err
				}
				if last[key] == string(b) {
					continue
				}
				last[key] = string(b)
				if output == "yaml" && printed > 0 {
					fmt.Fprintln(e.stdout, "---")
				}
				if err := printPods(e.stdout, []*v1.Pod{p}, output, all, true); err != nil {
					return err
				}
				printed++
				continue
			}
			row := podRow(p, wide)
			// RESTARTS without its "(Xs ago)", which ages by itself.
			state := row[1] + " " + row[2] + " " + strings.Fields(row[3])[0]
			if wide {
				state += " " + row[5]
			}
			if last[key] == state {
				continue
			}
			last[key] = state
			if all {
				row = append([]string{p.Namespace}, row...)
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
		first = false
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchEvery()):
		}
	}
}

// watchEvery is how often get -w reads the statuses: a fifth of the
// supervisor's round (relist; 200 ms, or less with BackoffScaleEnv).
func watchEvery() time.Duration { return scaled(relist) / 5 }
