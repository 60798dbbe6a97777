package cri

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
	"hull/internal/checkpoint"
	"hull/internal/testenv"
)

// criProc is a hull-cri process on a test's roots.
type criProc struct {
	cmd    *exec.Cmd
	exited chan error
	rt     runtimeapi.RuntimeServiceClient
	img    runtimeapi.ImageServiceClient
	conn   *grpc.ClientConn
}

// faultEnv is a test's roots, pod network and registry for hull-cri
// processes killed and restarted.
type faultEnv struct {
	t                 *testing.T
	hull, bin         string
	root, cfg, cniDir string
	f                 *testenv.Fixtures
	subnet, bridge    string
}

func newFaultEnv(t *testing.T) *faultEnv {
	hull := os.Getenv("HULL_BIN")
	if hull == "" || os.Geteuid() != 0 {
		t.Skip("needs root and HULL_BIN (make build)")
	}
	bin := filepath.Join(filepath.Dir(hull), "hull-cri")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no hull-cri next to HULL_BIN (%v)", err)
	}
	_, f := testenv.Setup(t, testenv.FixBusybox)
	root := t.TempDir()
	br, subnet := testenv.DefaultNetwork()
	dir := cniDir(t, br)
	os.WriteFile(filepath.Join(dir, "10-pods.conflist"), testConflist("faultnet", br, subnet, nil), 0o644)
	return &faultEnv{t: t, hull: hull, bin: bin, root: root, cfg: testenv.NetworkConfig(t, root), cniDir: dir, f: f, subnet: subnet, bridge: br}
}

// start starts hull-cri, killing itself at trace mark fault if not "".
func (e *faultEnv) start(fault string) *criProc {
	t := e.t
	t.Helper()
	sock := filepath.Join(e.root, "cri.sock")
	cmd := exec.Command(e.bin, "--hull", e.hull, "--root", e.root, "--run-root", filepath.Join(e.root, "run"),
		"--config", e.cfg, "--listen", "unix://"+sock, "--cni-conf-dir", e.cniDir)
	cmd.Env = append(os.Environ(), "HULL_FAULT="+fault, "HULL_CONFIG=")
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &criProc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exited
		}
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.conn, p.rt, p.img = conn, runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := p.rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return p
		}
		select {
		case err := <-p.exited:
			t.Fatalf("hull-cri exited: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hull-cri does not answer: %v\n%s", err, stderr)
		}
	}
}

// killedBy says whether p died of its fault (SIGKILL) within a few seconds.
func (p *criProc) killedBy(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		if ws := p.cmd.ProcessState.String(); ws != "signal: killed" {
			t.Fatalf("hull-cri ended with %s; want killed at its fault", ws)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("hull-cri did not reach its fault")
	}
	p.conn.Close()
}

func (p *criProc) stop(t *testing.T) {
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.conn.Close()
}

// leftovers lists what of the test's roots is still on the host: mounts
// under the root, reserved addresses, attachment records, and cgroup
// directories named in dirs. It waits up to 5 s for them to go: a
// stopped pod's record goes once the kernel has ended its network
// namespace and the veth with it (network.Manager.SettleReleased).
func (e *faultEnv) leftovers(dirs ...string) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := e.leftoversNow(dirs...)
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *faultEnv) leftoversNow(dirs ...string) []string {
	var out []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], e.root+"/") {
			out = append(out, "mount "+f[4])
		}
	}
	addrs, _ := filepath.Glob(filepath.Join(e.root, "run", "networks", "ipam", "faultnet", "*"))
	for _, a := range addrs {
		if b := filepath.Base(a); b != "lock" && !strings.HasPrefix(b, "last_reserved_ip") {
			out = append(out, "address "+b)
		}
	}
	recs, _ := filepath.Glob(filepath.Join(e.root, "run", "networks", "attachments", "*"))
	for _, r := range recs {
		out = append(out, "attachment "+filepath.Base(r))
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			out = append(out, "cgroup "+d)
		}
	}
	// The host ends of this test's pods' veths: ports of its bridge
	// (made with the veth, never after).
	ports, _ := os.ReadDir(filepath.Join("/sys/class/net", e.bridge, "brif"))
	for _, p := range ports {
		out = append(out, "veth "+p.Name())
	}
	return out
}

