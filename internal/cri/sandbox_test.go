package cri

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/config"
	"hull/internal/testenv"
)

// serveRuntime serves the CRI over an engine that runs containers: hull
// monitors ($HULL_BIN), hull-init and hull-shim beside it, and the test
// root's own default network. The busybox fixture is pulled.
func serveRuntime(t testing.TB) (*client, *testenv.Fixtures) { return serveRuntimeWith(t, Options{}) }

// serveRuntimeWith is serveRuntime with server options o.
func serveRuntimeWith(t testing.TB, o Options) (*client, *testenv.Fixtures) {
	t.Helper()
	hull := os.Getenv("HULL_BIN")
	if os.Geteuid() != 0 || hull == "" {
		t.Skip("needs root and HULL_BIN (make build; see the Makefile's test target)")
	}
	_, f := testenv.Setup(t, testenv.FixBusybox)
	root := t.TempDir()
	testenv.ReleaseRoot(t, root) // after the server's cleanups, should they fail
	cfgPath := testenv.NetworkConfig(t, root)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Root, cfg.RunRoot = root, filepath.Join(root, "run")
	eng, err := openEngine(cfg, hull, cfgPath, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	c := serveOn(t, eng, o, cfg)
	t.Cleanup(func() {
		// What a failed test left, before the engine closes.
		ctx := context.Background()
		pods, _ := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		for _, p := range pods.GetItems() {
			c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
		}
	})
	if _, err := c.img.PullImage(ctxT(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}}); err != nil {
		t.Fatal(err)
	}
	return c, f
}

// sandboxConfig is a pod named name as kubelet would send it.
func sandboxConfig(t testing.TB, name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: "uid-" + name, Namespace: "default", Attempt: 1},
		Hostname:     name,
		LogDirectory: filepath.Join(t.TempDir(), "logs"),
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.200.0.53"}, Searches: []string{"svc.cluster.local"}, Options: []string{"ndots:5"}},
		Labels:       map[string]string{"app": name, "io.kubernetes.pod.name": name},
		Annotations:  map[string]string{"note": "a " + name},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

func runSandbox(t testing.TB, c *client, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	r, err := c.rt.RunPodSandbox(ctxT(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", cfg.Metadata.Name, err)
	}
	return r.PodSandboxId
}

func TestPodSandboxLifecycle(t *testing.T) {
	c, _ := serveRuntime(t)
	ctx := ctxT(t)
	cfg := sandboxConfig(t, "web")
	id := runSandbox(t, c, cfg)

	st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	s := st.Status
	if s.Id != id || s.State != runtimeapi.PodSandboxState_SANDBOX_READY || s.CreatedAt == 0 {
		t.Errorf("status = %v; want ready, with its creation time", s)
	}
	if s.Metadata.Name != "web" || s.Metadata.Uid != "uid-web" || s.Metadata.Namespace != "default" || s.Metadata.Attempt != 1 {
		t.Errorf("metadata = %v", s.Metadata)
	}
	if len(s.Labels) != 2 || s.Labels["app"] != "web" || s.Annotations["note"] != "a web" {
		t.Errorf("labels %v annotations %v; want the config's, no reserved ones", s.Labels, s.Annotations)
	}
	if ip, err := netip.ParseAddr(s.GetNetwork().GetIp()); err != nil || !ip.Is4() {
		t.Errorf("network ip %q: want the pod's address on the default network", s.GetNetwork().GetIp())
	}
	if o := s.GetLinux().GetNamespaces().GetOptions(); o.Network != runtimeapi.NamespaceMode_POD || o.Pid != runtimeapi.NamespaceMode_CONTAINER || o.Ipc != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespace options = %v", o)
	}
	if !strings.Contains(st.Info["info"], `"LogDirectory"`) {
		t.Errorf("verbose info = %q; want the pod record", st.Info["info"])
	}

	// A host-network pod: no address of its own.
	host := sandboxConfig(t, "hostnet")
	host.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	hostID := runSandbox(t, c, host)
	hs, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: hostID})
	if err != nil {
		t.Fatal(err)
	}
	if hs.Status.GetNetwork().GetIp() != "" || hs.Status.Linux.Namespaces.Options.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host-network pod status = %v; want no IP, network NODE", hs.Status)
	}

	list := func(f *runtimeapi.PodSandboxFilter) []string {
		t.Helper()
		r, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range r.Items {
			ids = append(ids, p.Id)
		}
		return ids
	}
	if got := list(nil); len(got) != 2 {
		t.Errorf("ListPodSandbox = %v; want both pods", got)
	}
	if got := list(&runtimeapi.PodSandboxFilter{Id: id[:12]}); len(got) != 1 || got[0] != id {
		t.Errorf("ListPodSandbox(id prefix) = %v; want %s", got, id)
	}
	if got := list(&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "hostnet"}}); len(got) != 1 || got[0] != hostID {
		t.Errorf("ListPodSandbox(app=hostnet) = %v; want %s", got, hostID)
	}

	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	notReady := &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}
	if got := list(notReady); len(got) != 1 || got[0] != id {
		t.Errorf("ListPodSandbox(NOTREADY) = %v; want the stopped %s", got, id)
	}
	st, err = c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.GetNetwork().GetIp() != "" {
		t.Errorf("stopped pod status = %v, %v; want NOTREADY without an IP", st, err)
	}

	// Stop and Remove are idempotent, also for IDs never seen.
	for _, pid := range []string{id, id, strings.Repeat("ab", 32)} {
		if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pid}); err != nil {
			t.Errorf("StopPodSandbox(%s): %v", pid, err)
		}
		if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pid}); err != nil {
			t.Errorf("RemovePodSandbox(%s): %v", pid, err)
		}
	}
	if _, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed pod: %v; want NotFound", err)
	}
	if got := list(nil); len(got) != 1 || got[0] != hostID {
		t.Errorf("ListPodSandbox after the removal = %v; want only %s", got, hostID)
	}

	// Status reports the network ready.
	rs, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range rs.Status.Conditions {
		if cd.Type == runtimeapi.NetworkReady && !cd.Status {
			t.Errorf("NetworkReady = %v; want true", cd)
		}
	}
}

