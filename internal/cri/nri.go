package cri

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	nri "github.com/containerd/nri/pkg/adaptation"
	nrilog "github.com/containerd/nri/pkg/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
	"hull/internal/engine"
)

// NRI (the Node Resource Interface, github.com/containerd/nri): plugins
// connect to a socket hull-cri serves and are told of every pod and
// container lifecycle event; at CreateContainer they may adjust the
// container (env, mounts, annotations, resources, devices, rlimits), and
// at any event update other containers' resources. hull-cri is the
// runtime side (the nri adaptation package); only hull-cri links it.
//
// What the CRI calls send, in the order the NRI specs demand:
//
//   - RunPodSandbox: after the pod is made, started and on its network;
//     until the plugins have answered the pod is hidden (ListPodSandbox
//     leaves it out, PodSandboxStatus and CreateContainer say NotFound);
//     a plugin's error fails the call and removes the pod.
//   - CreateContainer: before the engine container exists, with the ID
//     chosen ahead (so nothing is visible while plugins run); the merged
//     adjustment is applied to the create options, or the call fails
//     saying what hull cannot honour. A failed create after the plugins
//     agreed tells them StopContainer and RemoveContainer (undo).
//   - StartContainer before the process starts (an error fails the call),
//     PostStartContainer after.
//   - UpdateContainerResources: UpdateContainer (plugins may change the
//     resources), then PostUpdateContainer.
//   - StopContainer once per container: after CRI StopContainer, when the
//     container exits on its own (the exit watcher below), or before
//     RemoveContainer, whichever comes first.
//   - StopPodSandbox: the pod's containers are stopped first (each
//     StopContainer), then the plugins are told while the pod is still
//     there, then the pod is stopped. Only a running pod sends it, so a
//     second StopPodSandbox sends nothing.
//   - RemovePodSandbox / RemoveContainer: after the containers are gone,
//     before the pod record is.
//
// Plugin synchronization: a plugin that connects gets every CRI pod and
// container (Synchronize). Pod and container creation hold the
// adaptation's sync block from before their plugin call until the engine
// record exists, so a Synchronize runs either before (and the plugin then
// gets the creation's event) or after (and the record is in its list):
// nothing made meanwhile is lost.

// NRIOptions configure hull-cri's NRI runtime (nil Options.NRI: off).
type NRIOptions struct {
	// Socket is where plugins connect (default /var/run/nri/nri.sock).
	Socket string
	// PluginPath holds pre-installed plugins hull-cri starts itself
	// (default /opt/nri/plugins); PluginConfigPath their configuration
	// (default /etc/nri/conf.d).
	PluginPath, PluginConfigPath string
	// RegistrationTimeout and RequestTimeout bound a plugin's
	// registration and each call to it (0: NRI's defaults, 5s and 2s).
	RegistrationTimeout, RequestTimeout time.Duration
}

// DefaultNRISocket is NRI's default socket.
const DefaultNRISocket = nri.DefaultSocketPath

// nriRuntime is the server's NRI adaptation and what it tracks. A nil
// *nriRuntime is NRI off: every method is then a no-op.
type nriRuntime struct {
	s   *Server
	a   *nri.Adaptation
	log *slog.Logger

	mu sync.Mutex
	// hidden are engine pod names whose RunPodSandbox is between the
	// pod's creation and the plugins' answer.
	hidden map[string]bool
	// stopMu serializes StopContainer notifications, so that one in
	// flight completes before a RemoveContainer of the same container
	// is sent; stopped are the containers the plugins were told stopped.
	stopMu  sync.Mutex
	stopped map[string]bool
	// plugins counts the connected plugins: with none, the calls skip
	// all NRI work (the pod and container views, their reads).
	plugins pluginCount
}

// pluginCount is the adaptation's Metrics, for its plugin count.
type pluginCount struct{ n atomic.Int64 }

func (c *pluginCount) UpdatePluginCount(n int)                           { c.n.Store(int64(n)) }
func (c *pluginCount) RecordPluginInvocation(string, string, error)      {}
func (c *pluginCount) RecordPluginLatency(string, string, time.Duration) {}
func (c *pluginCount) RecordPluginAdjustments(string, string, *nri.ContainerAdjustment, int, int) {
}