// diskLeftovers lists what a killed pull wrote that the restarted
// server's cleanup must have removed: blob temp files under
// images/ingest and snapshots being built under snapshots/tmp.
func (e *faultEnv) diskLeftovers() []string {
	var out []string
	tmps, _ := filepath.Glob(filepath.Join(e.root, "images", "ingest", "*.tmp"))
	for _, f := range tmps {
		out = append(out, "ingest "+filepath.Base(f))
	}
	building, _ := os.ReadDir(filepath.Join(e.root, "snapshots", "tmp"))
	for _, d := range building {
		out = append(out, "snapshot being built "+d.Name())
	}
	return out
}

// systemCheck runs `hull system check` on the test's roots, which finds
// records without their files and files without their records (images,
// snapshots, containers, run state).
func (e *faultEnv) systemCheck(t *testing.T) {
	t.Helper()
	cmd := exec.Command(e.hull, "--root", e.root, "--run-root", filepath.Join(e.root, "run"), "--config", e.cfg, "system", "check")
	cmd.Env = append(os.Environ(), "HULL_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "no inconsistencies found") {
		t.Errorf("hull system check: %v\n%s", err, out)
	}
}

// hull-cri killed during RunPodSandbox, at each of its stages: the next
// server removes the half-made sandbox with all it had (pins, address,
// record, cgroup), and kubelet's retry under the same name works.
func TestKilledDuringRunPodSandbox(t *testing.T) {
	e := newFaultEnv(t)
	for _, mark := range []string{"cri: sandbox recorded", "cri: sandbox cgroup made", "pod: pinned", "pod: attached"} {
		t.Run(strings.NewReplacer(":", "", " ", "-").Replace(mark), func(t *testing.T) {
			top := "/hulltest-fault-" + filepath.Base(e.root)
			parent := top + "/burstable/pod-uid"
			t.Cleanup(func() { cgroupsRemove(top) })
			cg, _ := cgroups.New(parent)
			var cgDirs []string
			for _, mt := range cg.Mounts() {
				cgDirs = append(cgDirs, mt.Dir)
			}
			cfg := sandboxConfig(t, "victim")
			cfg.Linux.CgroupParent = parent
			cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}

			p := e.start(mark)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := p.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg}); err == nil {
				t.Fatalf("RunPodSandbox succeeded; want the server killed at %q", mark)
			}
			p.killedBy(t)

			p = e.start("")
			defer p.stop(t)
			if l, err := p.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(l.Items) != 0 {
				t.Errorf("ListPodSandbox after the restart = %v, %v; want the half-made sandbox gone", l, err)
			}
			if left := e.leftovers(cgDirs...); len(left) > 0 {
				t.Errorf("left after the restart: %v", left)
			}
			r, err := p.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				t.Fatalf("kubelet's retry: %v", err)
			}
			if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: r.PodSandboxId}); err != nil {
				t.Fatal(err)
			}
			if left := e.leftovers(cgDirs...); len(left) > 0 {
				t.Errorf("left after RemovePodSandbox: %v", left)
			}
		})
	}
}

// containerMounts lists the mounts of containers (not of pods) under the
// test's root, waiting up to wait for them to go.
func (e *faultEnv) containerMounts(wait time.Duration) []string {
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		var out []string
		for _, left := range e.leftovers() {
			if strings.HasPrefix(left, "mount ") && !strings.Contains(left, "/pods/") {
				out = append(out, left)
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
	}
}

// hostPod pulls busybox and runs a sandbox on the host's network, with a
// server it stops after.
func (e *faultEnv) hostPod(ctx context.Context) (*runtimeapi.PodSandboxConfig, string) {
	t := e.t
	t.Helper()
	p := e.start("")
	defer p.stop(t)
	if _, err := p.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref}}); err != nil {
		t.Fatal(err)
	}
	pod := sandboxConfig(t, "host")
	r, err := p.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		t.Fatal(err)
	}
	return pod, r.PodSandboxId
}

