package kube

import (
	"fmt"
	"io"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Fields hull kube does not apply. podman kube play drops what it does
// not support without a word (podman#12756); hull kube warns for every
// such field a manifest sets, at apply, in kubectl's form for the API
// server's warnings ("Warning: ..." on stderr).

// unappliedFields lists, for a pod spec at path, each field that is set
// and not applied, with why.
func unappliedFields(s *v1.PodSpec, path *field.Path) []string {
	var out []string
	add := func(set bool, name, why string) {
		if set {
			out = append(out, fmt.Sprintf("%s: not applied by hull kube (%s)", path.Child(name), why))
		}
	}
	const scheduling = "one node: nothing is scheduled"
	add(len(s.NodeSelector) > 0, "nodeSelector", scheduling)
	add(s.Affinity != nil, "affinity", scheduling)
	add(len(s.Tolerations) > 0, "tolerations", scheduling)
	add(len(s.TopologySpreadConstraints) > 0, "topologySpreadConstraints", scheduling)
	add(len(s.SchedulingGates) > 0, "schedulingGates", scheduling)
	add(s.SchedulerName != "" && s.SchedulerName != v1.DefaultSchedulerName, "schedulerName", scheduling)
	add(s.PriorityClassName != "", "priorityClassName", scheduling+", nothing is preempted")
	add(s.PreemptionPolicy != nil && *s.PreemptionPolicy != v1.PreemptLowerPriority, "preemptionPolicy", scheduling+", nothing is preempted")
	add(len(s.ReadinessGates) > 0, "readinessGates", "no controller sets their conditions here: the pod is Ready when its containers are")
	add(s.RuntimeClassName != nil, "runtimeClassName", "hull has one runtime handler")
	add(len(s.Overhead) > 0, "overhead", "set from a RuntimeClass, which hull kube has not")
	add(len(s.ResourceClaims) > 0, "resourceClaims", "no dynamic resource allocation on this node")
	add(s.Resources != nil, "resources", "pod-level resources are not applied; give each container its own")
	add(s.OS != nil && s.OS.Name != v1.Linux, "os", "this node runs Linux")
	add(s.AutomountServiceAccountToken != nil && *s.AutomountServiceAccountToken, "automountServiceAccountToken", "no API server issues tokens here")
	if sc := s.SecurityContext; sc != nil {
		p := path.Child("securityContext")
		addSC := func(set bool, name, why string) {
			if set {
				out = append(out, fmt.Sprintf("%s: not applied by hull kube (%s)", p.Child(name), why))
			}
		}
		addSC(sc.SELinuxOptions != nil, "seLinuxOptions", "no SELinux on this node")
		addSC(sc.SELinuxChangePolicy != nil, "seLinuxChangePolicy", "no SELinux on this node")
		addSC(sc.AppArmorProfile != nil, "appArmorProfile", "no AppArmor in hull")
		addSC(sc.WindowsOptions != nil, "windowsOptions", "this node runs Linux")
	}
	for _, set := range []struct {
		name string
		list []v1.Container
	}{{"initContainers", s.InitContainers}, {"containers", s.Containers}} {
		for i, c := range set.list {
			p := path.Child(set.name).Index(i)
			addC := func(set bool, name, why string) {
				if set {
					out = append(out, fmt.Sprintf("%s: not applied by hull kube (%s)", p.Child(name), why))
				}
			}
			addC(len(c.VolumeDevices) > 0, "volumeDevices", "no block volumes here")
			addC(c.Lifecycle != nil && c.Lifecycle.StopSignal != nil, "lifecycle.stopSignal", "containers stop with SIGTERM")
			if sc := c.SecurityContext; sc != nil {
				addC(sc.SELinuxOptions != nil, "securityContext.seLinuxOptions", "no SELinux on this node")
				addC(sc.AppArmorProfile != nil, "securityContext.appArmorProfile", "no AppArmor in hull")
				addC(sc.WindowsOptions != nil, "securityContext.windowsOptions", "this node runs Linux")
			}
		}
	}
	return out
}

// warnUnapplied prints the warnings of a document's pod spec.
func warnUnapplied(w io.Writer, d Document) {
	var what string
	var msgs []string
	switch {
	case d.Pod != nil:
		what, msgs = "pod/"+d.Pod.Name, unappliedFields(&d.Pod.Spec, field.NewPath("spec"))
	case d.Deployment != nil:
		what, msgs = "deployment.apps/"+d.Deployment.Name, unappliedFields(&d.Deployment.Spec.Template.Spec, field.NewPath("spec", "template", "spec"))
	}
	for _, msg := range msgs {
		fmt.Fprintf(w, "Warning: %s: %s\n", what, msg)
	}
}
