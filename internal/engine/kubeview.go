package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"hull/internal/cgroups"
)

// One engine, two views. The CRI server's sandboxes and containers are
// engine pods and containers like any other; they carry reserved labels
// that say kubelet made them (the CRI's, internal/cri). `hull ps`, `hull
// pod ls` leave them out unless asked with -A/--all-namespaces (as
// nerdctl leaves out its k8s.io namespace), so a node's dozens of
// kube-system containers do not bury a person's own; every other command
// (logs, inspect, exec, why, rm) takes them by name or ID. Images are one
// store and always listed: an image kubelet pulled is one `hull images`
// shows and `hull run` uses.

// The labels the CRI server puts on its objects.
const (
	// LabelCRIContainer is on every container the CRI made (its
	// metadata name).
	LabelCRIContainer = "io.hull.cri.name"
	// LabelCRISandbox is "1" on every pod that is a CRI sandbox.
	LabelCRISandbox = "io.hull.cri.sandbox"
	// LabelCRICgroup lists, as JSON, the cgroup directories the CRI
	// server made for a sandbox (its cgroup parent, when kubelet had
	// not): removed with the pod, whoever removes it.
	LabelCRICgroup = "io.hull.cri.cgroup"
	// LabelCRIImage is a CRI container's image as the pod named it
	// (user_specified_image): kubelet creates the container from the
	// image's ID, and people and kubelet's status want the name.
	LabelCRIImage = "io.hull.cri.image"
	// The sandbox's Kubernetes pod name and namespace.
	labelCRIPodName      = "io.hull.cri.pod.name"
	labelCRIPodNamespace = "io.hull.cri.pod.namespace"
)

// Kubernetes says whether the CRI server (kubelet) made the container.
func (c *Container) Kubernetes() bool { return c.Config.Labels[LabelCRIContainer] != "" }

// ImageName is the image as the container's creator named it: the
// pod's own name for the image of a container kubelet created from the
// image's ID (LabelCRIImage), else the image the container was created
// from (Image).
func (c *Container) ImageName() string {
	if n := c.Config.Labels[LabelCRIImage]; n != "" {
		return n
	}
	return c.Image
}

// Kubernetes says whether the pod is a CRI sandbox.
func (p *Pod) Kubernetes() bool { return p.Config.Labels[LabelCRISandbox] != "" }

// podPull is the last failed image pull for a pod (pull-error.json in
// the pod's directory): kubelet pulls before it creates a container, so
// a pull that fails leaves no container to tell it.
type podPull struct {
	Image string    `json:"Image"`
	Error string    `json:"Error"`
	Time  time.Time `json:"Time"`
}

func (e *Engine) podPullFile(id string) string {
	return filepath.Join(e.podPersistDir(id), "pull-error.json")
}