// hull-cri killed during CreateContainer: the next server lists the
// half-made container (kubelet then makes the next attempt and removes
// it) or has none; RemoveContainer leaves no mount, and a retry under the
// same name works. The stages after "create: image resolved" follow the
// answer (engine CreateOptions.Deferred): killed there, the server may
// have answered; a start of that container then fails, saying so.
func TestKilledDuringCreateContainer(t *testing.T) {
	e := newFaultEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod, podID := e.hostPod(ctx)
	cc := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref},
		Command: []string{"sleep", "60"}, LogPath: "c/0.log",
	}
	for _, mark := range []string{"create: recorded", "create: image resolved", "create: rootfs mounted", "create: etc files", "create: spec generated"} {
		deferred := mark != "create: recorded" && mark != "create: image resolved"
		t.Run(strings.NewReplacer(":", "", " ", "-").Replace(mark), func(t *testing.T) {
			p := e.start(mark)
			if _, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod}); err == nil && !deferred {
				t.Fatalf("CreateContainer succeeded; want the server killed at %q", mark)
			}
			p.killedBy(t)
			p = e.start("")
			defer p.stop(t)
			l, err := p.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range l.Containers {
				if c.State != runtimeapi.ContainerState_CONTAINER_CREATED && c.State != runtimeapi.ContainerState_CONTAINER_EXITED {
					t.Errorf("half-made container %s is %v; want created or exited", c.Id, c.State)
				}
				if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
					_, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.Id})
					if err == nil || !strings.Contains(err.Error(), "while creating") {
						t.Errorf("StartContainer of the half-made container: %v; want its creation interrupted", err)
					}
				}
				if _, err := p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
					t.Errorf("RemoveContainer %s: %v", c.Id, err)
				}
			}
			// The unmount follows the answer (engine.RemoveDeferred).
			for _, left := range e.containerMounts(5 * time.Second) {
				t.Errorf("left after RemoveContainer: %s", left)
			}
			cr, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
			if err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if _, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
				t.Fatalf("StartContainer of the retry: %v", err)
			}
			if _, err := p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cr.ContainerId}); err != nil {
				t.Fatal(err)
			}
		})
	}
	p := e.start("")
	defer p.stop(t)
	if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after the sandbox: %v", left)
	}
}

// hull-cri killed during PullImage, before, while and after it streams
// a layer: the restarted server shows no image, has removed the blob temp
// files and half-built snapshots, `hull system check` finds nothing amiss,
// and a re-pull works.
func TestKilledDuringPullImage(t *testing.T) {
	e := newFaultEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref}
	for _, mark := range []string{"pull: manifest", "pull: config", "pull: layer streaming", "pull: layers"} {
		t.Run(strings.NewReplacer(":", "", " ", "-").Replace(mark), func(t *testing.T) {
			p := e.start(mark)
			if _, err := p.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err == nil {
				t.Fatalf("PullImage succeeded; want the server killed at %q", mark)
			}
			p.killedBy(t)
			p = e.start("")
			defer p.stop(t)
			if st, err := p.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec}); err != nil || st.Image != nil {
				t.Errorf("ImageStatus after a killed pull = %v, %v; want no image", st.GetImage(), err)
			}
			if l, err := p.img.ListImages(ctx, &runtimeapi.ListImagesRequest{}); err != nil || len(l.Images) != 0 {
				t.Errorf("ListImages after a killed pull = %v, %v; want none", l.GetImages(), err)
			}
			for _, left := range e.diskLeftovers() {
				t.Errorf("left on disk after the restart: %s", left)
			}
			e.systemCheck(t)
			if _, err := p.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
				t.Fatalf("re-pull: %v", err)
			}
			if st, err := p.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec}); err != nil || st.Image == nil {
				t.Errorf("ImageStatus after the re-pull = %v, %v", st.GetImage(), err)
			}
			if _, err := p.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// hull-cri killed during RemoveContainer, which answers once the container
// is claimed and killed and deletes the rest after (engine.RemoveDeferred):
// killed before the answer or after it, at each stage of the deletion, the
// next server lists no container and leaves nothing `hull system check`
// finds (no record, mount, layer, run state), and the pod is removable.
func TestKilledDuringRemoveContainer(t *testing.T) {
	e := newFaultEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod, podID := e.hostPod(ctx)
	for i, mark := range []string{"rm: intended", "rm: claimed", "rm: killed", "cleanup: unmounted", "cleanup: set aside", "cleanup: rt deleted"} {
		t.Run(strings.NewReplacer(":", "", " ", "-").Replace(mark), func(t *testing.T) {
			cc := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c", Attempt: uint32(i)}, Image: &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref},
				Command: []string{"sleep", "60"}, LogPath: "c/0.log",
			}
			p := e.start(mark)
			cr, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
				t.Fatal(err)
			}
			// The answer may come (the deletion's marks are after it) or
			// not: the server dies at its mark either way.
			p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cr.ContainerId})
			p.killedBy(t)
			p = e.start("")
			defer p.stop(t)
			l, err := p.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			if err != nil || len(l.Containers) != 0 {
				t.Errorf("ListContainers after the restart = %v, %v; want the removed container gone", l.GetContainers(), err)
			}
			if _, err := p.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId}); err == nil {
				t.Errorf("ContainerStatus of the removed container succeeded after the restart")
			}
			for _, left := range e.containerMounts(0) {
				t.Errorf("left after the restart: %s", left)
			}
			e.systemCheck(t)
		})
	}
	p := e.start("")
	defer p.stop(t)
	if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after the sandbox: %v", left)
	}
}

