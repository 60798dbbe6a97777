package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri"
	"hull/internal/hugeheap"
	"hull/internal/trace"
)

// The per-pod supervisor: `hull-cri kube supervise DIR`, started
// detached (setsid) by apply, or by any later `hull kube` command that
// finds a pod's supervisor gone. It is that pod's kubelet: it drives the
// CRI (an in-process cri.Server, the code kubelet reaches over the
// socket) through kubelet's pod sync — sandbox, image pulls with
// kubelet's back-off, init containers in order, app containers, restarts
// by the restart policy with kubelet's crash back-off — and records the
// pod's status and events after every change. It exits when the pod is
// deleted (after tearing it down) or has finished for good (Succeeded
// or Failed: its sandbox stopped, its containers kept for logs).

// Kubelet's back-off: 10 s doubling to 5 min for crashes and for image
// pulls; an entry older than twice the maximum (10 min) starts over.
const (
	initialBackoff = 10 * time.Second
	maxBackoff     = 300 * time.Second
	// relist is how often the supervisor reads its containers' states
	// (kubelet's PLEG relists every second).
	relist = time.Second
	// configRetry is how often a container config error is tried again.
	configRetry = 10 * time.Second
)

// BackoffScaleEnv scales every back-off and retry interval (a float; tests
// set it small so they see CrashLoopBackOff without waiting minutes).
// Unset: kubelet's real values.
const BackoffScaleEnv = "HULL_KUBE_BACKOFF_SCALE"

// scaled is d times the back-off scale.
func scaled(d time.Duration) time.Duration {
	if s, err := strconv.ParseFloat(os.Getenv(BackoffScaleEnv), 64); err == nil && s > 0 {
		return time.Duration(float64(d) * s)
	}
	return d
}

