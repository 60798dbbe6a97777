package kube

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Rollouts: the deployment controller's rolloutRolling and
// rolloutRecreate (pkg/controller/deployment: rolling.go, recreate.go,
// util.NewRSNewReplicas, ResolveFenceposts) over hull kube's implicit
// ReplicaSets: a ReplicaSet is the set of a deployment's pods with one
// pod-template-hash, its replicas those not being deleted, its
// available replicas those Ready for minReadySeconds. Each reconcile is
// one pass of the controller: RollingUpdate makes new pods up to
// replicas+maxSurge, then deletes old ones as far as
// replicas-maxUnavailable available pods allow (unhealthy old pods
// first); Recreate deletes every old pod and makes the new ones once
// none is left. A pass runs at every hull kube command and whenever a
// deployment pod's supervisor sees its pod's readiness change or its
// pod gone (supervisor.go), so a rollout proceeds with no command
// running.

// defaultStrategy is the API server's default of a rolling update:
// maxSurge and maxUnavailable 25%.
func defaultStrategy(s *appsv1.DeploymentStrategy) {
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return
	}
	if s.RollingUpdate == nil {
		s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
	}
	quarter := intstr.FromString("25%")
	if s.RollingUpdate.MaxSurge == nil {
		s.RollingUpdate.MaxSurge = &quarter
	}
	if s.RollingUpdate.MaxUnavailable == nil {
		q := quarter
		s.RollingUpdate.MaxUnavailable = &q
	}
}

// validateStrategy is the API server's check of a deployment's strategy.
func validateStrategy(p *field.Path, s *appsv1.DeploymentStrategy) field.ErrorList {
	var errs field.ErrorList
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(p.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := p.Child("rollingUpdate")
		check := func(name string, v *intstr.IntOrString) {
			if v == nil {
				return
			}
			if v.Type == intstr.String {
				n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, false)
				switch {
				case err != nil:
					errs = append(errs, field.Invalid(ru.Child(name), v.String(), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))
				case name == "maxUnavailable" && n > 100:
					errs = append(errs, field.Invalid(ru.Child(name), v.String(), "must not be greater than 100%"))
				}
			} else if v.IntValue() < 0 {
				errs = append(errs, field.Invalid(ru.Child(name), v.String(), "must be greater than or equal to 0"))
			}
		}
		if r := s.RollingUpdate; r != nil {
			check("maxUnavailable", r.MaxUnavailable)
			check("maxSurge", r.MaxSurge)
			if isZero(r.MaxUnavailable) && isZero(r.MaxSurge) {
				errs = append(errs, field.Invalid(ru.Child("maxUnavailable"), r.MaxUnavailable.String(), "may not be 0 when `maxSurge` is 0"))
			}
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("type"), s.Type, []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}))
	}
	return errs
}

func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return false
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, false)
	return err == nil && n == 0
}

// fenceposts is the controller's ResolveFenceposts: maxSurge of replicas
// rounded up, maxUnavailable rounded down, and 1 unavailable when both
// come to 0.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int) {
	replicas := int(*d.Spec.Replicas)
	zero := intstr.FromInt32(0)
	ms, mu := &zero, &zero
	if r := d.Spec.Strategy.RollingUpdate; r != nil {
		if r.MaxSurge != nil {
			ms = r.MaxSurge
		}
		if r.MaxUnavailable != nil {
			mu = r.MaxUnavailable
		}
	}
	surge, _ = intstr.GetScaledValueFromIntOrPercent(ms, replicas, true)
	unavailable, _ = intstr.GetScaledValueFromIntOrPercent(mu, replicas, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// podAvailable is the controller's IsPodAvailable: Ready for at least
// minReadySeconds.
func podAvailable(p *v1.Pod, minReady int32, now time.Time) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue &&
				(minReady == 0 || !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(time.Duration(minReady)*time.Second).Before(now))
		}
	}
	return false
}