// off says whether there is no plugin to tell (or NRI is off).
func (n *nriRuntime) off() bool { return n == nil || n.plugins.n.Load() == 0 }

// startNRI starts the NRI runtime (pre-installed plugins, the socket)
// and the exit watcher, which ends with ctx.
func (s *Server) startNRI(ctx context.Context) error {
	o := s.opts.NRI
	if o == nil {
		return nil
	}
	n := &nriRuntime{s: s, log: s.opts.Log, hidden: map[string]bool{}, stopped: map[string]bool{}}
	sock := o.Socket
	if sock == "" {
		sock = DefaultNRISocket
	}
	if !filepath.IsAbs(sock) {
		return fmt.Errorf("--nri-socket %q: give an absolute path", sock)
	}
	// The adaptation removes whatever is at the socket path: refuse to
	// take the socket of a runtime that is serving plugins on it.
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("nri: %s: another runtime serves NRI there (stop it, choose another --nri-socket, or --nri=false)", sock)
	}
	if o.RegistrationTimeout > 0 {
		nri.SetPluginRegistrationTimeout(o.RegistrationTimeout)
	}
	if o.RequestTimeout > 0 {
		nri.SetPluginRequestTimeout(o.RequestTimeout)
	}
	nrilog.Set(nriLogger{s.opts.Log})
	opts := []nri.Option{nri.WithSocketPath(sock), nri.WithMetrics(&n.plugins)}
	if o.PluginPath != "" {
		opts = append(opts, nri.WithPluginPath(o.PluginPath))
	}
	if o.PluginConfigPath != "" {
		opts = append(opts, nri.WithPluginConfigPath(o.PluginConfigPath))
	}
	a, err := nri.New(RuntimeName, s.opts.Version, n.synchronize, n.updateContainers, opts...)
	if err != nil {
		return fmt.Errorf("nri: %w", err)
	}
	n.a = a
	seq := n.lastEventSeq(ctx)
	if err := a.Start(); err != nil {
		return fmt.Errorf("nri: start on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil { // plugins act as root
		a.Stop()
		return fmt.Errorf("nri: %w", err)
	}
	s.nri = n
	go n.watchExits(ctx, seq)
	return nil
}

// stop stops the adaptation (plugins it started are killed; connected
// ones see the socket close) and removes the socket.
func (n *nriRuntime) stop() {
	if n == nil {
		return
	}
	n.a.Stop()
}

// nriLogger sends NRI's log lines to the server's log (its Info lines,
// one per plugin call, at debug).
type nriLogger struct{ l *slog.Logger }

func (g nriLogger) Debugf(_ context.Context, f string, a ...any) {
	g.l.Debug("nri: " + fmt.Sprintf(f, a...))
}
func (g nriLogger) Infof(_ context.Context, f string, a ...any) {
	g.l.Debug("nri: " + fmt.Sprintf(f, a...))
}
func (g nriLogger) Warnf(_ context.Context, f string, a ...any) {
	g.l.Warn("nri: " + fmt.Sprintf(f, a...))
}
func (g nriLogger) Errorf(_ context.Context, f string, a ...any) {
	msg := fmt.Sprintf(f, a...)
	if strings.Contains(msg, nri.ErrWasmDisabled.Error()) {
		// hull-cri is built without WebAssembly plugins (nri_no_wasm).
		g.l.Debug("nri: " + msg)
		return
	}
	g.l.Error("nri: " + msg)
}

// --- visibility and synchronization ---

// hidePod hides the pod named name (an engine name) from the CRI until
// the returned function is called.
func (n *nriRuntime) hidePod(name string) func() {
	if n == nil {
		return func() {}
	}
	n.mu.Lock()
	n.hidden[name] = true
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		delete(n.hidden, name)
		n.mu.Unlock()
	}
}

// podHidden says whether pod name is hidden by a RunPodSandbox in flight.
func (n *nriRuntime) podHidden(name string) bool {
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hidden[name]
}