// kubeletState is what the supervisor keeps across its own restarts.
type kubeletState struct {
	SandboxID      string                     `json:"sandboxID,omitempty"`
	SandboxAttempt uint32                     `json:"sandboxAttempt"`
	CgroupParent   string                     `json:"cgroupParent,omitempty"` // fixed at the first run (Supervise)
	StartTime      time.Time                  `json:"startTime"`
	Containers     map[string]*containerState `json:"containers"`
	Finished       bool                       `json:"finished,omitempty"`
	// Reason and Message: the pod failed as a whole (podfail.go).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// containerState is one spec container's history.
type containerState struct {
	ID           string    `json:"id,omitempty"`     // the current (newest) container
	PrevID       string    `json:"prevID,omitempty"` // the one before (logs -p)
	RestartCount int32     `json:"restartCount"`
	Backoff      backoff   `json:"backoff"`
	PullBackoff  backoff   `json:"pullBackoff"`
	NextConfig   time.Time `json:"nextConfig,omitempty"` // when a config error is tried again
	// Waiting is why no container is running (set while none can be
	// started: a pull failing, a config error, a back-off).
	Waiting *v1.ContainerStateWaiting    `json:"waiting,omitempty"`
	Last    *v1.ContainerStateTerminated `json:"last,omitempty"`
	Done    bool                         `json:"done,omitempty"` // an init container that succeeded
	// Created: an instance was made before (the next is a restart, even
	// when the sandbox it was in is gone).
	Created bool `json:"created,omitempty"`
	// StartError is the runtime's message when the current container's
	// start failed: the message of its terminated state (StartError),
	// as containerd records it.
	StartError string `json:"startError,omitempty"`
}

// backoff is one flowcontrol.Backoff entry of kubelet's.
type backoff struct {
	Delay      time.Duration `json:"delay"`
	LastUpdate time.Time     `json:"lastUpdate"`
}

// next moves the back-off on at now: the initial delay when there is
// none or it expired (eventTime more than 2×max after the last update),
// else twice the delay, at most max.
func (b *backoff) next(eventTime, now time.Time) {
	if b.Delay == 0 || eventTime.Sub(b.LastUpdate) > 2*scaled(maxBackoff) {
		b.Delay = scaled(initialBackoff)
	} else {
		b.Delay = min(2*b.Delay, scaled(maxBackoff))
	}
	b.LastUpdate = now
}

// inBackoffSince reports kubelet's IsInBackOffSince: eventTime (a
// container's finish) is within the delay of now.
func (b *backoff) inBackoffSince(eventTime, now time.Time) bool {
	if b.Delay == 0 || eventTime.Sub(b.LastUpdate) > 2*scaled(maxBackoff) {
		return false
	}
	return now.Sub(eventTime) < b.Delay
}

// inBackoffSinceUpdate is kubelet's IsInBackOffSinceUpdate (image pulls).
func (b *backoff) inBackoffSinceUpdate(now time.Time) bool {
	if b.Delay == 0 || now.Sub(b.LastUpdate) > 2*scaled(maxBackoff) {
		return false
	}
	return now.Sub(b.LastUpdate) < b.Delay
}

// kubelet is one pod's supervisor.
type kubelet struct {
	// Probes run in goroutines (probes.go): each puts its outcome in
	// probeOut and wakes the sync loop through probeWake.
	probeMu   sync.Mutex
	probeOut  []probeDone
	probeWake chan struct{}
	// podIsReady is the pod's Ready condition as last saved; notified what
	// ownerChanged was last told (rollout.go).
	podIsReady, notified bool
	ownerChanged         func()

	cri      *cri.Server
	store    *Store
	dir      string
	pod      *v1.Pod
	st       kubeletState
	events   []Event
	status   map[string]*runtimeapi.ContainerStatus // the containers' CRI status, this round
	podIP    string
	capacity int64
	log      *slog.Logger
	wake     chan os.Signal
	probes   map[string]*prober // by container name and probe kind (probes.go)
	messages map[string]string  // exited containers' termination messages, by ID (termination.go)
	// evictionChecked is when the emptyDirs' usage was last measured
	// (eviction.go).
	evictionChecked time.Time
}

// Supervise runs the supervisor of the pod in dir until the pod is
// deleted or finished. A second supervisor of the same pod exits at once.
//
// ownerChanged, when not nil, is called when the pod of a ReplicaSet
// (a deployment's) becomes ready or unready and when it is gone: a pass
// of the deployment controller (rollout.go) so a rollout proceeds with
// no command running.
func Supervise(ctx context.Context, srv *cri.Server, dir, cgroupRoot string, log *slog.Logger, ownerChanged func()) error {
	lock, err := os.OpenFile(filepath.Join(dir, "supervisor.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // another supervisor has the pod
	}
	k := &kubelet{cri: srv, dir: dir, log: log, ownerChanged: ownerChanged, capacity: memoryCapacity(), wake: make(chan os.Signal, 1), probeWake: make(chan struct{}, 1)}
	// delete signals SIGUSR1 so its request is seen at once (handled
	// before the pid is published: its default action would kill us).
	signal.Notify(k.wake, syscall.SIGUSR1)
	defer signal.Stop(k.wake)
	if err := os.WriteFile(filepath.Join(dir, "supervisor"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// deleted meanwhile: the supervisor that had the lock
			// before us removed the directory
			return nil
		}
		return err
	}
	k.pod = &v1.Pod{}
	if err := readJSON(filepath.Join(dir, "pod.json"), k.pod); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted meanwhile
		}
		return err
	}
	if err := readJSON(filepath.Join(dir, "kubelet.json"), &k.st); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = readJSON(filepath.Join(dir, "events.json"), &k.events)
	if k.st.Containers == nil {
		k.st.Containers = map[string]*containerState{}
	}
	// The pod's cgroup is fixed when its supervisor first runs: a later
	// change of [kube] cgroup_root leaves it where it is, and its
	// teardown finds it.
	if k.st.CgroupParent == "" {
		k.st.CgroupParent = cgroupParent(cgroupRoot, k.pod)
	}
	if k.st.StartTime.IsZero() {
		k.st.StartTime = time.Now().UTC().Truncate(time.Second)
	}
	// The node's address, which the first status names, is read while
	// the sandbox is made (it dumps the host's addresses: hostip.go).
	go hostIP()
	trace.Mark("kube: supervisor ready")
	first := true
	for {
		if _, err := os.Stat(filepath.Join(dir, "pod.json")); err != nil {
			return nil // removed
		}
		if d, ok := (&Store{}).deleting(dir); ok {
			err := k.teardown(ctx, d.GracePeriod, true)
			k.notifyOwner(true) // rollout.go
			return err
		}
		k.sync(ctx)
		if err := k.save(); err != nil {
			log.Warn("record the pod's status", "err", err)
		}
		// After the status is written (a forced collection, when it
		// runs, costs milliseconds): supervisor_mem.go.
		if first {
			lowerGOGC()
			hugeheap.Settle() // its start's huge pages: package hugeheap
			first = false
		}
		releaseFreeMemory()
		k.notifyOwner(false)
		trace.Mark("kube: status saved")
		if k.st.Finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-k.wake:
		case <-k.probeWake:
		case <-time.After(scaled(relist)):
		}
	}
}