// replicaSet is one pod-template-hash of a deployment: its live pods
// (not being deleted) and whether any of its pods is still being
// deleted.
type replicaSet struct {
	hash     string
	pods     []*PodRecord
	deleting int
	created  time.Time // its oldest pod's creation (the ReplicaSet's age)
}

// replicaSets groups a deployment's pods by template hash: the current
// template's, and the others oldest first.
func replicaSets(pods []*PodRecord, hash string) (cur *replicaSet, old []*replicaSet) {
	cur = &replicaSet{hash: hash}
	byHash := map[string]*replicaSet{hash: cur}
	for _, r := range pods {
		h := r.Pod.Labels[labelTemplateHash]
		rs := byHash[h]
		if rs == nil {
			rs = &replicaSet{hash: h}
			byHash[h] = rs
			old = append(old, rs)
		}
		if rs.created.IsZero() || r.Pod.CreationTimestamp.Time.Before(rs.created) {
			rs.created = r.Pod.CreationTimestamp.Time
		}
		if r.Pod.DeletionTimestamp != nil {
			rs.deleting++
			continue
		}
		rs.pods = append(rs.pods, r)
	}
	slices.SortStableFunc(old, func(a, b *replicaSet) int { return a.created.Compare(b.created) })
	return cur, old
}

func (rs *replicaSet) available(minReady int32, now time.Time) int {
	n := 0
	for _, r := range rs.pods {
		if podAvailable(r.Pod, minReady, now) {
			n++
		}
	}
	return n
}

// deletionOrder is the ReplicaSet controller's choice of pods to delete
// first (ActivePodsWithRanks, for one node): pending before running, not
// ready before ready, ready for less time before more, more restarts
// before fewer, newer before older.
func deletionOrder(pods []*PodRecord) []*PodRecord {
	pods = slices.Clone(pods)
	phaseRank := map[v1.PodPhase]int{v1.PodPending: 0, v1.PodUnknown: 1, v1.PodRunning: 2}
	readySince := func(p *v1.Pod) (bool, time.Time) {
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodReady {
				return c.Status == v1.ConditionTrue, c.LastTransitionTime.Time
			}
		}
		return false, time.Time{}
	}
	restarts := func(p *v1.Pod) int32 {
		n := int32(0)
		for _, s := range p.Status.ContainerStatuses {
			n = max(n, s.RestartCount)
		}
		return n
	}
	slices.SortStableFunc(pods, func(a, b *PodRecord) int {
		pa, pb := a.Pod, b.Pod
		if ra, rb := phaseRank[pa.Status.Phase], phaseRank[pb.Status.Phase]; ra != rb {
			return ra - rb
		}
		ra, ta := readySince(pa)
		rb, tb := readySince(pb)
		if ra != rb {
			if !ra {
				return -1
			}
			return 1
		}
		if ra && !ta.Equal(tb) {
			return tb.Compare(ta) // ready more recently first
		}
		if na, nb := restarts(pa), restarts(pb); na != nb {
			return int(nb - na)
		}
		return pb.CreationTimestamp.Compare(pa.CreationTimestamp.Time)
	})
	return pods
}

// rollout runs passes of the deployment controller over d's pods until
// one changes nothing (the controller syncs again on the events its own
// changes cause), at most a few.
func (e *env) rollout(d *appsv1.Deployment, hash string, recs []*PodRecord) error {
	for range 4 {
		changed, err := e.rolloutPass(d, hash, recs)
		if err != nil || !changed {
			return err
		}
		if recs, err = e.store.List(d.Namespace); err != nil {
			return err
		}
	}
	return nil
}