// hullCLI runs hull on the test's roots and returns its output.
func (e *faultEnv) hullCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(e.hull, append([]string{"--root", e.root, "--run-root", filepath.Join(e.root, "run"), "--config", e.cfg}, args...)...)
	cmd.Env = append(os.Environ(), "HULL_CONFIG=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hull %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// freezerState is the freezer state of container id's cgroup: THAWED,
// FROZEN (or FREEZING), as cgroup v1 names them.
func (e *faultEnv) freezerState(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, "run", "runtime", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		CgroupPath string `json:"cgroup_path"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err == nil {
		b, err = os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", st.CgroupPath, "freezer.state"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	b, err = os.ReadFile(filepath.Join("/sys/fs/cgroup", st.CgroupPath, "cgroup.freeze"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return "FROZEN"
	}
	return "THAWED"
}

// criuLeft lists the criu processes working on the test's containers
// (their command line names a path under its root), waiting up to 5 s for
// them to go.
func (e *faultEnv) criuLeft() []string {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var out []string
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			comm, err := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
			if err != nil || strings.TrimSpace(string(comm)) != "criu" {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			if strings.Contains(string(cmdline), e.root+"/") {
				out = append(out, "criu "+p.Name())
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
	}
}

// checkRunningAfterKill checks, after a killed checkpoint and a restart,
// that the container runs as before: RUNNING to CRI, running (not
// paused) to the engine, its cgroup thawed, its counter advancing.
func (e *faultEnv) checkRunningAfterKill(t *testing.T, ctx context.Context, p *criProc, pod *runtimeapi.PodSandboxConfig, name, id string) {
	t.Helper()
	st, err := p.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %s after the restart: %v, %v; want RUNNING", name, st.GetStatus().GetState(), err)
	}
	if s := e.hullCLI(t, "inspect", "-f", "{{.State.Status}}", id); s != "running" {
		t.Errorf("container %s is %s to the engine; want running (not paused)", name, s)
	}
	if s := e.freezerState(t, id); s != "THAWED" {
		t.Errorf("container %s's cgroup is %s; want THAWED", name, s)
	}
	waitCounting(t, pod, name, logLines(t, pod, name)+2)
}

// checkNoCheckpointLeft checks no criu runs for the test and dir (the
// archive's directory, or the pod checkpoint's output) is empty.
func (e *faultEnv) checkNoCheckpointLeft(t *testing.T, dir string) {
	t.Helper()
	for _, left := range e.criuLeft() {
		t.Errorf("left running after the restart: %s", left)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		t.Errorf("left in %s after the restart: %s", dir, ent.Name())
	}
	markers, _ := filepath.Glob(filepath.Join(e.root, "run", "containers", "*", "checkpoint*.json"))
	for _, m := range markers {
		t.Errorf("checkpoint marker left after the restart: %s", m)
	}
	e.systemCheck(t)
}

// checkpointMarks are the stages of a container's dump a server is
// killed at: before the freeze (the marker written), frozen, during the
// dump (CRIU started; CRIU with its parasite code in the seized tasks:
// it dies with the server), after the dump before the thaw.
var checkpointMarks = []string{"checkpoint: marked", "checkpoint: frozen", "checkpoint: criu started", "checkpoint: criu in the tasks", "checkpoint: dumped"}

// hull-cri killed during CheckpointContainer, at each stage of the dump:
// the next server thaws the container the dump froze, no criu runs on,
// nothing is left beside the location (work directory, temporary
// archive) nor at it, and `hull system check` finds nothing amiss. A
// checkpoint after that works, and a container a user paused stays
// paused through a restart.
func TestKilledDuringCheckpointContainer(t *testing.T) {
	testenv.NeedCRIU(t)
	e := newFaultEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod, podID := e.hostPod(ctx)
	cc := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "count"}, Image: &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref},
		Command: []string{"sh", "-c", counterScript}, LogPath: "count/0.log",
	}
	p := e.start("")
	cr, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.ContainerId
	if _, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	waitCounting(t, pod, "count", 2)
	dir := t.TempDir() // kubelet's checkpoint directory, outside hull's roots
	loc := filepath.Join(dir, "checkpoint-count.tar")

	for _, mark := range checkpointMarks {
		t.Run(strings.NewReplacer(":", "", " ", "-").Replace(mark), func(t *testing.T) {
			p := e.start(mark)
			if _, err := p.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc, Timeout: 60}); err == nil {
				t.Fatalf("CheckpointContainer succeeded; want the server killed at %q", mark)
			}
			p.killedBy(t)
			// Where CRIU was when it died with the server (its log, in the
			// work directory the restart removes).
			if logs, _ := filepath.Glob(filepath.Join(dir, checkpoint.WorkPrefix+"*", checkpoint.ImagesDir, checkpoint.DumpLog)); len(logs) > 0 {
				b, _ := os.ReadFile(logs[0])
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("CRIU's dump.log at the kill: %d lines, the last %q", len(lines), lines[len(lines)-1])
			}
			p = e.start("")
			defer p.stop(t)
			e.checkRunningAfterKill(t, ctx, p, pod, "count", id)
			e.checkNoCheckpointLeft(t, dir)
		})
	}

	p = e.start("")
	if _, err := p.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc, Timeout: 60}); err != nil {
		t.Fatalf("CheckpointContainer after the killed ones: %v", err)
	}
	if m := testenv.TarMembers(t, loc); m["config.dump"] == nil {
		t.Errorf("the archive after the killed checkpoints has no config.dump")
	}
	os.Remove(loc)

	// A user's pause is not a checkpoint's: a restart leaves it paused.
	e.hullCLI(t, "pause", id)
	p.stop(t)
	p = e.start("")
	if s := e.hullCLI(t, "inspect", "-f", "{{.State.Status}}", id); s != "paused" || e.freezerState(t, id) != "FROZEN" {
		t.Errorf("a container the user paused is %s (cgroup %s) after a restart; want paused", s, e.freezerState(t, id))
	}
	e.hullCLI(t, "unpause", id)
	if _, err := p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after the sandbox: %v", left)
	}
}

// hull-cri killed during CheckpointPod: after it paused the pod's
// containers, at each stage of the first container's dump, and after it
// wrote the whole checkpoint but before it resumed them. The next server
// resumes every container (running to the engine, thawed, counting), no
// criu runs on, the output directory is left empty, as it was given, and
// `hull system check` finds nothing amiss; a pod checkpoint then works.
func TestKilledDuringCheckpointPod(t *testing.T) {
	testenv.NeedCRIU(t)
	e := newFaultEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod, podID := e.hostPod(ctx)
	p := e.start("")
	var ids []string
	names := []string{"one", "two"}
	for _, name := range names {
		cc := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref},
			Command: []string{"sh", "-c", counterScript}, LogPath: name + "/0.log",
		}
		cr, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.ContainerId)
	}
	p.stop(t)
	for _, name := range names {
		waitCounting(t, pod, name, 2)
	}
	out := t.TempDir()
	marks := append([]string{"checkpoint pod: paused"}, checkpointMarks...)
	marks = append(marks, "checkpoint pod: written")
	for _, mark := range marks {
		t.Run(strings.NewReplacer(":", "", " ", "-").Replace(mark), func(t *testing.T) {
			p := e.start(mark)
			if _, err := p.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, ContainerIds: ids, OutputPath: out}); err == nil {
				t.Fatalf("CheckpointPod succeeded; want the server killed at %q", mark)
			}
			p.killedBy(t)
			p = e.start("")
			defer p.stop(t)
			for i, name := range names {
				e.checkRunningAfterKill(t, ctx, p, pod, name, ids[i])
			}
			e.checkNoCheckpointLeft(t, out)
		})
	}

	p = e.start("")
	if _, err := p.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, ContainerIds: ids, OutputPath: out}); err != nil {
		t.Fatalf("CheckpointPod after the killed ones: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, checkpoint.PodFile)); err != nil {
		t.Errorf("the pod checkpoint after the killed ones: %v", err)
	}
	for i, name := range names {
		e.checkRunningAfterKill(t, ctx, p, pod, name, ids[i])
	}
	if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after the sandbox: %v", left)
	}
}