// event records an event; one like the last of its kind counts up.
func (k *kubelet) event(typ, reason, msg string) {
	now := time.Now().UTC()
	for i := len(k.events) - 1; i >= 0; i-- {
		if e := &k.events[i]; e.Reason == reason && e.Message == msg {
			e.Count++
			e.Last = now
			return
		}
	}
	k.events = append(k.events, Event{Type: typ, Reason: reason, From: "kubelet", Message: msg, First: now, Last: now, Count: 1})
	if len(k.events) > 100 {
		k.events = k.events[len(k.events)-100:]
	}
}

// save writes the status, the supervisor's state and the events, each
// only when it changed (compared as the bytes the file would hold). The
// status goes first and without an fsync: it is what `hull kube get`
// and a wait read, and it is only ever derived from the rest (a crash
// that loses it loses a status the next supervisor writes again on its
// first round); kubelet.json (what a restarted supervisor carries on
// from) and events.json are synced before their rename.
func (k *kubelet) save() error {
	status := k.podStatus()
	k.podIsReady = podReady(&v1.Pod{Status: status})
	for _, f := range []struct {
		name    string
		v       any
		durable bool
	}{{"status.json", status, false}, {"kubelet.json", k.st, true}, {"events.json", k.events, true}} {
		path := filepath.Join(k.dir, f.name)
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(bytes.TrimSuffix(old, []byte("\n")), b) {
			continue
		}
		if err := writeFile(path, append(b, '\n'), f.durable); err != nil {
			return err
		}
		if f.name == "status.json" {
			trace.Mark("kube: status written")
		}
	}
	return nil
}

func (k *kubelet) state(name string) *containerState {
	s := k.st.Containers[name]
	if s == nil {
		s = &containerState{}
		k.st.Containers[name] = s
	}
	return s
}

// sync is one round of kubelet's SyncPod.
func (k *kubelet) sync(ctx context.Context) {
	k.status = map[string]*runtimeapi.ContainerStatus{}
	if k.podFailed(ctx) { // podfail.go
		return
	}
	if !k.ensureSandbox(ctx) {
		return
	}
	k.refreshVolumes()     // volumes.go
	k.refreshStatuses(ctx) // sidecar.go
	for i := range k.pod.Spec.InitContainers {
		c := &k.pod.Spec.InitContainers[i]
		if isSidecar(c) { // sidecar.go: kept running; the next waits for its start
			k.syncContainer(ctx, c, true)
			if s := k.state(c.Name); !s.Done {
				if s.Done = k.started(c, k.status[c.Name]); !s.Done {
					k.runProbes(ctx) // its startup probe
					return
				}
			}
			continue
		}
		if k.state(c.Name).Done {
			continue
		}
		k.syncContainer(ctx, c, true)
		if !k.state(c.Name).Done {
			if k.initFailed() {
				k.finish(ctx)
			}
			return // the next init container, or the app containers, wait
		}
	}
	for i := range k.pod.Spec.Containers {
		k.syncContainer(ctx, &k.pod.Spec.Containers[i], false)
	}
	k.runProbes(ctx)
	if p := k.phase(); p == v1.PodSucceeded || p == v1.PodFailed {
		k.finish(ctx)
	}
}

// finish stops the sandbox of a pod that has finished for good (kubelet
// kills a terminal pod's sandbox); the containers stay for logs.
func (k *kubelet) finish(ctx context.Context) {
	if k.st.SandboxID != "" {
		if _, err := k.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: k.st.SandboxID}); err != nil {
			k.log.Warn("stop the sandbox", "err", err)
		}
		k.refreshStatuses(ctx) // what the stop ended (sidecars) shows so
	}
	k.st.Finished = true
}