// rolloutPass is one pass of the deployment controller over d's pods;
// changed says whether it made or deleted any.
func (e *env) rolloutPass(d *appsv1.Deployment, hash string, recs []*PodRecord) (changed bool, err error) {
	now := time.Now()
	replicas, minReady := int(*d.Spec.Replicas), d.Spec.MinReadySeconds
	cur, old := replicaSets(deploymentPods(recs, d), hash)
	scaleDown := func(rs *replicaSet, n int) error {
		changed = changed || n > 0
		for _, r := range deletionOrder(rs.pods)[:n] {
			if err := e.deletePod(r, *r.Pod.Spec.TerminationGracePeriodSeconds); err != nil {
				return err
			}
			rs.pods = slices.DeleteFunc(rs.pods, func(x *PodRecord) bool { return x == r })
		}
		return nil
	}
	scaleUp := func(n int) error {
		changed = changed || n > 0
		for range n {
			if err := e.makeDeploymentPod(d, hash); err != nil {
				return err
			}
		}
		return nil
	}
	// More new pods than replicas (scaled down): delete the excess.
	if len(cur.pods) > replicas {
		if err := scaleDown(cur, len(cur.pods)-replicas); err != nil {
			return changed, err
		}
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		left := 0
		for _, rs := range old {
			left += len(rs.pods) + rs.deleting
			if err := scaleDown(rs, len(rs.pods)); err != nil {
				return changed, err
			}
		}
		if left > 0 {
			return changed, nil // the new pods wait until every old one is gone
		}
		err := scaleUp(replicas - len(cur.pods))
		return changed, err
	}
	surge, unavailable := fenceposts(d)
	oldCount := 0
	for _, rs := range old {
		oldCount += len(rs.pods)
	}
	// Scale up (NewRSNewReplicas): up to replicas+maxSurge pods in all.
	if up := min(replicas+surge-(len(cur.pods)+oldCount), replicas-len(cur.pods)); up > 0 {
		if err := scaleUp(up); err != nil {
			return changed, err
		}
		curNew, _ := replicaSets(deploymentPods(e.listOrNil(d.Namespace), d), hash)
		cur.pods = curNew.pods
	}
	if oldCount == 0 {
		return changed, nil
	}
	// Scale down (reconcileOldReplicaSets): unhealthy old pods first, then
	// available ones, keeping replicas-maxUnavailable available.
	minAvailable := replicas - unavailable
	newUnavailable := len(cur.pods) - cur.available(minReady, now)
	maxScaledDown := len(cur.pods) + oldCount - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return changed, nil
	}
	for _, rs := range old {
		if maxScaledDown <= 0 {
			break
		}
		unhealthy := len(rs.pods) - rs.available(minReady, now)
		n := min(maxScaledDown, unhealthy)
		if n <= 0 {
			continue
		}
		if err := scaleDown(rs, n); err != nil {
			return changed, err
		}
		maxScaledDown -= n
	}
	available := cur.available(minReady, now)
	for _, rs := range old {
		available += rs.available(minReady, now)
	}
	total := available - minAvailable
	for _, rs := range old {
		if total <= 0 {
			break
		}
		n := min(len(rs.pods), total)
		if err := scaleDown(rs, n); err != nil {
			return changed, err
		}
		total -= n
	}
	return changed, nil
}

// listOrNil is the namespace's pods (none on error).
func (e *env) listOrNil(ns string) []*PodRecord {
	recs, _ := e.store.List(ns)
	return recs
}

// makeDeploymentPod makes one pod of d's current template, as its
// ReplicaSet NAME-HASH would: NAME-HASH-<5 random characters>, the
// template's labels plus pod-template-hash, owned by the ReplicaSet.
func (e *env) makeDeploymentPod(d *appsv1.Deployment, hash string) error {
	t := d.Spec.Template.DeepCopy()
	p := &v1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	p.Namespace = d.Namespace
	p.Labels = map[string]string{}
	for k, v := range t.Labels {
		p.Labels[k] = v
	}
	p.Labels[labelTemplateHash] = hash
	yes := true
	p.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: "ReplicaSet", Name: d.Name + "-" + hash,
		UID: d.UID, Controller: &yes, BlockOwnerDeletion: &yes,
	}}
	for try := 0; ; try++ {
		p.Name = d.Name + "-" + hash + "-" + utilrand.String(5)
		err := e.createPod(p)
		if errors.Is(err, os.ErrExist) && try < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("make a pod of deployment %s: %w", d.Name, err)
		}
		return nil
	}
}

