package kube

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sidecar containers (KEP-753, restartable init containers): an init
// container with `restartPolicy: Always`. kubelet starts it in its turn
// among the init containers and goes on to the next once it has started
// (running, its startup probe passed), without waiting for it to end; it
// then runs for the pod's life, restarted whenever it exits (with the
// crash back-off) whatever the pod's restart policy, probed like an app
// container, counted in READY and in the pod's readiness, but not in its
// phase: a pod whose app containers have all completed is Succeeded or
// Failed by them, and its sidecars are stopped. At teardown the app
// containers stop first, then the sidecars in reverse order.

// isSidecar reports a restartable init container.
func isSidecar(c *v1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// validateRestartPolicies is the API server's check of containers'
// restartPolicy: Always only, and only on init containers.
func validateRestartPolicies(s *v1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range s.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy != v1.ContainerRestartPolicyAlways {
			errs = append(errs, field.NotSupported(path.Child("initContainers").Index(i).Child("restartPolicy"), *c.RestartPolicy, []string{string(v1.ContainerRestartPolicyAlways)}))
		}
	}
	for i, c := range s.Containers {
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(path.Child("containers").Index(i).Child("restartPolicy"), "may not be set for non-init containers"))
		}
	}
	return errs
}

// probed are the containers whose probes run: the sidecars, then the app
// containers.
func (k *kubelet) probed() []*v1.Container {
	var out []*v1.Container
	for i := range k.pod.Spec.InitContainers {
		if c := &k.pod.Spec.InitContainers[i]; isSidecar(c) {
			out = append(out, c)
		}
	}
	for i := range k.pod.Spec.Containers {
		out = append(out, &k.pod.Spec.Containers[i])
	}
	return out
}

// stopOrder is the order containers stop in at teardown: the app
// containers, then the init containers (sidecars among them) last first.
func stopOrder(pod *v1.Pod) []v1.Container {
	out := append([]v1.Container{}, pod.Spec.Containers...)
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		out = append(out, pod.Spec.InitContainers[i])
	}
	return out
}

// stopRunning stops the pod's running containers within grace, in
// stopOrder, each as kubelet kills one (killContainer: its preStop hook
// first): the teardown's and a failed pod's (podfail.go) stop.
func (k *kubelet) stopRunning(ctx context.Context, grace int64) {
	for _, c := range stopOrder(k.pod) {
		s := k.st.Containers[c.Name]
		if s == nil || s.ID == "" {
			continue
		}
		if r, err := k.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: s.ID}); err == nil && r.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			k.killContainer(ctx, &c, s.ID, grace, "Stopping container "+c.Name) // hooks.go
		}
	}
}

// refreshStatuses reads the CRI status of every container the pod has.
func (k *kubelet) refreshStatuses(ctx context.Context) {
	for name, s := range k.st.Containers {
		if s.ID == "" {
			continue
		}
		if r, err := k.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: s.ID}); err == nil {
			k.status[name] = r.GetStatus()
		}
	}
}