// ensureSandbox makes the pod's sandbox when it has none ready (a new
// attempt after one that stopped: its containers are started again).
func (k *kubelet) ensureSandbox(ctx context.Context) bool {
	if id := k.st.SandboxID; id != "" {
		r, err := k.cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
		if err == nil && r.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			k.podIP = r.GetStatus().GetNetwork().GetIp()
			return true
		}
		k.event(v1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		k.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
		k.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		k.st.SandboxID = ""
		k.st.SandboxAttempt++
		// Every container starts again in the new sandbox, the init
		// containers first (kubelet's computePodActions).
		for _, s := range k.st.Containers {
			s.PrevID, s.ID, s.Done, s.Waiting = "", "", false, nil
		}
	}
	if err := ensurePodCgroup(k.st.CgroupParent, k.pod); err != nil {
		k.event(v1.EventTypeWarning, "FailedCreatePodContainer", "unable to ensure pod container exists: "+err.Error())
		return false
	}
	cfg := k.sandboxConfig()
	cfg.DnsConfig = k.dnsConfig(true) // dns.go: kubelet's DNS warnings, once per sandbox
	r, err := k.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		k.event(v1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
		return false
	}
	k.st.SandboxID = r.GetPodSandboxId()
	trace.Mark("kube: sandbox ready")
	if s, err := k.cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: k.st.SandboxID}); err == nil {
		k.podIP = s.GetStatus().GetNetwork().GetIp()
	}
	return true
}

func (k *kubelet) sandboxConfig() *runtimeapi.PodSandboxConfig {
	cfg := sandboxConfig(k.pod, k.st.SandboxAttempt, filepath.Join(k.dir, "logs"), k.st.CgroupParent)
	cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = usernsOptions(k.pod, k.dir) // userns.go
	cfg.DnsConfig = k.dnsConfig(false)                                                     // dns.go
	return cfg
}

// restartPolicy is the policy for c: an init container of an Always pod
// restarts on failure only (kubelet's rule).
func (k *kubelet) restartPolicy(c *v1.Container, isInit bool) v1.RestartPolicy {
	if isSidecar(c) {
		return v1.RestartPolicyAlways // sidecar.go
	}
	p := k.pod.Spec.RestartPolicy
	if isInit && p == v1.RestartPolicyAlways {
		return v1.RestartPolicyOnFailure
	}
	return p
}

// podName is kubelet's format.Pod: name_namespace(uid).
func (k *kubelet) podName() string {
	return fmt.Sprintf("%s_%s(%s)", k.pod.Name, k.pod.Namespace, k.pod.UID)
}

// terminated is the terminated state of an exited CRI container.
func terminated(cs *runtimeapi.ContainerStatus) *v1.ContainerStateTerminated {
	return &v1.ContainerStateTerminated{
		ExitCode:    cs.GetExitCode(),
		Reason:      cs.GetReason(),
		Message:     cs.GetMessage(),
		StartedAt:   criTime(cs.GetStartedAt()),
		FinishedAt:  criTime(cs.GetFinishedAt()),
		ContainerID: "hull://" + cs.GetId(),
	}
}

// criTime is a CRI time (Unix nanoseconds, 0 for none).
func criTime(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, ns).UTC())
}

// syncContainer is kubelet's handling of one container: leave a running
// one be; restart an exited one if its policy says so, after its
// back-off; else start it (pull, config checks, create, start).
func (k *kubelet) syncContainer(ctx context.Context, c *v1.Container, isInit bool) {
	s := k.state(c.Name)
	now := time.Now()
	if s.ID != "" {
		cs := k.status[c.Name]
		if cs == nil {
			s.ID = "" // removed behind our back: make it again
		} else {
			if cs.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
				s.Waiting = nil
				return
			}
			t := k.withTerminationMessage(terminated(cs), cs) // termination.go
			finished := t.FinishedAt.Time
			if cs.GetState() == runtimeapi.ContainerState_CONTAINER_CREATED || cs.GetFinishedAt() == 0 {
				// It never ran: its start failed (startContainer made
				// it and started it at once). containerd's words.
				finished = s.Backoff.LastUpdate
				t.FinishedAt = metav1.NewTime(finished.UTC())
				t.Reason, t.ExitCode, t.Message = "StartError", 128, s.StartError
			}
			restart := false
			switch k.restartPolicy(c, isInit) {
			case v1.RestartPolicyAlways:
				restart = true
			case v1.RestartPolicyOnFailure:
				restart = t.ExitCode != 0
			}
			if !restart {
				s.Waiting = nil
				s.Done = isInit && t.ExitCode == 0
				return
			}
			// While it waits to restart, the container that ended is
			// the last state (kubelet's convertToAPIContainerStatuses).
			s.Last = t
			if s.Backoff.inBackoffSince(finished, now) {
				msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", s.Backoff.Delay, c.Name, k.podName())
				if s.Waiting == nil || s.Waiting.Reason != "CrashLoopBackOff" {
					k.event(v1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.Name, k.podName()))
				}
				s.Waiting = &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
				return
			}
			s.Backoff.next(finished, now)
		}
	}
	k.startContainer(ctx, c, s)
}