// blockSync keeps plugins from synchronizing until the returned function
// is called.
func (n *nriRuntime) blockSync() func() {
	if n == nil {
		return func() {}
	}
	return n.a.BlockPluginSync().Unblock
}

// synchronize hands a connecting plugin every CRI pod and container and
// applies the updates it asks for.
func (n *nriRuntime) synchronize(ctx context.Context, cb nri.SyncCB) error {
	pods, err := n.s.eng.ListPods(ctx)
	if err != nil {
		return err
	}
	var npods []*nri.PodSandbox
	byID := map[string]*engine.Pod{}
	for _, p := range pods {
		if p.Config.Labels[labelSandbox] == "" || n.podHidden(p.Name) {
			continue
		}
		byID[p.ID] = p
		npods = append(npods, n.pod(p))
	}
	cs, err := n.s.eng.List(ctx)
	if err != nil {
		return err
	}
	var nctrs []*nri.Container
	for _, c := range cs {
		if c.Config.Labels[labelName] == "" || byID[c.Config.Pod] == nil || n.s.removing(c) {
			continue
		}
		nctrs = append(nctrs, n.container(c))
	}
	updates, err := cb(ctx, npods, nctrs)
	if err != nil {
		return err
	}
	_, err = n.applyUpdates(ctx, updates)
	return err
}

// --- pods ---

// runPodSandbox tells the plugins of a new, started pod.
func (n *nriRuntime) runPodSandbox(ctx context.Context, p *engine.Pod) error {
	if n.off() {
		return nil
	}
	if err := n.a.RunPodSandbox(ctx, &nri.RunPodSandboxRequest{Pod: n.pod(p)}); err != nil {
		// The plugins before the failing one saw the pod: tell them
		// it is gone.
		n.notify("RemovePodSandbox", n.a.RemovePodSandbox(context.WithoutCancel(ctx), &nri.RemovePodSandboxRequest{Pod: n.pod(p)}))
		return nriError("RunPodSandbox", "pod sandbox "+p.ID, err)
	}
	return nil
}

// stopPodSandbox stops a running pod's containers (telling the plugins
// of each) and then the plugins of the pod, while it is still there. A
// pod that is not running sends nothing: StopPodSandbox is idempotent.
func (n *nriRuntime) stopPodSandbox(ctx context.Context, p *engine.Pod) error {
	if n.off() || p.State != engine.PodRunning {
		return nil
	}
	cs, err := n.s.podContainers(ctx, p)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.State == engine.StateRunning || c.State == engine.StatePaused || c.State == engine.StateRestarting {
			if _, err := n.s.eng.Stop(ctx, c.ID, 0); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("stop container %s of pod sandbox %s: %w", c.ID, p.ID, err)
			}
		}
		n.stopContainer(ctx, c.ID)
	}
	n.notify("StopPodSandbox", n.a.StopPodSandbox(ctx, &nri.StopPodSandboxRequest{Pod: n.pod(p)}))
	return nil
}

// removePodSandbox stops the pod if it runs, removes its containers
// (telling the plugins of each), then tells the plugins of the pod; the
// caller removes the pod.
func (n *nriRuntime) removePodSandbox(ctx context.Context, p *engine.Pod) error {
	if n.off() {
		return nil
	}
	if err := n.stopPodSandbox(ctx, p); err != nil {
		return err
	}
	cs, err := n.s.podContainers(ctx, p)
	if err != nil {
		return err
	}
	for _, c := range cs {
		n.stopContainer(ctx, c.ID)
		if err := n.s.eng.Remove(ctx, c.ID, true); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s of pod sandbox %s: %w", c.ID, p.ID, err)
		}
		n.removeContainer(ctx, c)
	}
	n.notify("RemovePodSandbox", n.a.RemovePodSandbox(ctx, &nri.RemovePodSandboxRequest{Pod: n.pod(p)}))
	return nil
}

// --- containers ---

