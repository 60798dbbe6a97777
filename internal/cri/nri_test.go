package cri

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
	"hull/internal/spec"
)

// testPlugin is an NRI plugin (nri's stub) that records the events it
// gets as "Event name" (the pod's or container's CRI name) and adjusts
// containers: env NRI_TEST=adjusted and an annotation on every one; a
// container named "refused" fails its CreateContainer, one named
// "hooked" asks for an OCI hook (which hull cannot honour).
type testPlugin struct {
	mu     sync.Mutex
	events []string
	synced []string // Synchronize: pod and container names
	ready  chan struct{}
	once   sync.Once
	// seen are the objects of the events, by "Event name".
	seen map[string]*api.Container
	pods map[string]*api.PodSandbox
}

func (p *testPlugin) record(ev string) {
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.mu.Unlock()
}

func (p *testPlugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	for _, x := range pods {
		p.synced = append(p.synced, "pod "+x.GetName())
	}
	for _, c := range ctrs {
		p.synced = append(p.synced, "container "+c.GetName())
	}
	p.mu.Unlock()
	p.once.Do(func() { close(p.ready) })
	return nil, nil
}

func (p *testPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox " + pod.GetName())
	return nil
}

func (p *testPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox " + pod.GetName())
	return nil
}

func (p *testPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox " + pod.GetName())
	return nil
}

// see keeps what event ev carried.
func (p *testPlugin) see(ev string, pod *api.PodSandbox, c *api.Container) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen, p.pods = map[string]*api.Container{}, map[string]*api.PodSandbox{}
	}
	p.seen[ev], p.pods[ev] = c, pod
}

func (p *testPlugin) CreateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer " + c.GetName())
	p.see("CreateContainer "+c.GetName(), pod, c)
	switch c.GetName() {
	case "refused":
		return nil, nil, errors.New("refused by the test plugin")
	case "hooked":
		adj := &api.ContainerAdjustment{}
		adj.AddHooks(&api.Hooks{Prestart: []*api.Hook{{Path: "/bin/true"}}})
		return adj, nil, nil
	}
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("NRI_TEST", "adjusted")
	adj.AddAnnotation("nri.test/adjusted", "yes")
	return adj, nil, nil
}

func (p *testPlugin) StartContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer " + c.GetName())
	p.see("StartContainer "+c.GetName(), pod, c)
	return nil
}

// UpdateContainer sets CPU shares 512 on top of what the update asks.
func (p *testPlugin) UpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.record("UpdateContainer " + c.GetName())
	u := &api.ContainerUpdate{}
	u.SetContainerId(c.GetId())
	u.SetLinuxCPUShares(512)
	return []*api.ContainerUpdate{u}, nil
}

func (p *testPlugin) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer " + c.GetName())
	return nil, nil
}

func (p *testPlugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer " + c.GetName())
	return nil
}