// createContainer creates a busybox container running args in pod id.
func createContainer(t testing.TB, c *client, f *testenv.Fixtures, podID string, pod *runtimeapi.PodSandboxConfig, name string, mod func(*runtimeapi.ContainerConfig), args ...string) string {
	t.Helper()
	cc := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: 0},
		Image:    &runtimeapi.ImageSpec{Image: f.Busybox.Ref},
		Command:  args,
		LogPath:  name + "/0.log",
		Labels:   map[string]string{"io.kubernetes.container.name": name},
	}
	if mod != nil {
		mod(cc)
	}
	r, err := c.rt.CreateContainer(ctxT(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	return r.ContainerId
}

func startContainer(t testing.TB, c *client, id string) {
	t.Helper()
	if _, err := c.rt.StartContainer(ctxT(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
}

func containerStatus(t *testing.T, c *client, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	r, err := c.rt.ContainerStatus(ctxT(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	return r.Status
}

// waitExited waits until container id has exited and returns its status.
func waitExited(t *testing.T, c *client, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := containerStatus(t, c, id)
		if s.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is still %v", id, s.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestContainerLifecycle(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "app")
	podID := runSandbox(t, c, pod)

	id := createContainer(t, c, f, podID, pod, "hello", func(cc *runtimeapi.ContainerConfig) {
		cc.Envs = []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hello")}}
		cc.Annotations = map[string]string{"a": "b"}
		cc.WorkingDir = "/tmp"
	}, "sh", "-c", `echo "$GREETING from $(pwd) on $(hostname)"; grep -c ndots /etc/resolv.conf`)
	s := containerStatus(t, c, id)
	if s.State != runtimeapi.ContainerState_CONTAINER_CREATED || s.CreatedAt == 0 || s.Metadata.Name != "hello" {
		t.Errorf("created status = %v", s)
	}
	if s.ImageId != f.Busybox.ConfigDigest || s.ImageRef != f.Busybox.ByDigest() || s.Image.Image != f.Busybox.Ref {
		t.Errorf("image %v, image_ref %s, image_id %s; want %s, %s, %s", s.Image, s.ImageRef, s.ImageId, f.Busybox.Ref, f.Busybox.ByDigest(), f.Busybox.ConfigDigest)
	}
	if len(s.Labels) != 1 || s.Annotations["a"] != "b" || s.LogPath != filepath.Join(pod.LogDirectory, "hello/0.log") {
		t.Errorf("labels %v annotations %v log path %s", s.Labels, s.Annotations, s.LogPath)
	}
	startContainer(t, c, id)
	s = waitExited(t, c, id)
	if s.ExitCode != 0 || s.Reason != "Completed" || s.StartedAt == 0 || s.FinishedAt < s.StartedAt {
		t.Errorf("exited status = %v; want 0, Completed, its times", s)
	}
	log, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), " stdout F hello from /tmp on app\n") || !strings.Contains(string(log), " stdout F 1\n") {
		t.Errorf("log %s = %q; want the CRI-format lines, the pod's host name and DNS options", s.LogPath, log)
	}

	failing := createContainer(t, c, f, podID, pod, "failing", nil, "sh", "-c", "exit 3")
	startContainer(t, c, failing)
	if s := waitExited(t, c, failing); s.ExitCode != 3 || s.Reason != "Error" {
		t.Errorf("failing container status = %v; want 3, Error", s)
	}

	// A long-running one: exec, update, stop.
	sleeper := createContainer(t, c, f, podID, pod, "sleeper", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 64 << 20}}
	}, "sleep", "600")
	startContainer(t, c, sleeper)
	if s := containerStatus(t, c, sleeper); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING || s.Resources.Linux.MemoryLimitInBytes != 64<<20 || s.Resources.Linux.CpuShares != 512 {
		t.Errorf("running status = %v", s)
	}
	ex, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sleeper, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, Timeout: 10})
	if err != nil || string(ex.Stdout) != "out\n" || string(ex.Stderr) != "err\n" || ex.ExitCode != 7 {
		t.Errorf("ExecSync = %v, %v; want out, err, 7", ex, err)
	}
	if _, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sleeper, Cmd: []string{"sleep", "30"}, Timeout: 1}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("ExecSync past its timeout: %v; want DeadlineExceeded", err)
	}
	if _, err := c.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: sleeper, Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20}}); err != nil {
		t.Fatal(err)
	}
	if s := containerStatus(t, c, sleeper); s.Resources.Linux.MemoryLimitInBytes != 128<<20 {
		t.Errorf("memory limit after the update = %d; want %d", s.Resources.Linux.MemoryLimitInBytes, 128<<20)
	}

	cs, err := c.rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: sleeper})
	if err != nil || cs.Stats.Attributes.Id != sleeper || cs.Stats.Attributes.Metadata.Name != "sleeper" || cs.Stats.Cpu.Timestamp == 0 || cs.Stats.Memory.WorkingSetBytes.GetValue() == 0 {
		t.Errorf("ContainerStats = %v, %v; want its CPU and memory use", cs, err)
	}
	ls, err := c.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"io.kubernetes.container.name": "sleeper"}}})
	if err != nil || len(ls.Stats) != 1 || ls.Stats[0].Attributes.Id != sleeper {
		t.Errorf("ListContainerStats(sleeper's label) = %v, %v", ls, err)
	}

	list := func(f *runtimeapi.ContainerFilter) int {
		t.Helper()
		r, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Containers)
	}
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	if n := list(nil); n != 3 {
		t.Errorf("ListContainers = %d; want 3", n)
	}
	if n := list(&runtimeapi.ContainerFilter{State: running}); n != 1 {
		t.Errorf("ListContainers(running) = %d; want 1", n)
	}
	if n := list(&runtimeapi.ContainerFilter{PodSandboxId: podID[:12], LabelSelector: map[string]string{"io.kubernetes.container.name": "failing"}}); n != 1 {
		t.Errorf("ListContainers(pod, label) = %d; want 1", n)
	}
	if n := list(&runtimeapi.ContainerFilter{Id: sleeper}); n != 1 {
		t.Errorf("ListContainers(id) = %d; want 1", n)
	}
	// The Stream* RPCs answer the same lists.
	if cs, err := c.rt.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{Filter: &runtimeapi.ContainerFilter{State: running}}); err != nil {
		t.Error(err)
	} else if r, err := cs.Recv(); err != nil || len(r.Containers) != 1 || r.Containers[0].Id != sleeper {
		t.Errorf("StreamContainers(running) = %v, %v; want %s", r, err, sleeper)
	}
	if ps, err := c.rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{}); err != nil {
		t.Error(err)
	} else if r, err := ps.Recv(); err != nil || len(r.PodSandboxes) != 1 || r.PodSandboxes[0].Id != podID {
		t.Errorf("StreamPodSandboxes = %v, %v; want %s", r, err, podID)
	}

	start := time.Now()
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("StopContainer with timeout 1 took %v", d)
	}
	if s := containerStatus(t, c, sleeper); s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("stopped container is %v", s.State)
	}
	for range 2 { // idempotent
		if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper}); err != nil {
			t.Errorf("StopContainer again: %v", err)
		}
		if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: sleeper}); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
	}
	if _, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: sleeper}); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed container: %v; want NotFound", err)
	}
	if n := list(nil); n != 2 {
		t.Errorf("ListContainers after a removal = %d; want 2", n)
	}
	// Removing the pod removes its containers.
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if n := list(nil); n != 0 {
		t.Errorf("ListContainers after RemovePodSandbox = %d; want 0", n)
	}
}