// createContainer asks the plugins about a container about to be made
// in pod p: o gets an ID chosen now and the plugins' adjustment. done
// must be called with the result of the engine's create: on success the
// plugins get PostCreateContainer, on failure StopContainer and
// RemoveContainer (they agreed to a container that never came).
func (n *nriRuntime) createContainer(ctx context.Context, p *engine.Pod, o *engine.CreateOptions) (done func(*engine.Container, error), err error) {
	if n == nil {
		return func(*engine.Container, error) {}, nil
	}
	unblock := n.blockSync()
	if n.off() { // checked with sync blocked: no plugin can join unseen
		return func(*engine.Container, error) { unblock() }, nil
	}
	if o.ID == "" { // else chosen for the pod's spare (spares.go)
		o.ID = engine.NewID()
	}
	planned := &engine.Container{ID: o.ID, Name: o.Name, State: engine.StateCreated, Created: time.Now(), Config: o.Config}
	planned.Config.Spec.ID = o.ID
	pod := n.pod(p)
	ctr := n.container(planned)
	if len(ctr.Linux.Namespaces) == 0 { // the engine joins the pod at create
		ctr.Linux.Namespaces = pod.Linux.Namespaces
	}
	rpl, err := n.a.CreateContainer(ctx, &nri.CreateContainerRequest{Pod: pod, Container: ctr})
	if err == nil {
		err = applyAdjustment(rpl.GetAdjust(), o)
		if err == nil {
			_, err = n.applyUpdates(ctx, rpl.GetUpdate())
		}
		if err == nil {
			n.evict(ctx, rpl.GetEvict())
		}
	}
	if err != nil {
		if rpl != nil { // the plugins agreed; hull cannot honour it
			n.undoCreate(ctx, pod, ctr)
		}
		unblock()
		return nil, nriError("CreateContainer", "container "+o.Name, err)
	}
	return func(c *engine.Container, err error) {
		defer unblock()
		if err != nil {
			n.undoCreate(ctx, pod, ctr)
			return
		}
		n.notify("PostCreateContainer", n.a.PostCreateContainer(ctx, &nri.PostCreateContainerRequest{Pod: pod, Container: n.container(c)}))
	}, nil
}

// undoCreate tells the plugins a container they were asked about is not
// there after all.
func (n *nriRuntime) undoCreate(ctx context.Context, pod *nri.PodSandbox, ctr *nri.Container) {
	ctx = context.WithoutCancel(ctx)
	_, err := n.a.StopContainer(ctx, &nri.StopContainerRequest{Pod: pod, Container: ctr})
	n.notify("StopContainer", err)
	n.notify("RemoveContainer", n.a.RemoveContainer(ctx, &nri.RemoveContainerRequest{Pod: pod, Container: ctr}))
}

// startContainer tells the plugins a container is about to start; an
// error fails the start.
func (n *nriRuntime) startContainer(ctx context.Context, c *engine.Container) error {
	if n.off() {
		return nil
	}
	pod, err := n.podOf(ctx, c)
	if err != nil {
		return err
	}
	if err := n.a.StartContainer(ctx, &nri.StartContainerRequest{Pod: pod, Container: n.container(c)}); err != nil {
		return nriError("StartContainer", "container "+c.ID, err)
	}
	return nil
}

// postStartContainer tells the plugins a container started.
func (n *nriRuntime) postStartContainer(ctx context.Context, id string) {
	n.post(ctx, id, "PostStartContainer", func(pod *nri.PodSandbox, c *nri.Container) error {
		return n.a.PostStartContainer(ctx, &nri.PostStartContainerRequest{Pod: pod, Container: c})
	})
}

// post sends an after-the-fact container event (send) about container id
// as it is now.
func (n *nriRuntime) post(ctx context.Context, id, event string, send func(*nri.PodSandbox, *nri.Container) error) {
	if n.off() {
		return
	}
	c, err := n.s.eng.Get(ctx, id)
	if err != nil {
		return
	}
	pod, err := n.podOf(ctx, c)
	if err != nil {
		return
	}
	n.notify(event, send(pod, n.container(c)))
}