// startContainer makes and starts a new container for c (kubelet's
// startContainer): pull, config checks, CreateContainer, StartContainer.
func (k *kubelet) startContainer(ctx context.Context, c *v1.Container, s *containerState) {
	now := time.Now()
	if !s.NextConfig.IsZero() && now.Before(s.NextConfig) {
		return
	}
	mounts, ok := k.mountVolumes(c, s) // volumes.go
	if !ok {
		return
	}
	imageRef, uid, username, ok := k.ensureImage(ctx, c, s)
	if !ok {
		return
	}
	if uid == nil && username == "" {
		uid = new(int64) // kubelet takes an image with no user as root
	}
	if msg := verifyRunAsNonRoot(k.pod, c, uid, username); msg != "" {
		k.configError(s, "CreateContainerConfigError", msg)
		return
	}
	attempt := uint32(0)
	if s.Created {
		attempt = uint32(s.RestartCount) + 1
	}
	rc, msg := containerEnv(k.objects(), k.pod, c, k.downward) // envFrom, valueFrom
	if msg != "" {
		k.configError(s, "CreateContainerConfigError", msg)
		return
	}
	if m, err := k.hostsMount(c); err != nil { // dns.go: kubelet's /etc/hosts
		k.configError(s, "CreateContainerConfigError", "write the pod's hosts file: "+err.Error())
		return
	} else if m != nil {
		mounts = append(mounts, m)
	}
	trace.Mark("kube: image present")
	cfg := containerConfig(k.pod, rc, attempt, imageRef, k.capacity)
	cfg.Mounts = mounts
	cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = usernsOptions(k.pod, k.dir) // userns.go
	if m, err := k.terminationMount(c, attempt); err != nil {                              // termination.go
		k.configError(s, "CreateContainerError", err.Error())
		return
	} else if m != nil {
		cfg.Mounts = append(cfg.Mounts, m)
	}
	r, err := k.cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: k.st.SandboxID, Config: cfg, SandboxConfig: k.sandboxConfig()})
	if err != nil {
		k.configError(s, "CreateContainerError", err.Error())
		return
	}
	id := r.GetContainerId()
	k.event(v1.EventTypeNormal, "Created", "Created container: "+c.Name)
	if s.Created {
		// kubelet keeps the newest dead container (logs -p); older go.
		if s.PrevID != "" {
			k.cri.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: s.PrevID})
		}
		s.PrevID = s.ID
		s.RestartCount = int32(attempt)
	}
	s.ID, s.NextConfig, s.Created, s.StartError = id, time.Time{}, true, ""
	if _, err := k.cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		k.event(v1.EventTypeWarning, "Failed", "Error: "+err.Error())
		s.Backoff.next(now, now)
		s.StartError = err.Error()
		if k.restartPolicy(c, false) != v1.RestartPolicyNever { // it will be restarted: kubelet's reasonCache
			s.Waiting = &v1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
			s.Last = &v1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(),
				FinishedAt: metav1.NewTime(now.UTC()), ContainerID: "hull://" + id}
		}
		return
	}
	trace.Mark("kube: container started")
	k.event(v1.EventTypeNormal, "Started", "Started container "+c.Name)
	s.Waiting = nil
	if !k.postStart(ctx, c, s, id) {
		return
	}
	if r, err := k.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); err == nil {
		k.status[c.Name] = r.GetStatus()
	}
}

// configError leaves c waiting for a reason its config gives, tried
// again after configRetry.
func (k *kubelet) configError(s *containerState, reason, msg string) {
	k.event(v1.EventTypeWarning, "Failed", "Error: "+msg)
	s.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: msg}
	s.NextConfig = time.Now().Add(scaled(configRetry))
}

