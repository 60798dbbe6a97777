package kube

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/dump"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Deployments. There is no controller process (hull kube is
// daemonless): apply records the Deployment and makes its pods at once,
// as its ReplicaSet would, and every later `hull kube` command
// reconciles (reconcileDeployments) — a pod deleted by hand is made
// again, a re-apply with another replica count makes or deletes pods, a
// changed template rolls out by the strategy (rollout.go).
// Pods are named NAME-<pod-template-hash>-<5 random characters>, with
// the template's labels plus pod-template-hash and an owner reference to
// the ReplicaSet NAME-<hash>, as the ReplicaSet controller names them.
// Deleting the Deployment deletes its pods.

// labelTemplateHash is the ReplicaSet's label on its pods.
const labelTemplateHash = "pod-template-hash"

// podTemplateHash is the deployment controller's ComputeHash: fnv32a
// of the template's deep print, safe-encoded.
func podTemplateHash(t *v1.PodTemplateSpec) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*t))
	return utilrand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// defaultValidateDeployment is the API server's defaults (replicas 1,
// RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadline 600)
// and validation (a selector matching the template's labels, the
// template a valid pod).
func defaultValidateDeployment(d *appsv1.Deployment) field.ErrorList {
	s := &d.Spec
	if s.Replicas == nil {
		one := int32(1)
		s.Replicas = &one
	}
	if s.RevisionHistoryLimit == nil {
		n := int32(10)
		s.RevisionHistoryLimit = &n
	}
	if s.ProgressDeadlineSeconds == nil {
		n := int32(600)
		s.ProgressDeadlineSeconds = &n
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	defaultStrategy(&s.Strategy) // rollout.go
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, validateStrategy(spec.Child("strategy"), &s.Strategy)...)
	if *s.Replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *s.Replicas, "must be greater than or equal to 0"))
	}
	if s.Selector == nil {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	} else if sel, err := metav1.LabelSelectorAsSelector(s.Selector); err != nil {
		errs = append(errs, field.Invalid(spec.Child("selector"), s.Selector, err.Error()))
	} else if sel.Empty() {
		errs = append(errs, field.Invalid(spec.Child("selector"), s.Selector, "empty selector is invalid for deployment"))
	} else if !sel.Matches(labels.Set(s.Template.Labels)) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
	}
	if s.Template.Spec.RestartPolicy != "" && s.Template.Spec.RestartPolicy != v1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(spec.Child("template", "spec", "restartPolicy"), s.Template.Spec.RestartPolicy, []string{string(v1.RestartPolicyAlways)}))
	}
	// The template as a pod: defaulted, then validated (its paths under
	// spec.template).
	pod := &v1.Pod{ObjectMeta: s.Template.ObjectMeta, Spec: s.Template.Spec}
	pod.Name, pod.Namespace = d.Name, d.Namespace
	Default(pod)
	s.Template.Spec = pod.Spec
	for _, e := range Validate(pod) {
		if strings.HasPrefix(e.Field, "metadata.name") {
			continue // the deployment's own name is checked
		}
		e.Field = "spec.template." + e.Field
		errs = append(errs, e)
	}
	return errs
}

// deploymentPods is the pods of a deployment: owned by one of its
// ReplicaSets (NAME-<hash>).
func deploymentPods(recs []*PodRecord, d *appsv1.Deployment) []*PodRecord {
	var out []*PodRecord
	for _, r := range recs {
		for _, o := range r.Pod.OwnerReferences {
			if o.Kind == "ReplicaSet" && o.Name == d.Name+"-"+r.Pod.Labels[labelTemplateHash] {
				out = append(out, r)
			}
		}
	}
	return out
}

// applyDeployment records a deployment (created, configured or
// unchanged) and reconciles its pods.
func (e *env) applyDeployment(d *appsv1.Deployment) error {
	var old appsv1.Deployment
	verb := "created"
	err := e.store.GetObject("deployments", d.Namespace, d.Name, &old)
	switch {
	case err == nil && sameJSON(old.Spec, d.Spec):
		verb = "unchanged"
		d = &old
	case err == nil:
		verb = "configured"
		d.UID, d.CreationTimestamp, d.Generation = old.UID, old.CreationTimestamp, old.Generation+1
	case errors.Is(err, os.ErrNotExist):
		d.UID = newUID()
		d.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
		d.Generation = 1
	default:
		return err
	}
	d.APIVersion, d.Kind = "apps/v1", "Deployment"
	if verb != "unchanged" {
		if err := e.store.PutObject("deployments", d.Namespace, d.Name, d); err != nil {
			return fmt.Errorf("record deployment %s: %w", d.Name, err)
		}
	}
	if err := e.reconcileDeployment(d); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deployment.apps/%s %s\n", d.Name, verb)
	return nil
}