// updateContainer asks the plugins about a resource update (u), which
// they may change; their updates of other containers are applied.
func (n *nriRuntime) updateContainer(ctx context.Context, c *engine.Container, u *engine.UpdateOptions) error {
	if n.off() {
		return nil
	}
	pod, err := n.podOf(ctx, c)
	if err != nil {
		return err
	}
	rpl, err := n.a.UpdateContainer(ctx, &nri.UpdateContainerRequest{Pod: pod, Container: n.container(c), LinuxResources: updateResources(u)})
	if err != nil {
		return nriError("UpdateContainer", "container "+c.ID, err)
	}
	var others []*nri.ContainerUpdate
	for _, up := range rpl.GetUpdate() {
		if up.GetContainerId() != c.ID {
			others = append(others, up)
			continue
		}
		if err := setUpdate(u, up.GetLinux().GetResources()); err != nil {
			return nriError("UpdateContainer", "container "+c.ID, err)
		}
	}
	if _, err := n.applyUpdates(ctx, others); err != nil {
		return err
	}
	n.evict(ctx, rpl.GetEvict())
	return nil
}

// postUpdateContainer tells the plugins a container's resources changed.
func (n *nriRuntime) postUpdateContainer(ctx context.Context, id string) {
	n.post(ctx, id, "PostUpdateContainer", func(pod *nri.PodSandbox, c *nri.Container) error {
		return n.a.PostUpdateContainer(ctx, &nri.PostUpdateContainerRequest{Pod: pod, Container: c})
	})
}

// stopContainer tells the plugins container id stopped, once: after the
// CRI's StopContainer, its own exit, or before its removal, whichever
// comes first. A container that never started is not stopped.
func (n *nriRuntime) stopContainer(ctx context.Context, id string) {
	if n.off() {
		return
	}
	n.stopMu.Lock()
	defer n.stopMu.Unlock()
	if n.stopped[id] {
		return
	}
	c, err := n.s.eng.Get(ctx, id)
	// One whose removal answered is gone for the CRI (its record may
	// outlast the answer: RemoveDeferred); its plugins were told.
	if err != nil || c.Config.Labels[labelName] == "" || c.Started.IsZero() || n.s.removing(c) {
		return
	}
	pod, err := n.podOf(ctx, c)
	if err != nil {
		return
	}
	n.stopped[id] = true
	rpl, err := n.a.StopContainer(context.WithoutCancel(ctx), &nri.StopContainerRequest{Pod: pod, Container: n.container(c)})
	n.notify("StopContainer", err)
	if err == nil {
		n.applyUpdates(ctx, rpl.GetUpdate())
	}
}

// removeContainer tells the plugins container c (gone now) was removed.
func (n *nriRuntime) removeContainer(ctx context.Context, c *engine.Container) {
	if n == nil {
		return
	}
	n.stopMu.Lock()
	delete(n.stopped, c.ID)
	n.stopMu.Unlock()
	if n.off() {
		return
	}
	pod := &nri.PodSandbox{Id: c.Config.Pod}
	if p, err := n.s.eng.GetPod(ctx, c.Config.Pod); err == nil {
		pod = n.pod(p)
	}
	n.notify("RemoveContainer", n.a.RemoveContainer(context.WithoutCancel(ctx), &nri.RemoveContainerRequest{Pod: pod, Container: n.container(c)}))
}

// --- the exit watcher ---

// exitPoll is how often the watcher reads the engine's events.
const exitPoll = 200 * time.Millisecond