func TestContainerSecurityContext(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "sec")
	podID := runSandbox(t, c, pod)

	run := func(name string, sc *runtimeapi.LinuxContainerSecurityContext, script string) string {
		t.Helper()
		id := createContainer(t, c, f, podID, pod, name, func(cc *runtimeapi.ContainerConfig) {
			cc.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sc}
		}, "sh", "-c", script)
		startContainer(t, c, id)
		s := waitExited(t, c, id)
		out, _ := os.ReadFile(s.LogPath)
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if _, text, ok := strings.Cut(l, " stdout F "); ok {
				lines = append(lines, text)
			}
		}
		return strings.Join(lines, "|")
	}
	if got := run("user", &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 1001}, SupplementalGroups: []int64{2000},
	}, "id -u; id -g; id -G"); got != "1000|1001|1001 2000" {
		t.Errorf("run_as_user 1000, run_as_group 1001, groups 2000: %q", got)
	}
	// ContainerStatus reports the identity the process got, every group
	// with the primary one (kubelet's SupplementalGroupsPolicy view).
	list, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	if err != nil || len(list.Containers) != 1 {
		t.Fatalf("ListContainers: %v, %v", list, err)
	}
	st, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: list.Containers[0].Id})
	if u := st.GetStatus().GetUser().GetLinux(); err != nil || u.GetUid() != 1000 || u.GetGid() != 1001 || !slices.Equal(u.GetSupplementalGroups(), []int64{1001, 2000}) {
		t.Errorf("ContainerStatus user = %v, %v; want uid 1000, gid 1001, groups 1001 2000", u, err)
	}
	userID := list.Containers[0].Id
	defer func() { // removing the sandbox drops the identity ContainerStatus cached
		if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
		if _, ok := c.srv.users.Load(userID); ok {
			t.Errorf("container %s's cached user outlived its sandbox", userID)
		}
	}()
	if got := run("caps", &runtimeapi.LinuxContainerSecurityContext{
		Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"CHOWN"}},
	}, "chown 1 /tmp && echo chowned || echo refused"); got != "refused" {
		t.Errorf("with CHOWN dropped: %q", got)
	}
	if got := run("rofs", &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true, NoNewPrivs: true},
		"touch /x 2>/dev/null && echo wrote || echo readonly; grep NoNewPrivs /proc/self/status | tr -d '\\t '"); got != "readonly|NoNewPrivs:1" {
		t.Errorf("readonly rootfs, no_new_privs: %q", got)
	}
	if got := run("masked", &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/etc/hostname"}, ReadonlyPaths: []string{"/tmp"}},
		"wc -c </etc/hostname; touch /tmp/x 2>/dev/null && echo wrote || echo readonly"); got != "0|readonly" {
		t.Errorf("masked /etc/hostname, read-only /tmp: %q", got)
	}
	// The CRI's default is no seccomp profile (as containerd's);
	// RuntimeDefault is hull's profile.
	if got := run("seccomp", &runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}, "grep Seccomp: /proc/self/status | tr -d '\\t '"); got != "Seccomp:2" {
		t.Errorf("RuntimeDefault seccomp: %q", got)
	}
	if got := run("unconfined", nil, "grep Seccomp: /proc/self/status | tr -d '\\t '"); got != "Seccomp:0" {
		t.Errorf("no seccomp profile asked: %q", got)
	}

	_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: pod, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "group-only"},
		Image:    &runtimeapi.ImageSpec{Image: f.Busybox.Ref},
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 5}}},
	}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("run_as_group without a user: %v; want InvalidArgument", err)
	}
}