// deploymentStatus is the deployment's status as the controller computes
// it: replicas (live pods), updated (of the current template), ready,
// available, unavailable.
func deploymentStatus(d *appsv1.Deployment, recs []*PodRecord) appsv1.DeploymentStatus {
	now := time.Now()
	cur, old := replicaSets(deploymentPods(recs, d), podTemplateHash(&d.Spec.Template))
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, UpdatedReplicas: int32(len(cur.pods))}
	for _, rs := range append([]*replicaSet{cur}, old...) {
		st.Replicas += int32(len(rs.pods))
		st.AvailableReplicas += int32(rs.available(d.Spec.MinReadySeconds, now))
		for _, r := range rs.pods {
			if podReady(r.Pod) {
				st.ReadyReplicas++
			}
		}
	}
	st.UnavailableReplicas = max(0, *d.Spec.Replicas-st.AvailableReplicas)
	return st
}

// rolloutMessage is kubectl's rollout status line for a deployment and
// whether the rollout is done (DeploymentStatusViewer).
func rolloutMessage(d *appsv1.Deployment, st appsv1.DeploymentStatus) (string, bool) {
	switch {
	case st.UpdatedReplicas < *d.Spec.Replicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n", d.Name, st.UpdatedReplicas, *d.Spec.Replicas), false
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n", d.Name, st.Replicas-st.UpdatedReplicas), false
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", d.Name), true
}

// notifyOwner runs a pass of the deployment controller (ownerChanged)
// when the pod belongs to a ReplicaSet and has become ready or unready
// since the last one, or is gone.
func (k *kubelet) notifyOwner(gone bool) {
	if k.ownerChanged == nil || (!gone && k.podIsReady == k.notified) {
		return
	}
	k.notified = k.podIsReady
	for _, o := range k.pod.OwnerReferences {
		if o.Kind == "ReplicaSet" {
			k.ownerChanged()
			return
		}
	}
}

// rolloutCmd is `rollout status deployment/NAME`: kubectl's rollout
// status lines, one each time it changes, until the rollout is done. It
// reads the deployment every 200 ms and, like the other commands that
// wait, runs the reconcile pass (the controller, and dead supervisors)
// once per supervisor round: this command moves the rollout along too.
func (e *env) rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Manage the rollout of a deployment",
	}
	var timeout time.Duration
	status := &cobra.Command{
		Use:   "status deployment/NAME",
		Short: "Show the status of a deployment's rollout, waiting until it is done",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name := args[0], ""
			if len(args) == 2 {
				name = args[1]
			} else if k, n, ok := strings.Cut(args[0], "/"); ok {
				kind, name = k, n
			}
			if resourceOf(kind) != "deployments" || name == "" {
				return fmt.Errorf("hull kube rollout status takes a deployment: deployment/NAME or deployment NAME (got %q)", strings.Join(args, " "))
			}
			var deadline time.Time
			if timeout > 0 {
				deadline = time.Now().Add(timeout)
			}
			last := ""
			for {
				e.reconcileDue() // main.go: once per supervisor round
				var d appsv1.Deployment
				if err := e.store.GetObject("deployments", e.ns(), name, &d); err != nil {
					return errors.Join(os.ErrNotExist, fmt.Errorf("deployments.apps %q not found", name))
				}
				recs, err := e.store.List(e.ns())
				if err != nil {
					return err
				}
				msg, done := rolloutMessage(&d, deploymentStatus(&d, recs))
				if msg != last {
					fmt.Fprint(e.stdout, msg)
					last = msg
				}
				if done {
					return nil
				}
				if !deadline.IsZero() && time.Now().After(deadline) {
					return errors.New("timed out waiting for the condition")
				}
				time.Sleep(200 * time.Millisecond)
			}
		},
	}
	status.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait before giving up (0: forever)")
	cmd.AddCommand(status)
	return cmd
}