// Events returns the events so far.
func (p *testPlugin) Events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// waitEvent waits until the plugin has recorded ev.
func (p *testPlugin) waitEvent(t *testing.T, ev string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(p.Events(), ev) {
		if time.Now().After(deadline) {
			t.Fatalf("no NRI event %q; got %q", ev, p.Events())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectPlugin connects a test plugin to the NRI socket and waits until
// it is synchronized; the cleanup disconnects it.
func connectPlugin(t *testing.T, sock, name, idx string) *testPlugin {
	t.Helper()
	p := &testPlugin{ready: make(chan struct{})}
	s, err := stub.New(p, stub.WithPluginName(name), stub.WithPluginIdx(idx), stub.WithSocketPath(sock))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-p.ready:
	case err := <-done:
		t.Fatalf("NRI plugin %s: %v", name, err)
	case <-time.After(15 * time.Second):
		t.Fatalf("NRI plugin %s was not synchronized in 15s", name)
	}
	return p
}

// NRI: a plugin sees every pod and container event in order, its
// adjustment reaches the container, its error fails the call and leaves
// nothing behind, a container that exits on its own is reported stopped,
// and a plugin that connects late is handed what exists.
func TestNRI(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "nri.sock")
	c, f := serveRuntimeWith(t, Options{NRI: &NRIOptions{Socket: sock, PluginPath: filepath.Join(dir, "plugins"), PluginConfigPath: filepath.Join(dir, "conf.d")}})
	ctx := ctxT(t)
	p := connectPlugin(t, sock, "hull-test", "10")

	pod := sandboxConfig(t, "nri")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "app", nil, "sleep", "600")
	st := containerStatus(t, c, id)
	if st.Annotations["nri.test/adjusted"] != "yes" {
		t.Errorf("annotations %v: want the plugin's nri.test/adjusted", st.Annotations)
	}
	startContainer(t, c, id)
	x, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo $NRI_TEST"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(x.Stdout)); got != "adjusted" {
		t.Errorf("NRI_TEST in the container = %q; want the plugin's adjustment %q", got, "adjusted")
	}

	// An update goes through the plugin, which adds CPU shares.
	if _, err := c.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20}}); err != nil {
		t.Fatal(err)
	}
	if r := containerStatus(t, c, id).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 128<<20 || r.GetCpuShares() != 512 {
		t.Errorf("resources after the update: memory %d, CPU shares %d; want 128 MiB and the plugin's 512", r.GetMemoryLimitInBytes(), r.GetCpuShares())
	}

	// What the plugin was told: the ID the container got (chosen ahead),
	// the pod's metadata, labels and address, the pinned namespaces and
	// the cgroup.
	p.mu.Lock()
	created, started, spod := p.seen["CreateContainer app"], p.seen["StartContainer app"], p.pods["StartContainer app"]
	p.mu.Unlock()
	if created.GetId() != id || started.GetId() != id || started.GetPodSandboxId() != podID {
		t.Errorf("container IDs told: create %s, start %s (pod %s); want %s in %s", created.GetId(), started.GetId(), started.GetPodSandboxId(), id, podID)
	}
	if spod.GetUid() != "uid-nri" || spod.GetNamespace() != "default" || spod.GetLabels()["app"] != "nri" || len(spod.GetIps()) == 0 {
		t.Errorf("pod told: %v", spod)
	}
	var nets []string
	for _, ns := range started.GetLinux().GetNamespaces() {
		if ns.GetType() == "network" {
			nets = append(nets, ns.GetPath())
		}
	}
	if len(nets) != 1 || !strings.HasSuffix(nets[0], filepath.Join("pods", podID, "ns", "net")) {
		t.Errorf("network namespaces told: %q; want the pod's pinned one", nets)
	}
	if cg := started.GetLinux().GetCgroupsPath(); !strings.Contains(cg, id) {
		t.Errorf("cgroups path told: %q; want the container's", cg)
	}

	// Refused by the plugin: the call fails, no container is left.
	cc := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "refused"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}}
	if _, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod}); err == nil || !strings.Contains(err.Error(), "refused by the test plugin") {
		t.Errorf("CreateContainer refused by the plugin: %v; want its error", err)
	}
	// An adjustment hull cannot honour: refused, saying what.
	cc.Metadata.Name = "hooked"
	if _, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod}); err == nil || !strings.Contains(err.Error(), "OCI hooks") {
		t.Errorf("CreateContainer with an OCI hook adjustment: %v; want refused naming OCI hooks", err)
	}
	l, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Containers) != 1 || l.Containers[0].Id != id {
		t.Errorf("containers after the refused creates: %v; want only %s", l.Containers, id)
	}

	// One that exits on its own is reported stopped without a CRI call.
	quick := createContainer(t, c, f, podID, pod, "quick", nil, "sh", "-c", "exit 3")
	startContainer(t, c, quick)
	p.waitEvent(t, "StopContainer quick")

	// A late plugin gets the pod and both containers.
	late := connectPlugin(t, sock, "hull-late", "20")
	late.mu.Lock()
	synced := slices.Clone(late.synced)
	late.mu.Unlock()
	slices.Sort(synced)
	if want := []string{"container app", "container quick", "pod nri"}; !slices.Equal(synced, want) {
		t.Errorf("late plugin synchronized with %q; want %q", synced, want)
	}

	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second StopPodSandbox sends nothing
		if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"RunPodSandbox nri",
		"CreateContainer app", "StartContainer app", "UpdateContainer app",
		"CreateContainer refused", "CreateContainer hooked", "StopContainer hooked", "RemoveContainer hooked",
		"CreateContainer quick", "StartContainer quick", "StopContainer quick",
		"StopContainer app", "RemoveContainer app",
		"StopPodSandbox nri", "RemoveContainer quick", "RemovePodSandbox nri",
	}
	if got := p.Events(); !slices.Equal(got, want) {
		t.Errorf("NRI events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := late.Events(), []string{"StopContainer app", "RemoveContainer app", "StopPodSandbox nri", "RemoveContainer quick", "RemovePodSandbox nri"}; !slices.Equal(got, want) {
		t.Errorf("late plugin's events: %q; want %q", got, want)
	}
}

// A plugin that fails RunPodSandbox fails the call; the pod is not left.
type failingRunPlugin struct{ testPlugin }

func (p *failingRunPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox " + pod.GetName())
	return fmt.Errorf("no pods today")
}

func TestNRIRunPodSandboxRefused(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "nri.sock")
	c, _ := serveRuntimeWith(t, Options{NRI: &NRIOptions{Socket: sock, PluginPath: filepath.Join(dir, "plugins")}})
	ctx := ctxT(t)
	p := &failingRunPlugin{testPlugin{ready: make(chan struct{})}}
	s, err := stub.New(p, stub.WithPluginName("failing"), stub.WithPluginIdx("10"), stub.WithSocketPath(sock))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() { cancel(); <-done }()
	<-p.ready

	_, err = c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig(t, "refused")})
	if err == nil || !strings.Contains(err.Error(), "no pods today") {
		t.Fatalf("RunPodSandbox refused by a plugin: %v; want its error", err)
	}
	l, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pods, _ := c.eng.ListPods(ctx)
	if len(l.Items) != 0 || len(pods) != 0 {
		t.Errorf("after a refused RunPodSandbox: %d sandboxes, %d engine pods; want none", len(l.Items), len(pods))
	}
	if got := p.Events(); !slices.Equal(got, []string{"RunPodSandbox refused", "RemovePodSandbox refused"}) {
		t.Errorf("events %q", got)
	}
}

