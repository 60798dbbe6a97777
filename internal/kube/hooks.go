package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Lifecycle hooks as kubelet runs them (pkg/kubelet/lifecycle,
// kuberuntime_container.go). postStart runs right after the container
// starts, before the supervisor goes on (the container shows
// ContainerCreating meanwhile); when it fails, the container is killed
// (FailedPostStartHook), waits as PostStartHookError and restarts by its
// policy and back-off. preStop runs before the stop signal whenever the
// supervisor stops a container (delete, a failed probe, a failed
// postStart), within the grace period; what it leaves of the period is
// the stop's (at least kubelet's 2 s).

// minimumGracePeriod is kubelet's floor for the stop after a preStop
// hook (minimumGracePeriodInSeconds).
const minimumGracePeriod = 2

// runHook runs a lifecycle hook against the container's instance id: ""
// when it succeeded, else kubelet's message for its failure.
func (k *kubelet) runHook(ctx context.Context, c *v1.Container, id string, h *v1.LifecycleHandler) string {
	switch {
	case h.Exec != nil:
		r, err := k.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: h.Exec.Command})
		var out string
		if err == nil {
			out = string(append(r.GetStdout(), r.GetStderr()...))
			if r.GetExitCode() != 0 {
				err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), r.GetExitCode(), r.GetStderr())
			}
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, k.podName(), err, out)
		}
	case h.HTTPGet != nil:
		// At most 10 s, so a server that never answers cannot hold the
		// supervisor (a preStop hook has the grace period too).
		if res, out := k.httpProbe(ctx, c, h.HTTPGet, 10*time.Second, k.probeHost()); res != probeSuccess {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, k.podName(), out)
		}
	case h.Sleep != nil:
		select {
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		case <-ctx.Done():
		}
	default:
		return fmt.Sprintf("Cannot run handler: invalid handler: %v", h)
	}
	return ""
}

// postStart runs c's postStart hook after its start; on failure it kills
// the container and reports false (the caller records the error).
func (k *kubelet) postStart(ctx context.Context, c *v1.Container, s *containerState, id string) bool {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return true
	}
	msg := k.runHook(ctx, c, id, c.Lifecycle.PostStart)
	if msg == "" {
		return true
	}
	k.event(v1.EventTypeWarning, "FailedPostStartHook", msg)
	k.killContainer(ctx, c, id, *k.pod.Spec.TerminationGracePeriodSeconds, "FailedPostStartHook")
	s.Waiting = &v1.ContainerStateWaiting{Reason: "PostStartHookError", Message: msg}
	now := time.Now()
	s.Backoff.next(now, now)
	return false
}

// killContainer is kubelet's killContainer: the Killing event with its
// message, the preStop hook within the grace period, then the stop
// signal with what is left of it.
func (k *kubelet) killContainer(ctx context.Context, c *v1.Container, id string, grace int64, message string) {
	k.event(v1.EventTypeNormal, "Killing", message)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		start := time.Now()
		hctx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
		msg := k.runHook(hctx, c, id, c.Lifecycle.PreStop)
		cancel()
		if msg != "" {
			k.event(v1.EventTypeWarning, "FailedPreStopHook", msg)
		}
		grace -= int64(time.Since(start).Seconds())
		grace = max(grace, minimumGracePeriod)
	}
	k.save()
	if _, err := k.cri.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: grace}); err != nil {
		k.log.Warn("stop container", "container", c.Name, "err", err)
	}
}

// validateLifecycle is the API server's validation of lifecycle hooks.
func validateLifecycle(p *field.Path, l *v1.Lifecycle, c *v1.Container) field.ErrorList {
	if l == nil {
		return nil
	}
	if isInitPath(p) && !isSidecar(c) {
		return field.ErrorList{field.Forbidden(p, "may not be set for init containers without restartPolicy=Always")}
	}
	var errs field.ErrorList
	for _, h := range []struct {
		name string
		h    *v1.LifecycleHandler
	}{{"postStart", l.PostStart}, {"preStop", l.PreStop}} {
		if h.h == nil {
			continue
		}
		hp := p.Child(h.name)
		if h.h.Sleep != nil {
			n := 0
			for _, set := range []bool{h.h.Exec != nil, h.h.HTTPGet != nil, h.h.TCPSocket != nil} {
				if set {
					n++
				}
			}
			if n > 0 {
				errs = append(errs, field.Forbidden(hp, "may not specify more than 1 handler type"))
			}
			if h.h.Sleep.Seconds < 0 {
				errs = append(errs, field.Invalid(hp.Child("sleep", "seconds"), h.h.Sleep.Seconds, "must be greater than or equal to 0"))
			}
			continue
		}
		errs = append(errs, validateHandler(hp, v1.ProbeHandler{Exec: h.h.Exec, HTTPGet: h.h.HTTPGet, TCPSocket: h.h.TCPSocket}, c)...)
	}
	return errs
}
