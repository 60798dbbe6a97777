package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Waiting for pods: `hull kube wait` (kubectl's) and `hull kube apply
// --wait` (podman kube play has no way to wait for readiness,
// podman#20920). Both read what the pods' supervisors record, every
// waitPoll; neither needs a daemon.

// waitPoll is how often a wait reads the pods' records: a status file
// read each, so short enough that `apply --wait` adds nothing a user
// notices to the pod's start.
const waitPoll = 20 * time.Millisecond

// stuckReasons are the waiting reasons of a container that will not
// start without a change to the manifest, the image or the registry:
// `apply --wait` gives up on them at once, with the reason, instead of
// waiting out its timeout (kubelet keeps retrying; the pod stays).
var stuckReasons = map[string]bool{
	"ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true,
	"RunContainerError": true,
}

// waitCmd is kubectl wait for pods: --for=condition=NAME[=VALUE] or
// --for=delete, on named pods, -l or --all, until --timeout.
func (e *env) waitCmd() *cobra.Command {
	var forCond, selector string
	var all bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait (pod/NAME | pods NAME... | pods -l SELECTOR | pods --all) --for=condition=Ready|--for=delete [--timeout 30s]",
		Short: "Wait until pods meet a condition (Ready, another condition, or gone)",
		RunE: func(cmd *cobra.Command, args []string) error {
			want, err := parseWaitFor(forCond)
			if err != nil {
				return err
			}
			names, err := podArgs(args, true)
			if err != nil {
				return err
			}
			sel := labels.Everything()
			if selector != "" {
				if sel, err = labels.Parse(selector); err != nil {
					return fmt.Errorf("unable to parse requirement: %w", err)
				}
			}
			if len(names) == 0 {
				if !all && selector == "" {
					return errors.New("resource(s) were provided, but no name was specified: give pod names, -l SELECTOR or --all")
				}
				recs, err := e.store.List(e.ns())
				if err != nil {
					return err
				}
				for _, r := range recs {
					if sel.Matches(labels.Set(r.Pod.Labels)) {
						names = append(names, r.Pod.Name)
					}
				}
				if len(names) == 0 {
					return errors.New("no matching resources found")
				}
			}
			ctx, stop := waitContext(timeout)
			defer stop()
			for _, name := range names {
				if err := e.waitPod(ctx, name, want); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "pod/%s condition met\n", name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&forCond, "for", "", "the condition: condition=NAME[=VALUE] (e.g. condition=Ready) or delete")
	f.StringVarP(&selector, "selector", "l", "", "wait for the pods whose labels match")
	f.BoolVar(&all, "all", false, "wait for every pod of the namespace")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait (0: look once; negative: a week)")
	return cmd
}

// waitFor is a parsed --for.
type waitFor struct {
	deleted   bool
	condition v1.PodConditionType
	status    v1.ConditionStatus
}

func parseWaitFor(s string) (waitFor, error) {
	if s == "delete" {
		return waitFor{deleted: true}, nil
	}
	cond, ok := strings.CutPrefix(s, "condition=")
	if !ok || cond == "" {
		return waitFor{}, fmt.Errorf("--for=%q: unrecognized condition: give --for=condition=NAME[=VALUE] (e.g. condition=Ready) or --for=delete", s)
	}
	name, value, hasValue := strings.Cut(cond, "=")
	w := waitFor{condition: v1.PodConditionType(name), status: v1.ConditionTrue}
	if hasValue {
		w.status = v1.ConditionStatus(value)
	}
	return w, nil
}

// met reports whether pod meets w (conditions compare as kubectl's:
// names and values without regard to case).
func (w waitFor) met(pod *v1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if strings.EqualFold(string(c.Type), string(w.condition)) {
			return strings.EqualFold(string(c.Status), string(w.status))
		}
	}
	return false
}

// waitContext bounds a wait by timeout (kubectl: 0 looks once, a
// negative timeout is a week) and by an interrupt.
func waitContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout < 0 {
		timeout = 7 * 24 * time.Hour
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	return ctx, func() { cancelT(); cancel() }
}

// waitPod waits until the pod name meets want, kubectl's way: a pod that
// does not exist (yet) is waited for, unless waiting for its deletion.
func (e *env) waitPod(ctx context.Context, name string, want waitFor) error {
	for {
		e.reconcileDue() // main.go
		rec, err := e.store.Get(e.ns(), name)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if want.deleted {
				return nil
			}
		case err != nil:
			return err
		case !want.deleted && want.met(rec.Pod):
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for the condition on pods/%s", name)
		case <-time.After(waitPoll):
		}
	}
}