// ensureImage is kubelet's image puller: the pull policy, ImageStatus,
// PullImage with the pull back-off (ErrImagePull, then ImagePullBackOff
// until the back-off passes). It returns the image ID and its user.
func (k *kubelet) ensureImage(ctx context.Context, c *v1.Container, s *containerState) (ref string, uid *int64, username string, ok bool) {
	now := time.Now()
	status := func() (*runtimeapi.Image, error) {
		r, err := k.cri.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: c.Image}})
		return r.GetImage(), err
	}
	img, err := status()
	if err != nil {
		k.configError(s, "InvalidImageName", fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err))
		return "", nil, "", false
	}
	present := img != nil
	if present && c.ImagePullPolicy != v1.PullAlways {
		if s.ID == "" {
			k.event(v1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
		}
		return img.GetId(), uidOf(img), img.GetUsername(), true
	}
	if !present && c.ImagePullPolicy == v1.PullNever {
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		k.configError(s, "ErrImageNeverPull", msg)
		return "", nil, "", false
	}
	if s.PullBackoff.inBackoffSinceUpdate(now) {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		if s.Waiting == nil || s.Waiting.Reason != "ImagePullBackOff" {
			k.event(v1.EventTypeNormal, "BackOff", msg)
			k.event(v1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
		}
		s.Waiting = &v1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg}
		return "", nil, "", false
	}
	k.event(v1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
	start := time.Now()
	for _, req := range k.pullRequests(c.Image) { // pullsecrets.go
		if _, err = k.cri.PullImage(ctx, req); err == nil {
			break
		}
	}
	if err != nil {
		s.PullBackoff.next(now, now)
		k.event(v1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		k.event(v1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		s.Waiting = &v1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}
		return "", nil, "", false
	}
	s.PullBackoff = backoff{}
	img, err = status()
	if err != nil || img == nil {
		s.Waiting = &v1.ContainerStateWaiting{Reason: "ErrImagePull", Message: fmt.Sprintf("image %q is not there after its pull: %v", c.Image, err)}
		return "", nil, "", false
	}
	d := time.Since(start).Round(time.Millisecond)
	k.event(v1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in %s (%s including waiting). Image size: %d bytes.", c.Image, d, d, img.GetSize()))
	return img.GetId(), uidOf(img), img.GetUsername(), true
}

func uidOf(img *runtimeapi.Image) *int64 {
	if u := img.GetUid(); u != nil {
		v := u.GetValue()
		return &v
	}
	return nil
}

// initFailed reports an init container that failed and will not be run
// again (restartPolicy Never): the pod has failed.
func (k *kubelet) initFailed() bool {
	if k.pod.Spec.RestartPolicy != v1.RestartPolicyNever {
		return false
	}
	for _, c := range k.pod.Spec.InitContainers {
		if cs := k.status[c.Name]; cs != nil && cs.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED && cs.GetExitCode() != 0 {
			return true
		}
	}
	return false
}

// teardown is kubelet's KillPod then the sandbox's removal: each
// container stopped within the grace period, the sandbox stopped and
// removed (its containers with it), the pod's cgroup and directory
// removed.
func (k *kubelet) teardown(ctx context.Context, grace int64, removeDir bool) error {
	if id := k.st.SandboxID; id != "" {
		k.stopRunning(ctx, grace) // sidecar.go
		if _, err := k.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			return fmt.Errorf("stop the sandbox of pod %s: %w", k.pod.Name, err)
		}
		if _, err := k.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			return fmt.Errorf("remove the sandbox of pod %s: %w", k.pod.Name, err)
		}
	}
	if err := removePodCgroup(k.st.CgroupParent); err != nil {
		k.log.Warn("remove the pod's cgroup", "pod", k.pod.Name, "err", err)
	}
	unmountVolumes(k.dir)
	if removeDir {
		return removeTree(k.dir)
	}
	return nil
}

// removeTree removes a pod's directory: renamed away first, atomically,
// so no command sees half a pod (a supervisor starting meanwhile finds
// no directory and exits, and cannot recreate files in it).
func removeTree(dir string) error {
	gone := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".removing-"+strconv.Itoa(os.Getpid()))
	if err := os.Rename(dir, gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}