// A pod that shares its PID namespace: its containers see each other's
// processes, the holder as PID 1, and a stop's SIGTERM reaches a shell
// that is not PID 1.
func TestSharedPIDNamespace(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "pidpod")
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runSandbox(t, c, pod)
	a := createContainer(t, c, f, podID, pod, "a", nil, "sleep", "600")
	b := createContainer(t, c, f, podID, pod, "b", nil, "sh", "-c", "top")
	startContainer(t, c, a)
	startContainer(t, c, b)
	ex, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: b, Cmd: []string{"sh", "-c", "cat /proc/1/comm; cat /proc/[0-9]*/comm | grep -c sleep"}, Timeout: 10})
	if err != nil || string(ex.Stdout) != "hull-init\n1\n" {
		t.Errorf("processes seen from b = %q, %v; want the holder as PID 1 and a's sleep", ex.GetStdout(), err)
	}
	st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil || st.Status.Linux.Namespaces.Options.Pid != runtimeapi.NamespaceMode_POD {
		t.Errorf("status = %v, %v; want pid POD", st, err)
	}
	start := time.Now()
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: b, Timeout: 30}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopping sh -c top took %v: SIGTERM did not end it", d)
	}
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if s := containerStatus(t, c, a); s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("a after StopPodSandbox: %v", s.State)
	}
}