// waitApplied is `apply --wait`: every pod the documents name, and every
// replica of each Deployment's current template, Ready (or Succeeded,
// for a pod that runs to completion). A pod that failed, or whose
// container is stuck (stuckReasons), ends the wait at once with its
// reason and what to run next.
func (e *env) waitApplied(docs []Document, timeout time.Duration) error {
	ctx, stop := waitContext(timeout)
	defer stop()
	var pods []*v1.Pod
	var deps []*appsv1.Deployment
	for _, d := range docs {
		switch {
		case d.Pod != nil:
			pods = append(pods, d.Pod)
		case d.Deployment != nil:
			deps = append(deps, d.Deployment)
		}
	}
	for {
		e.reconcileDue() // main.go
		pending, err := e.appliedPending(pods, deps)
		if err != nil || pending == "" {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v waiting for %s (see hull kube describe, or hull why)", timeout, pending)
		case <-time.After(waitPoll):
		}
	}
}

// appliedPending names what apply --wait still waits for ("" when
// nothing), or fails for a pod that will not get ready.
func (e *env) appliedPending(pods []*v1.Pod, deps []*appsv1.Deployment) (string, error) {
	for _, p := range pods {
		name := p.Name
		rec, err := e.store.Get(p.Namespace, name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("pod/%s is gone (deleted while apply waited)", name)
			}
			return "", err
		}
		if done, err := podSettled(rec.Pod); err != nil || !done {
			return "pod/" + name + " to be ready", err
		}
	}
	if len(deps) == 0 {
		return "", nil
	}
	for _, d := range deps {
		recs, err := e.store.List(d.Namespace)
		if err != nil {
			return "", err
		}
		hash := podTemplateHash(&d.Spec.Template)
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		var ready int32
		for _, r := range deploymentPods(recs, d) {
			if r.Pod.DeletionTimestamp != nil || r.Pod.Labels[labelTemplateHash] != hash {
				continue
			}
			done, err := podSettled(r.Pod)
			if err != nil {
				return "", fmt.Errorf("deployment.apps/%s: %w", d.Name, err)
			}
			if done {
				ready++
			}
		}
		if ready < want {
			return fmt.Sprintf("deployment.apps/%s (%d of %d replicas ready)", d.Name, ready, want), nil
		}
	}
	return "", nil
}

// podSettled reports a pod Ready or Succeeded, and fails for one that
// Failed or has a stuck container.
func podSettled(p *v1.Pod) (bool, error) {
	switch p.Status.Phase {
	case v1.PodSucceeded:
		return true, nil
	case v1.PodFailed:
		reason := p.Status.Reason
		if reason == "" {
			reason = podRow(p, false)[2]
		}
		return false, fmt.Errorf("pod/%s failed (%s): see hull why pod/%s", p.Name, reason, p.Name)
	}
	if podReady(p) {
		return true, nil
	}
	for _, s := range append(append([]v1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := s.State.Waiting; w != nil && stuckReasons[w.Reason] {
			msg := w.Reason
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return false, fmt.Errorf("pod/%s will not get ready: container %s: %s (see hull why pod/%s)", p.Name, s.Name, msg, p.Name)
		}
	}
	return false, nil
}
