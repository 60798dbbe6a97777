package cri

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
	"hull/internal/spec"
	"hull/internal/testenv"
)

// memoryCounter counts on its stdout from a value it keeps in memory
// only, after writing /state.
const memoryCounter = "echo before > /state; i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"

// loggedNumbers are the numbers a container logged (CRI log lines).
func loggedNumbers(pod *runtimeapi.PodSandboxConfig, name string) []int {
	f, err := os.Open(filepath.Join(pod.LogDirectory, name, "0.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var ns []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 4 && fs[1] == "stdout" {
			if n, err := strconv.Atoi(fs[3]); err == nil {
				ns = append(ns, n)
			}
		}
	}
	return ns
}

// waitNumbers waits until a container logged at least n numbers.
func waitNumbers(t *testing.T, pod *runtimeapi.PodSandboxConfig, name string, n int) []int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ns := loggedNumbers(pod, name); len(ns) >= n {
			return ns
		}
	}
	t.Fatalf("container %s logged %v; want %d numbers", name, loggedNumbers(pod, name), n)
	return nil
}

// checkContinues checks a restored counter's log: it starts near where
// the checkpointed one was (never from 0) and counts on by one.
func checkContinues(t *testing.T, what string, before, after []int) {
	t.Helper()
	last := before[len(before)-1]
	if after[0] < last-2 || after[0] > last+3 || after[0] == 0 {
		t.Errorf("%s: the restored counter started at %d; the checkpointed one had reached %d", what, after[0], last)
	}
	for i := 1; i < len(after); i++ {
		if after[i] != after[i-1]+1 {
			t.Errorf("%s: the restored counter's log goes %d, %d", what, after[i-1], after[i])
		}
	}
}

// leftovers is what the server has that a failed restore must not add:
// sandboxes, containers, and mounts under the engine's roots.
func leftovers(t *testing.T, c *client) (pods, ctrs, mounts int) {
	t.Helper()
	ctx := ctxT(t)
	ps, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	root := c.root
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			mounts++
		}
	}
	return len(ps.Items), len(cs.Containers), mounts
}