// kubelet rotates a CRI log itself: it renames the file and asks for a
// reopen; the output goes on in a new file at the path, none in the old.
func TestReopenContainerLog(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "logs")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "talker", nil, "sh", "-c", "while true; do echo tick; sleep 0.2; done")
	startContainer(t, c, id)
	path := containerStatus(t, c, id).LogPath
	lines := func(p string) int {
		data, _ := os.ReadFile(p)
		return strings.Count(string(data), " stdout F tick\n")
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("the first lines", func() bool { return lines(path) > 0 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no new log file after the reopen: %v", err)
	}
	waitFor("lines in the new file", func() bool { return lines(path) > 0 })
	old := lines(path + ".1")
	time.Sleep(1500 * time.Millisecond)
	if n := lines(path + ".1"); n != old {
		t.Errorf("the renamed log grew from %d to %d lines after the reopen", old, n)
	}
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("reopen of a stopped container's log: %v; want FailedPrecondition", err)
	}
}

// RemoveContainer answers before the removal is claimed (intents.go):
// from its answer on, the container is gone for every call (status,
// lists, a second removal succeeds), its name may be taken again at once
// (the create waits for the claim that frees it), the intents file names
// it until the removal has ended, and the removal ends.
func TestRemoveContainerAnswersBeforeItsClaim(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "intents")
	podID := runSandbox(t, c, pod)
	for i := range 5 {
		id := createContainer(t, c, f, podID, pod, "again", nil, "sleep", "60")
		startContainer(t, c, id)
		if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if ids, err := readIntents(c.root); err != nil || !slices.Contains(ids, id) && c.srv.eng.RemovalPending(id) {
				t.Errorf("intents file = %v, %v while the removal of %s is under way; want it named", ids, err, id)
			}
		}
		if _, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); status.Code(err) != codes.NotFound {
			t.Fatalf("ContainerStatus right after RemoveContainer: %v; want NotFound", err)
		}
		l, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil || len(l.Containers) != 0 {
			t.Fatalf("ListContainers right after RemoveContainer = %v, %v; want none", l.GetContainers(), err)
		}
		if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("a second RemoveContainer: %v", err)
		}
		// The next one takes the same name (metadata name and attempt) at once.
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := c.eng.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := readIntents(c.root)
		if len(cs) == 0 && len(ids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removals did not end: %d records left, intents %v", len(cs), ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