// RecordPodPull records how a pull of image for pod ref ended: a failure
// is kept for `hull why pod/REF` until a pull for the pod succeeds.
func (e *Engine) RecordPodPull(ctx context.Context, ref, image string, pullErr error) error {
	p, err := e.GetPod(ctx, ref)
	if err != nil {
		return err
	}
	if pullErr == nil {
		if err := os.Remove(e.podPullFile(p.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, _ := json.Marshal(podPull{Image: image, Error: pullErr.Error(), Time: time.Now().UTC()})
	return os.WriteFile(e.podPullFile(p.ID), b, 0o600)
}

// podCreate is a container of a pod whose creation was refused before the
// container was recorded (a CRI CreateContainer: a mount source that
// cannot be made, a seccomp profile, the image not on the node): as with
// a failed pull, nothing else keeps it. The pod's refusals are kept by the
// container's name in the pod, in create-errors.json in its directory,
// which goes with the pod.
type podCreate struct {
	Image string    `json:"Image"`
	Error string    `json:"Error"`
	Next  string    `json:"Next"` // what to do about it
	Time  time.Time `json:"Time"`
}

func (e *Engine) podCreateFile(id string) string {
	return filepath.Join(e.podPersistDir(id), "create-errors.json")
}

// podCreates are pod id's recorded refusals (none if it has none).
func (e *Engine) podCreates(id string) (map[string]podCreate, error) {
	b, err := os.ReadFile(e.podCreateFile(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	var refused map[string]podCreate
	if err := json.Unmarshal(b, &refused); err != nil {
		return nil, fmt.Errorf("pod %s: %s: %w", id, e.podCreateFile(id), err)
	}
	return refused, nil
}

// LoadPodCreates reads which pods have recorded create refusals from
// their directories, once per engine: hull-cri calls it as it starts (and
// RecordPodCreate before its first record). hull-cri is the only writer
// of the records, so from then on the engine's set of those pods is
// what is on disk, and a create that succeeds in a pod outside it costs
// nothing: CreateContainer is on the path critest times.
func (e *Engine) LoadPodCreates() {
	e.podRefusedOnce.Do(func() {
		dirs, _ := os.ReadDir(filepath.Join(e.cfg.Root, "pods")) // none yet: no pods
		for _, d := range dirs {
			if _, err := os.Stat(e.podCreateFile(d.Name())); err == nil {
				e.podRefused.Store(d.Name(), struct{}{})
			}
		}
	})
}

// RecordPodCreate records how the creation of the container named name in
// pod id (kubelet's container name) from image ended: a refusal
// (createErr, with next saying what to do) is kept for `hull why
// pod/REF` until a creation of that name succeeds. A success in a pod
// with no refusal recorded returns at once (LoadPodCreates).
func (e *Engine) RecordPodCreate(id, name, image string, createErr error, next string) error {
	e.LoadPodCreates()
	if _, ok := e.podRefused.Load(id); !ok && createErr == nil {
		return nil
	}
	e.podCreatesMu.Lock()
	defer e.podCreatesMu.Unlock()
	refused, err := e.podCreates(id)
	if err != nil && createErr == nil {
		return err
	}
	if createErr == nil {
		if refused == nil { // removed by another process (hull pod rm)
			e.podRefused.Delete(id)
		}
		if _, ok := refused[name]; !ok {
			return nil
		}
		delete(refused, name)
		if len(refused) == 0 {
			e.podRefused.Delete(id)
			if err := os.Remove(e.podCreateFile(id)); err != nil {
				return fmt.Errorf("pod %s: forget container %s's refused creation: %w", id, name, err)
			}
			return nil
		}
	} else {
		if refused == nil {
			refused = map[string]podCreate{}
		}
		refused[name] = podCreate{Image: image, Error: createErr.Error(), Next: next, Time: time.Now().UTC()}
	}
	b, _ := json.Marshal(refused)
	e.podRefused.Store(id, struct{}{}) // before the file: a failed write costs a read later
	// Whole or not at all: hull why reads it from another process.
	if err := writeFile(e.podCreateFile(id), b); err != nil {
		return fmt.Errorf("pod %s: record container %s's creation: %w", id, name, err)
	}
	return nil
}

// WhyPod diagnoses a pod (`hull why pod/REF`): a failed image pull
// recorded for it, else a container whose creation was refused (the
// latest), else the first of its containers (the newest of each name)
// that failed, crashed or was OOM killed, else its state. The containers'
// own diagnoses come with it, the refused ones first.
func (e *Engine) WhyPod(ctx context.Context, ref string) (*Diagnosis, error) {
	p, err := e.GetPod(ctx, ref)
	if errdefs.IsNotFound(err) {
		if dir := e.kubePodDir(ref, nil); dir != "" {
			return e.whyKube(ctx, dir), nil // a `hull kube` pod (kubewhy.go)
		}
		p = e.kubePod(ctx, ref)
	}
	if p == nil {
		return nil, err
	}
	if dir := e.kubePodDir("", p); dir != "" {
		return e.whyKube(ctx, dir), nil
	}
	cs, err := e.PodContainers(ctx, p)
	if err != nil {
		return nil, err
	}
	d := &Diagnosis{Container: "pod/" + p.Name}
	refused, err := e.podCreates(p.ID)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range refused {
		names = append(names, name)
	}
	// The latest refusal first: the one kubelet is retrying now.
	slices.SortFunc(names, func(a, b string) int { return refused[b].Time.Compare(refused[a].Time) })
	for _, name := range names {
		rc := refused[name]
		d.Containers = append(d.Containers, &Diagnosis{Container: name, Stage: StageCreate,
			Status: "never created: " + rc.Error, Evidence: []string{rc.Error}, Next: rc.Next})
	}
	seen := map[string]bool{}
	var bad *Diagnosis
	for _, c := range cs { // newest first: the latest attempt of each
		name := c.Config.Labels[LabelCRIContainer]
		if name == "" {
			name = c.Name
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		cd, err := e.Why(ctx, c.ID)
		if err != nil {
			continue // removed meanwhile
		}
		d.Containers = append(d.Containers, cd)
		if bad == nil && failed(c) {
			bad = cd
		}
	}
	var pull podPull
	if b, err := os.ReadFile(e.podPullFile(p.ID)); err == nil && json.Unmarshal(b, &pull) == nil {
		d.Stage = StagePull
		d.Status = fmt.Sprintf("the image %s could not be pulled, so its container was never created", pull.Image)
		d.Evidence = []string{pull.Error, "at " + pull.Time.Local().Format(time.RFC3339)}
		d.Next = fmt.Sprintf("check the image reference and the registry: hull pull %s", pull.Image)
		return d, nil
	}
	switch {
	case len(names) > 0:
		rc := refused[names[0]]
		d.Stage = StageCreate
		d.Status = fmt.Sprintf("container %s could not be created (its create was refused), so it never ran", names[0])
		d.Evidence = []string{rc.Error, "image " + rc.Image, "at " + rc.Time.Local().Format(time.RFC3339)}
		d.Next = rc.Next + "; kubelet retries the create with back-off"
	case bad != nil:
		d.Stage, d.Evidence, d.Next = bad.Stage, bad.Evidence, bad.Next
		d.Status = fmt.Sprintf("container %s: %s", bad.Container, bad.Status)
	case p.State != PodRunning:
		d.Stage = p.State
		d.Status = fmt.Sprintf("the pod is %s: its namespaces and network are down", p.State)
		d.Next = fmt.Sprintf("start it with: hull pod start %s", p.Name)
		if p.Kubernetes() {
			d.Next = "kubelet makes a new sandbox for the pod when it is still wanted"
		}
	default:
		d.Stage = StageRunning
		d.Status = fmt.Sprintf("running, with %d containers", len(d.Containers))
		d.Next = fmt.Sprintf("each container: hull why CONTAINER; its output: hull logs CONTAINER (hull ps -a --filter label=io.kubernetes.pod.name=%s -A)", p.Config.Labels[labelCRIPodName])
		if !p.Kubernetes() {
			d.Next = fmt.Sprintf("each container: hull why CONTAINER (hull pod inspect %s lists them)", p.Name)
		}
	}
	return d, nil
}

// kubePod is the newest CRI sandbox of the Kubernetes pod named name
// (its metadata name, NAME or NAMESPACE/NAME), or nil.
func (e *Engine) kubePod(ctx context.Context, name string) *Pod {
	ns, n, ok := strings.Cut(name, "/")
	if !ok {
		ns, n = "", name
	}
	pods, _ := e.ListPods(ctx)
	for _, p := range pods { // newest first
		l := p.Config.Labels
		if p.Kubernetes() && l[labelCRIPodName] == n && (ns == "" || l[labelCRIPodNamespace] == ns) {
			return p
		}
	}
	return nil
}

// failed says whether a container's last run went wrong: its creation
// or start failed, it crashed, or it was OOM killed.
func failed(c *Container) bool {
	switch {
	case c.OOMKilled, c.Error != "" && c.State != StateRunning:
		return true
	case c.State == StateRestarting:
		return true
	case c.State == StateExited && (c.ExitCode != 0 || c.Signal != 0) && !c.StopRequested:
		return true
	}
	return false
}

// PodRef is the pod a `hull why` argument names with its pod/ prefix,
// if it has one.
func PodRef(arg string) (string, bool) { return strings.CutPrefix(arg, "pod/") }

// removePodCgroups removes the cgroup directories the CRI server made
// for pod p (LabelCRICgroup), its containers gone: the deepest with
// anything below it, its parents only once empty.
func removePodCgroups(p *Pod) error {
	var created []string
	label := p.Config.Labels[LabelCRICgroup]
	if label == "" || json.Unmarshal([]byte(label), &created) != nil || len(created) == 0 {
		return nil
	}
	m, err := cgroups.Load(cgroups.ContainerPath(p.Config.CgroupParent, ""), created)
	if err != nil {
		return err
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("pod %s: cgroup %s: %w", p.Name, p.Config.CgroupParent, err)
	}
	return nil
}