// cgroupsUnder counts the cgroup directories below a pod's cgroup parent
// in the memory hierarchy (where the pod's containers' cgroups go).
func cgroupsUnder(parent string) int {
	n := 0
	filepath.WalkDir(filepath.Join("/sys/fs/cgroup/memory", parent), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// ownCgroupParent gives a pod a cgroup parent of the test's own, so that
// what its containers leave can be counted apart from other processes'.
func ownCgroupParent(t *testing.T, pod *runtimeapi.PodSandboxConfig) string {
	parent := "/hulltest-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + pod.Metadata.Name
	pod.Linux.CgroupParent = parent
	return parent
}

// TestRestoreContainerFromArchive restores a CheckpointContainer archive
// by CreateContainer with the archive's path as image.image (CRI-O's
// way) into another pod: the container is CREATED, StartContainer
// restores it, it counts on from where it was into its new log, its file
// written before the checkpoint is there, and its end is recorded when it
// is killed. A file that is no archive fails with InvalidArgument and
// leaves nothing behind.
func TestRestoreContainerFromArchive(t *testing.T) {
	testenv.NeedCRIU(t)
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "rsa")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "count", nil, "sh", "-c", memoryCounter)
	startContainer(t, c, id)
	waitNumbers(t, pod, "count", 10)
	loc := filepath.Join(t.TempDir(), "count.tar")
	if _, err := c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc, Timeout: 60}); err != nil {
		t.Fatalf("CheckpointContainer: %v", err)
	}
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	before := loggedNumbers(pod, "count")

	pod2 := sandboxConfig(t, "rsb")
	parent := ownCgroupParent(t, pod2)
	pod2ID := runSandbox(t, c, pod2)
	p0, c0, m0 := leftovers(t, c)
	g0 := cgroupsUnder(parent)
	notOne := filepath.Join(t.TempDir(), "not.tar")
	os.WriteFile(notOne, []byte("not a tar"), 0o600)
	_, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod2ID, SandboxConfig: pod2, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: notOne}, LogPath: "bad/0.log",
	}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "checkpoint archive") {
		t.Errorf("CreateContainer from a file that is no archive: %v; want InvalidArgument", err)
	}
	if p, cs, m := leftovers(t, c); p != p0 || cs != c0 || m != m0 || cgroupsUnder(parent) != g0 {
		t.Errorf("the failed create left sandboxes %d->%d, containers %d->%d, mounts %d->%d, cgroups %d->%d", p0, p, c0, cs, m0, m, g0, cgroupsUnder(parent))
	}

	// A checkpoint of a container outside any pod (a network namespace
	// of its own) does not go into a pod's.
	plain, err := c.eng.Create(ctx, engine.CreateOptions{Name: "plain", Config: engine.Config{
		Image: f.Busybox.Ref, Pull: "never", Spec: spec.Options{Network: "none", Cmd: []string{"sleep", "1000"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.eng.Start(ctx, plain.ID, engine.StartOptions{}); err != nil || st.Ready() != nil {
		t.Fatalf("start a container outside the pods: %v", err)
	}
	plainArchive := filepath.Join(t.TempDir(), "plain.tar")
	if _, err := c.eng.Checkpoint(ctx, plain.ID, engine.CheckpointOptions{Export: plainArchive, LeaveRunning: true}); err != nil {
		t.Fatal(err)
	}
	c.eng.Remove(ctx, plain.ID, true)
	p0, c0, m0 = leftovers(t, c)
	_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod2ID, SandboxConfig: pod2, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "plain"}, Image: &runtimeapi.ImageSpec{Image: plainArchive}, LogPath: "plain/0.log",
	}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "network namespace was its own") {
		t.Errorf("CreateContainer in a pod from a checkpoint taken outside one: %v; want FailedPrecondition", err)
	}
	if p, cs, m := leftovers(t, c); p != p0 || cs != c0 || m != m0 || cgroupsUnder(parent) != g0 {
		t.Errorf("the refused create left sandboxes %d->%d, containers %d->%d, mounts %d->%d, cgroups %d->%d", p0, p, c0, cs, m0, m, g0, cgroupsUnder(parent))
	}

	rid := createContainer(t, c, f, pod2ID, pod2, "count", func(cc *runtimeapi.ContainerConfig) {
		cc.Image = &runtimeapi.ImageSpec{Image: loc}
	})
	if st := containerStatus(t, c, rid); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Fatalf("the container created from the archive is %v, not CREATED", st.State)
	}
	if ns := loggedNumbers(pod2, "count"); len(ns) > 0 {
		t.Errorf("the restored process ran before StartContainer: %v", ns)
	}
	startContainer(t, c, rid)
	st := containerStatus(t, c, rid)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.Image.GetImage() == loc {
		t.Errorf("restored container: %v, image %v", st.State, st.Image)
	}
	after := waitNumbers(t, pod2, "count", 5)
	t.Logf("checkpointed at %d, restored from %d", before[len(before)-1], after[0])
	checkContinues(t, "CreateContainer from the archive", before, after)
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: rid, Cmd: []string{"cat", "/state"}, Timeout: 10})
	if err != nil || string(r.Stdout) != "before\n" {
		t.Errorf("/state in the restored container: %v %q", err, r.GetStdout())
	}
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: rid, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	if st := waitExited(t, c, rid); st.ExitCode != 137 {
		t.Errorf("the killed restored container exited %d; want 137", st.ExitCode)
	}
}