// applyAdjustment maps what hull can express onto the create options and
// refuses the rest, naming it.
func TestApplyAdjustment(t *testing.T) {
	o := engine.CreateOptions{Config: engine.Config{Annotations: map[string]string{"gone": "1", "kept": "1"}}}
	o.Config.Spec.Env = []string{"A=1", "B=2"}
	o.Config.Spec.Mounts = []spec.Mount{{Type: "bind", Source: "/old", Destination: "/data"}}
	adj := &api.ContainerAdjustment{}
	adj.AddAnnotation("new", "2")
	adj.RemoveAnnotation("gone")
	adj.RemoveEnv("A")
	adj.AddEnv("B", "3")
	adj.RemoveMount("/data")
	adj.AddMount(&api.Mount{Destination: "/cache", Type: "bind", Source: "/var/cache", Options: []string{"rbind", "ro", "rslave"}})
	adj.AddMount(&api.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}})
	adj.AddRlimit("RLIMIT_NOFILE", 2048, 1024)
	adj.SetLinuxMemoryLimit(64 << 20)
	adj.SetLinuxCPUShares(512)
	adj.SetLinuxCPUSetCPUs("0")
	adj.SetLinuxPidLimits(100)
	adj.SetLinuxSysctl("net.ipv4.ip_forward", "1")
	adj.AddDevice(&api.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229})
	adj.SetArgs([]string{"sleep", "1"})
	if err := applyAdjustment(adj, &o); err != nil {
		t.Fatal(err)
	}
	so := o.Config.Spec
	if want := map[string]string{"kept": "1", "new": "2"}; !maps.Equal(o.Config.Annotations, want) {
		t.Errorf("annotations %v; want %v", o.Config.Annotations, want)
	}
	if want := []string{"B=3"}; !slices.Equal(so.Env, want) {
		t.Errorf("env %q; want %q", so.Env, want)
	}
	if len(so.Mounts) != 1 || so.Mounts[0].Destination != "/cache" || !so.Mounts[0].ReadOnly || !slices.Equal(so.Mounts[0].Options, []string{"rslave"}) {
		t.Errorf("mounts %+v; want /data gone, /cache a read-only rslave bind", so.Mounts)
	}
	if so.Tmpfs["/scratch"] != "size=1m" {
		t.Errorf("tmpfs %v", so.Tmpfs)
	}
	if len(so.Ulimits) != 1 || so.Ulimits[0] != (spec.Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}) {
		t.Errorf("ulimits %+v", so.Ulimits)
	}
	if so.Memory != 64<<20 || so.CPUShares != 512 || so.CpusetCpus != "0" || so.PidsLimit != 100 || so.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Errorf("resources: memory %d shares %d cpus %q pids %d sysctls %v", so.Memory, so.CPUShares, so.CpusetCpus, so.PidsLimit, so.Sysctls)
	}
	if len(so.Devices) != 1 || so.Devices[0].PathOnHost != "/dev/fuse" {
		t.Errorf("devices %+v", so.Devices)
	}
	if !so.EntrypointSet || !slices.Equal(so.Entrypoint, []string{"sleep", "1"}) || so.Cmd != nil {
		t.Errorf("args: entrypoint %q cmd %q", so.Entrypoint, so.Cmd)
	}

	for name, mod := range map[string]func(*api.ContainerAdjustment){
		"hugepage limits":      func(a *api.ContainerAdjustment) { a.AddLinuxHugepageLimit("2MB", 1<<21) },
		"a block I/O class":    func(a *api.ContainerAdjustment) { a.SetLinuxBlockIOClass("slow") },
		"unified cgroup v2":    func(a *api.ContainerAdjustment) { a.AddLinuxUnified("memory.high", "1") },
		"CDI devices":          func(a *api.ContainerAdjustment) { a.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"}) },
		"a scheduling policy":  func(a *api.ContainerAdjustment) { a.SetLinuxScheduler(&api.LinuxScheduler{Nice: 5}) },
		"namespaces":           func(a *api.ContainerAdjustment) { a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "network"}) },
		"kernel memory limits": func(a *api.ContainerAdjustment) { a.SetLinuxMemoryKernel(1) },
		"a seccomp policy": func(a *api.ContainerAdjustment) {
			a.SetLinuxSeccompPolicy(&api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALLOW"})
		},
	} {
		a := &api.ContainerAdjustment{}
		mod(a)
		if err := applyAdjustment(a, &engine.CreateOptions{}); err == nil || !strings.Contains(err.Error(), name) || !errdefs.IsNotImplemented(err) {
			t.Errorf("adjustment with %s: %v; want NotImplemented naming it", name, err)
		}
	}
}