// lastEventSeq is the newest engine event's sequence number.
func (n *nriRuntime) lastEventSeq(ctx context.Context) int64 {
	evs, err := n.s.eng.Events(ctx, 0)
	if err != nil || len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// watchExits tells the plugins of CRI containers that exit on their own
// (no StopContainer call): it follows the engine's die events (the
// monitors record them) until ctx ends; destroy events forget removed
// containers.
func (n *nriRuntime) watchExits(ctx context.Context, seq int64) {
	t := time.NewTicker(exitPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		evs, err := n.s.eng.Events(ctx, seq)
		if err != nil {
			continue
		}
		for _, ev := range evs {
			seq = ev.Seq
			switch {
			case ev.Type != "container":
			case ev.Action == "die":
				n.stopContainer(ctx, ev.ID)
			case ev.Action == "destroy": // removed, perhaps by `hull rm`
				n.stopMu.Lock()
				delete(n.stopped, ev.ID)
				n.stopMu.Unlock()
			}
		}
	}
}

// --- updates and evictions ---

// updateContainers applies a plugin's unsolicited updates.
func (n *nriRuntime) updateContainers(ctx context.Context, updates []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) {
	return n.applyUpdates(ctx, updates)
}

// applyUpdates applies resource updates to containers; it returns those
// that failed with ignore_failure set, and fails on the first other.
func (n *nriRuntime) applyUpdates(ctx context.Context, updates []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) {
	var failed []*nri.ContainerUpdate
	for _, up := range updates {
		var u engine.UpdateOptions
		err := setUpdate(&u, up.GetLinux().GetResources())
		if err == nil {
			_, err = n.s.eng.Update(ctx, up.GetContainerId(), u)
		}
		if err != nil {
			if up.GetIgnoreFailure() {
				failed = append(failed, up)
				continue
			}
			return failed, fmt.Errorf("nri: update container %s: %w", up.GetContainerId(), err)
		}
	}
	return failed, nil
}

// evict stops the containers plugins evict.
func (n *nriRuntime) evict(ctx context.Context, evs []*nri.ContainerEviction) {
	for _, ev := range evs {
		n.log.Info("nri: evicting container", "id", ev.GetContainerId(), "reason", ev.GetReason())
		if _, err := n.s.eng.Stop(ctx, ev.GetContainerId(), 0); err != nil {
			n.log.Warn("nri: evict", "id", ev.GetContainerId(), "error", err)
			continue
		}
		n.stopContainer(ctx, ev.GetContainerId())
	}
}

// notify logs a failed notification: after the fact events (stop,
// remove, post-*) do not fail the CRI call, as in containerd.
func (n *nriRuntime) notify(event string, err error) {
	if err != nil {
		n.log.Warn("nri: "+event+" notification failed", "error", err)
	}
}

// nriError is a plugin's refusal of event on what, as the CRI's error: a
// FailedPrecondition unless the cause has a class of its own.
func nriError(event, what string, err error) error {
	msg := fmt.Sprintf("%s: NRI %s: %v", what, event, err)
	switch {
	case errdefs.IsInvalidArgument(err):
		return errdefs.ErrInvalidArgument.WithMessage(msg)
	case errdefs.IsNotImplemented(err):
		return errdefs.ErrNotImplemented.WithMessage(msg)
	}
	return errdefs.ErrFailedPrecondition.WithMessage(msg)
}

// --- engine records as NRI's ---

// podOf is the NRI pod of container c.
func (n *nriRuntime) podOf(ctx context.Context, c *engine.Container) (*nri.PodSandbox, error) {
	p, err := n.s.eng.GetPod(ctx, c.Config.Pod)
	if err != nil {
		return nil, fmt.Errorf("pod sandbox of container %s: %w", c.ID, err)
	}
	return n.pod(p), nil
}

// pod is the NRI view of a CRI pod.
func (n *nriRuntime) pod(p *engine.Pod) *nri.PodSandbox {
	m := sandboxMetadata(p)
	out := &nri.PodSandbox{
		Id: p.ID, Name: m.GetName(), Uid: m.GetUid(), Namespace: m.GetNamespace(),
		Labels: userLabels(p.Config.Labels), Annotations: p.Config.Annotations,
		Linux: &nri.LinuxPodSandbox{CgroupParent: p.Config.CgroupParent, Namespaces: n.podNamespaces(p)},
	}
	for _, ip := range n.s.eng.PodIPs(p) {
		out.Ips = append(out.Ips, ip.String())
	}
	return out
}

// podNamespaces are the namespaces pod p pins (their files under the run
// root).
func (n *nriRuntime) podNamespaces(p *engine.Pod) []*nri.LinuxNamespace {
	var out []*nri.LinuxNamespace
	for _, kind := range p.Config.Share {
		typ := map[string]string{"net": "network", "ipc": "ipc", "uts": "uts", "pid": "pid"}[kind]
		if typ == "" || kind == "pid" {
			continue // the holder's namespace is /proc/PID/ns/pid
		}
		out = append(out, &nri.LinuxNamespace{Type: typ, Path: filepath.Join(n.s.opts.RunRoot, "pods", p.ID, "ns", kind)})
	}
	return out
}

// container is the NRI view of a CRI container (or of one about to be
// made: State created, no times).
func (n *nriRuntime) container(c *engine.Container) *nri.Container {
	o := c.Config.Spec
	out := &nri.Container{
		Id: c.ID, PodSandboxId: c.Config.Pod, Name: c.Config.Labels[labelName],
		State:  nriState(c),
		Labels: userLabels(c.Config.Labels), Annotations: c.Config.Annotations,
		Args: append(slices.Clone(o.Entrypoint), o.Cmd...), Env: slices.Clone(o.Env),
		Pid:       uint32(max(c.Pid, 0)),
		CreatedAt: nanos(c.Created), StartedAt: nanos(c.Started), FinishedAt: nanos(c.Finished),
		ExitCode: int32(c.ExitCode),
		Image:    &nri.Image{Name: c.Config.Image, ConfigDigest: c.ImageID, Digest: c.ImageDigest},
	}
	if out.State == nri.ContainerState_CONTAINER_STOPPED {
		out.StatusReason = containerReason(c)
		out.StatusMessage = c.Error
	}
	for _, m := range o.Mounts {
		opts := slices.Clone(m.Options)
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		typ := m.Type
		if typ == "volume" {
			typ = "bind"
		}
		out.Mounts = append(out.Mounts, &nri.Mount{Destination: m.Destination, Type: typ, Source: m.Source, Options: opts})
	}
	cg := o.CgroupsPath
	if cg == "" {
		cg = path.Join("/", o.CgroupParent, cgroups.EnginePath(c.ID))
	}
	out.Linux = &nri.LinuxContainer{CgroupsPath: cg, Resources: specResources(&c.Config.Spec), Namespaces: containerNamespaces(c)}
	if o.OomScoreAdj != nil {
		out.Linux.OomScoreAdj = nri.Int(*o.OomScoreAdj)
	}
	for _, d := range o.Devices {
		out.Linux.Devices = append(out.Linux.Devices, &nri.LinuxDevice{Path: d.PathInContainer})
	}
	for _, u := range o.Ulimits {
		out.Rlimits = append(out.Rlimits, &nri.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	return out
}

// containerNamespaces are the namespaces container c joins (the pod's
// pinned ones: "ns:PATH" modes) and, while it runs, its own.
func containerNamespaces(c *engine.Container) []*nri.LinuxNamespace {
	o := c.Config.Spec
	var out []*nri.LinuxNamespace
	own := []string{"mnt"}
	for _, m := range []struct{ typ, kind, mode string }{
		{"network", "net", o.Network}, {"ipc", "ipc", o.IpcMode}, {"pid", "pid", o.PidMode}, {"uts", "uts", o.UTSMode},
	} {
		if p, ok := strings.CutPrefix(m.mode, "ns:"); ok {
			out = append(out, &nri.LinuxNamespace{Type: m.typ, Path: p})
		} else if m.mode != "host" {
			own = append(own, m.kind)
		}
	}
	if c.Pid > 0 && c.State == engine.StateRunning {
		for _, kind := range own {
			typ := map[string]string{"mnt": "mount", "net": "network"}[kind]
			if typ == "" {
				typ = kind
			}
			out = append(out, &nri.LinuxNamespace{Type: typ, Path: fmt.Sprintf("/proc/%d/ns/%s", c.Pid, kind)})
		}
	}
	return out
}

func nriState(c *engine.Container) nri.ContainerState {
	switch containerState(c) {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return nri.ContainerState_CONTAINER_CREATED
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		if c.State == engine.StatePaused {
			return nri.ContainerState_CONTAINER_PAUSED
		}
		return nri.ContainerState_CONTAINER_RUNNING
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return nri.ContainerState_CONTAINER_STOPPED
	}
	return nri.ContainerState_CONTAINER_UNKNOWN
}

// containerReason is the CRI's reason for an exited container.
func containerReason(c *engine.Container) string {
	switch {
	case c.OOMKilled:
		return "OOMKilled"
	case c.ExitCode == 0:
		return "Completed"
	}
	return "Error"
}