// TestRestorePod checkpoints a pod of two counting containers
// (CheckpointPod), removes it, and restores it with RestorePod: bad
// requests fail with their codes and leave nothing behind; a good one
// gives CREATED containers that StartContainer brings to RUNNING,
// counting on from where they were.
func TestRestorePod(t *testing.T) {
	testenv.NeedCRIU(t)
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "rsp")
	podID := runSandbox(t, c, pod)
	a := createContainer(t, c, f, podID, pod, "a", nil, "sh", "-c", memoryCounter)
	// b has a volume: restored with the new pod's, a host directory of
	// its own.
	oldData, newData := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(oldData, "x"), []byte("old\n"), 0o644)
	os.WriteFile(filepath.Join(newData, "x"), []byte("new\n"), 0o644)
	withData := func(dir string) func(*runtimeapi.ContainerConfig) {
		return func(cc *runtimeapi.ContainerConfig) {
			cc.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: dir}}
		}
	}
	b := createContainer(t, c, f, podID, pod, "b", withData(oldData), "sh", "-c", "sleep 0.5; "+memoryCounter)
	startContainer(t, c, a)
	startContainer(t, c, b)
	waitNumbers(t, pod, "a", 10)
	waitNumbers(t, pod, "b", 5)
	dir := t.TempDir()
	if _, err := c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, OutputPath: dir, ContainerIds: []string{a, b}}); err != nil {
		t.Fatalf("CheckpointPod: %v", err)
	}
	c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	before := map[string][]int{"a": loggedNumbers(pod, "a"), "b": loggedNumbers(pod, "b")}
	snapshot := func() map[string]string {
		out := map[string]string{}
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				out[p] = fi.ModTime().String() + strconv.FormatInt(fi.Size(), 10)
			}
			return nil
		})
		return out
	}
	untouched := snapshot()

	pod2 := sandboxConfig(t, "rsp")
	pod2.Metadata.Uid = "uid-rsp-restored"
	parent := ownCgroupParent(t, pod2)
	cfg := func(name string, mod func(*runtimeapi.ContainerConfig)) *runtimeapi.ContainerConfig {
		cc := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: f.Busybox.Ref},
			LogPath:  name + "/0.log",
			Labels:   map[string]string{"io.kubernetes.container.name": name},
		}
		if mod != nil {
			mod(cc)
		}
		return cc
	}
	// Nothing under the parent but what the pod makes: none of it may
	// be left, nor a sandbox, container or mount.
	p0, c0, m0 := leftovers(t, c)
	g0 := cgroupsUnder(parent)
	for _, tc := range []struct {
		what string
		req  *runtimeapi.RestorePodRequest
		code codes.Code
		says string
	}{
		{"no containers", &runtimeapi.RestorePodRequest{}, codes.InvalidArgument, "no container configs"},
		{"a missing name", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("", nil)}}, codes.InvalidArgument, "no metadata name"},
		{"a duplicate", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("a", nil)}}, codes.InvalidArgument, "two container configs"},
		{"a name not in the checkpoint", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("c", nil)}}, codes.InvalidArgument, "not in the checkpoint"},
		{"a container left out", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil)}}, codes.InvalidArgument, "has no container config"},
		{"an option", &runtimeapi.RestorePodRequest{Options: map[string]string{"tcp-established": "1"}, ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", withData(newData))}}, codes.InvalidArgument, `"tcp-established"`},
		{"an unknown handler", &runtimeapi.RestorePodRequest{RuntimeHandler: "kata", ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", withData(newData))}}, codes.NotFound, `"kata"`},
		{"another image", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", func(cc *runtimeapi.ContainerConfig) {
			cc.Image.Image = "docker.io/library/nosuch:1"
		})}}, codes.FailedPrecondition, "not the checkpointed container's"},
		{"another command", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", func(cc *runtimeapi.ContainerConfig) {
			cc.Command = []string{"sleep", "100"}
		}), cfg("b", withData(newData))}}, codes.FailedPrecondition, "not the checkpointed process's"},
		// Found once the sandbox and a are made: both removed.
		{"b's volume left out", &runtimeapi.RestorePodRequest{ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", nil)}}, codes.InvalidArgument, "bind mount at /data"},
		{"a relative path", &runtimeapi.RestorePodRequest{CheckpointPath: "rel", ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", nil)}}, codes.InvalidArgument, "absolute"},
		{"no checkpoint", &runtimeapi.RestorePodRequest{CheckpointPath: t.TempDir(), ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", nil)}}, codes.InvalidArgument, "not a pod checkpoint"},
	} {
		if tc.req.CheckpointPath == "" {
			tc.req.CheckpointPath = dir
		}
		tc.req.Config = pod2
		_, err := c.rt.RestorePod(ctx, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("RestorePod with %s: %v; want %v saying %s", tc.what, err, tc.code, tc.says)
		}
		if p, cs, m := leftovers(t, c); p != p0 || cs != c0 || m != m0 || cgroupsUnder(parent) != g0 {
			t.Errorf("RestorePod with %s left sandboxes %d->%d, containers %d->%d, mounts %d->%d, cgroups %d->%d", tc.what, p0, p, c0, cs, m0, m, g0, cgroupsUnder(parent))
		}
	}

	// No working CRIU: said, with what to do, before anything is made.
	realCRIU := os.Getenv("HULL_CRIU")
	t.Setenv("HULL_CRIU", fakeCRIU(t, criuCheckFails))
	_, err := c.rt.RestorePod(ctx, &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: pod2, ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", withData(newData))}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "make criu") {
		t.Errorf("RestorePod with a broken CRIU: %v; want FailedPrecondition saying what to do", err)
	}
	if p, cs, m := leftovers(t, c); p != p0 || cs != c0 || m != m0 || cgroupsUnder(parent) != g0 {
		t.Errorf("RestorePod with a broken CRIU left sandboxes %d->%d, containers %d->%d, mounts %d->%d", p0, p, c0, cs, m0, m)
	}
	t.Setenv("HULL_CRIU", realCRIU)

	// The command as kubelet sends it (the pod spec's) is the process's.
	resp, err := c.rt.RestorePod(ctx, &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: pod2, ContainerConfigs: []*runtimeapi.ContainerConfig{
		cfg("b", func(cc *runtimeapi.ContainerConfig) {
			withData(newData)(cc)
			cc.Command = []string{"sh", "-c", "sleep 0.5; " + memoryCounter}
		}),
		cfg("a", nil),
	}})
	if err != nil {
		t.Fatalf("RestorePod: %v", err)
	}
	if resp.PodSandboxId == "" || len(resp.RestoredContainers) != 2 {
		t.Fatalf("RestorePod answered %v", resp)
	}
	ids := map[string]string{}
	for _, rc := range resp.RestoredContainers {
		ids[rc.Name] = rc.ContainerId
		if st := containerStatus(t, c, rc.ContainerId); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.Metadata.Name != rc.Name {
			t.Errorf("restored container %s is %v (%s), not CREATED", rc.Name, st.State, st.Metadata.Name)
		}
	}
	if !slices.Equal([]string{resp.RestoredContainers[0].Name, resp.RestoredContainers[1].Name}, []string{"b", "a"}) {
		t.Errorf("RestorePod's containers are not in the request's order: %v", resp.RestoredContainers)
	}
	for _, name := range []string{"a", "b"} {
		startContainer(t, c, ids[name])
		if st := containerStatus(t, c, ids[name]); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("restored container %s is %v after StartContainer", name, st.State)
		}
	}
	for _, name := range []string{"a", "b"} {
		after := waitNumbers(t, pod2, name, 5)
		t.Logf("%s: checkpointed at %d, restored from %d", name, before[name][len(before[name])-1], after[0])
		checkContinues(t, "RestorePod "+name, before[name], after)
	}
	// The restored processes are in the new sandbox's namespaces.
	for _, ns := range []string{"net", "ipc", "uts"} {
		var links []string
		for _, name := range []string{"a", "b"} {
			ec, err := c.eng.Get(ctx, ids[name])
			if err != nil {
				t.Fatal(err)
			}
			l, _ := os.Readlink("/proc/" + strconv.Itoa(ec.Pid) + "/ns/" + ns)
			links = append(links, l)
		}
		if links[0] == "" || links[0] != links[1] {
			t.Errorf("the restored containers' %s namespaces: %v; want the pod's, shared", ns, links)
		}
	}
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ids["b"], Cmd: []string{"cat", "/data/x", "/state"}, Timeout: 10})
	if err != nil || string(r.Stdout) != "new\nbefore\n" {
		t.Errorf("b's volume and file after the restore: %v %q; want the new pod's volume", err, r.GetStdout())
	}
	ps, _ := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: resp.PodSandboxId})
	if ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || ps.GetStatus().GetMetadata().GetUid() != "uid-rsp-restored" {
		t.Errorf("the restored sandbox: %v", ps.GetStatus())
	}
	if now := snapshot(); len(now) != len(untouched) {
		t.Errorf("RestorePod changed the checkpoint directory: %d files, then %d", len(untouched), len(now))
	} else {
		for p, v := range untouched {
			if now[p] != v {
				t.Errorf("RestorePod changed %s", p)
			}
		}
	}

	// The checkpoint's image gone from the node: NotFound saying to pull
	// it, nothing left.
	c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId})
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}}); err != nil {
		t.Fatal(err)
	}
	p0, c0, m0 = leftovers(t, c)
	g0 = cgroupsUnder(parent)
	_, err = c.rt.RestorePod(ctx, &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: pod2, ContainerConfigs: []*runtimeapi.ContainerConfig{cfg("a", nil), cfg("b", withData(newData))}})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "pull it") {
		t.Errorf("RestorePod without the image: %v; want NotFound saying to pull it", err)
	}
	if p, cs, m := leftovers(t, c); p != p0 || cs != c0 || m != m0 || cgroupsUnder(parent) != g0 {
		t.Errorf("RestorePod without the image left sandboxes %d->%d, containers %d->%d, mounts %d->%d, cgroups %d->%d", p0, p, c0, cs, m0, m, g0, cgroupsUnder(parent))
	}
}