// reconcileDeployments reconciles every deployment's pods.
func (e *env) reconcileDeployments() {
	refs, _ := e.store.ObjectNames("deployments", "")
	for _, ref := range refs {
		var d appsv1.Deployment
		if e.store.GetObject("deployments", ref[0], ref[1], &d) == nil {
			if err := e.reconcileDeployment(&d); err != nil {
				e.log.Warn("reconcile a deployment", "deployment", d.Name, "err", err)
			}
		}
	}
}

// reconcileDeployment is the deployment and ReplicaSet controllers in
// one step: pods of an old template are deleted, then pods of the
// current template made or deleted (the newest first) until there are
// spec.replicas of them. Pods being deleted do not count.
func (e *env) reconcileDeployment(d *appsv1.Deployment) error {
	// One reconcile at a time: two commands at once would each make the
	// missing pods.
	unlock, err := e.store.lockObjects()
	if err != nil {
		return err
	}
	defer unlock()
	if !sameJSON(d, e.currentDeployment(d)) {
		return nil // changed or deleted meanwhile: its own command reconciles
	}
	hash := podTemplateHash(&d.Spec.Template)
	recs, err := e.store.List(d.Namespace)
	if err != nil {
		return err
	}
	return e.rollout(d, hash, recs) // rollout.go
}

// currentDeployment is the deployment as stored now (nil if deleted).
func (e *env) currentDeployment(d *appsv1.Deployment) *appsv1.Deployment {
	var cur appsv1.Deployment
	if e.store.GetObject("deployments", d.Namespace, d.Name, &cur) != nil {
		return nil
	}
	return &cur
}

// lockObjects takes the store's lock for reconciling deployments.
func (s *Store) lockObjects() (func(), error) {
	if err := os.MkdirAll(s.objectsDir(), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.objectsDir(), "reconcile.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// deletePod asks a pod's supervisor to tear it down, without waiting.
func (e *env) deletePod(r *PodRecord, grace int64) error {
	if err := e.store.MarkDeleted(r.Dir, grace); err != nil {
		return err
	}
	return e.finishDelete(r, false)
}

// deleteDeployment removes a deployment and deletes its pods (waiting
// for them when wait).
func (e *env) deleteDeployment(namespace, name string, grace int64, wait bool) error {
	var d appsv1.Deployment
	if err := e.store.GetObject("deployments", namespace, name, &d); err != nil {
		return errors.Join(os.ErrNotExist, fmt.Errorf("deployments.apps %q not found", name))
	}
	unlock, err := e.store.lockObjects() // no reconcile makes pods meanwhile
	if err != nil {
		return err
	}
	if err := e.store.DeleteObject("deployments", namespace, name); err != nil {
		unlock()
		return err
	}
	recs, err := e.store.List(namespace)
	if err != nil {
		unlock()
		return err
	}
	var errs []error
	pods := deploymentPods(recs, &d)
	for _, r := range pods {
		g := *r.Pod.Spec.TerminationGracePeriodSeconds
		if grace >= 0 {
			g = grace
		}
		if err := e.store.MarkDeleted(r.Dir, g); err != nil {
			errs = append(errs, err)
		}
	}
	unlock() // the pods are marked: waiting for them needs no lock
	for _, r := range pods {
		if err := e.finishDelete(r, wait); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// podReady reports the pod's Ready condition.
func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// deploymentRow is kubectl's deployment row: NAME READY UP-TO-DATE
// AVAILABLE AGE.
func deploymentRow(d *appsv1.Deployment, recs []*PodRecord) []string {
	st := deploymentStatus(d, recs) // rollout.go
	return []string{d.Name, fmt.Sprintf("%d/%d", st.ReadyReplicas, *d.Spec.Replicas), fmt.Sprint(st.UpdatedReplicas), fmt.Sprint(st.AvailableReplicas), age(d.CreationTimestamp)}
}
