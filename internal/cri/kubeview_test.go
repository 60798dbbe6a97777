package cri

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
	"hull/internal/testenv"
)

// One engine, two views, through the CLI on the server's roots: hull ps
// and hull pod ls leave kubelet's objects out unless -A; hull images
// lists what kubelet pulled; hull why explains a CRI container, and a
// sandbox (pod/ID): a crash with its exit code and last lines, an OOM
// kill with limit and peak, a failed pull with the registry's error.
func TestOneEngineTwoViews(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	hull := func(args ...string) string { t.Helper(); return hullCLI(t, c, args...) }

	pod := sandboxConfig(t, "web")
	podID := runSandbox(t, c, pod)
	sleeper := createContainer(t, c, f, podID, pod, "sleeper", nil, "sleep", "60")
	startContainer(t, c, sleeper)
	crash := createContainer(t, c, f, podID, pod, "crash", nil, "sh", "-c", "echo boom-before-exit >&2; exit 3")
	startContainer(t, c, crash)
	waitExited(t, c, crash)

	if out := hull("ps", "-a", "-q", "--no-trunc"); strings.Contains(out, sleeper) || strings.Contains(out, crash) {
		t.Errorf("hull ps -a:\n%s\nwant kubelet's containers left out without -A", out)
	}
	if out := hull("ps", "-a", "-A", "-q", "--no-trunc"); !strings.Contains(out, sleeper) || !strings.Contains(out, crash) {
		t.Errorf("hull ps -a -A:\n%s\nwant kubelet's containers %s and %s", out, sleeper, crash)
	}
	if out := hull("pod", "ls", "-q", "--no-trunc"); strings.Contains(out, podID) {
		t.Errorf("hull pod ls:\n%s\nwant the sandbox left out without -A", out)
	}
	if out := hull("pod", "ls", "-A", "-q", "--no-trunc"); !strings.Contains(out, podID) {
		t.Errorf("hull pod ls -A:\n%s\nwant the sandbox %s", out, podID)
	}
	if out := hull("images"); !strings.Contains(out, f.Busybox.Repo) {
		t.Errorf("hull images:\n%s\nwant the image kubelet pulled, %s", out, f.Busybox.Repo)
	}

	if out := hull("why", crash); !strings.Contains(out, "exited with code 3") || !strings.Contains(out, "boom-before-exit") {
		t.Errorf("hull why on a CRI container:\n%s\nwant the exit code and its last line", out)
	}
	if out := hull("why", "pod/"+podID[:12]); !strings.Contains(out, "container k8s_crash_web") || !strings.Contains(out, "exited with code 3") ||
		!strings.Contains(out, "boom-before-exit") || !strings.Contains(out, "Container k8s_sleeper_web") {
		t.Errorf("hull why pod/ID:\n%s\nwant the crashed container named, its exit code and last line, and each container", out)
	}

	// An OOM kill: the limit and the peak.
	oomPod := sandboxConfig(t, "oom")
	oomID := runSandbox(t, c, oomPod)
	hog := createContainer(t, c, f, oomID, oomPod, "hog", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}}
	}, "sh", "-c", "tail /dev/zero")
	startContainer(t, c, hog)
	if st := waitExited(t, c, hog); st.Reason != "OOMKilled" {
		t.Errorf("the hog ended %s (%d); want OOMKilled", st.Reason, st.ExitCode)
	}
	if out := hull("why", "pod/default/oom"); !strings.Contains(out, "OOM killer") {
		t.Errorf("hull why pod/NAMESPACE/NAME (the Kubernetes pod):\n%s\nwant the OOM kill", out)
	}
	if out := hull("why", "pod/"+oomID); !strings.Contains(out, "OOM killer") || !strings.Contains(out, "memory limit 32") || !strings.Contains(out, "peak usage") {
		t.Errorf("hull why pod/ID of an OOM kill:\n%s\nwant the OOM kill, the limit and the peak", out)
	}

	// A pull that failed for a pod: the registry's error.
	failPod := sandboxConfig(t, "pullfail")
	failID := runSandbox(t, c, failPod)
	missing := f.Registry + "/no/such-image:1"
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: missing}, SandboxConfig: failPod}); err == nil {
		t.Fatal("PullImage of a missing image succeeded")
	}
	out := hull("why", "pod/"+failID)
	if !strings.Contains(out, "Stage:     image pull") || !strings.Contains(out, missing) || !strings.Contains(out, "manifest unknown") {
		t.Errorf("hull why pod/ID after a failed pull:\n%s\nwant the pull stage, the image and the registry's error", out)
	}
	// A pull that then succeeds clears it.
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}, SandboxConfig: failPod}); err != nil {
		t.Fatal(err)
	}
	if out := hull("why", "pod/"+failID); strings.Contains(out, "image pull") {
		t.Errorf("hull why pod/ID after a good pull:\n%s\nwant the failure forgotten", out)
	}
}

// hullCLI runs the hull CLI on the server's roots and returns its output.
func hullCLI(t *testing.T, c *client, args ...string) string {
	t.Helper()
	argv := append([]string{"--root", c.root, "--run-root", filepath.Join(c.root, "run"), "--config", testenv.NetworkConfig(t, c.root)}, args...)
	out, err := exec.Command(os.Getenv("HULL_BIN"), argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("hull %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The cgroup a sandbox got from hull goes with the pod whoever removes
// it: hull pod rm -f of a CRI sandbox too.
func TestHullPodRmRemovesTheSandboxCgroup(t *testing.T) {
	c, _ := serveRuntime(t)
	top := "/hulltest-podrm-" + filepath.Base(c.root)
	t.Cleanup(func() { cgroupsRemove(top) })
	cfg := sandboxConfig(t, "rmme")
	cfg.Linux.CgroupParent = top + "/burstable/poduid-web"
	id := runSandbox(t, c, cfg)
	cg, err := cgroups.New(cfg.Linux.CgroupParent)
	if err != nil {
		t.Fatal(err)
	}
	if !cg.Exists() {
		t.Fatalf("no pod cgroup %s", cfg.Linux.CgroupParent)
	}
	hullCLI(t, c, "pod", "rm", "-f", id)
	for _, mt := range cg.Mounts() {
		if _, err := os.Stat(filepath.Join(mt.Mountpoint, top)); !os.IsNotExist(err) {
			t.Errorf("%s left after hull pod rm -f (%v)", filepath.Join(mt.Mountpoint, top), err)
		}
	}
}

// hull why pod/ID names a container whose CreateContainer was refused
// before the container was recorded (a mount source that cannot be made,
// a seccomp profile that is not there, an image volume refused, the image
// not on the node): the create stage, the container's name, the cause and
// what to do, the latest refusal first and every one listed, until a
// create of that name succeeds. A StartContainer that fails is the start
// stage with the entrypoint's error.
func TestWhyPodNamesTheCreateAndStartStages(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	hull := func(args ...string) string { t.Helper(); return hullCLI(t, c, args...) }
	pod := sandboxConfig(t, "refused")
	podID := runSandbox(t, c, pod)
	create := func(name string, mod func(*runtimeapi.ContainerConfig)) error {
		t.Helper()
		cc := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: f.Busybox.ConfigDigest, UserSpecifiedImage: f.Busybox.Ref},
			Command:  []string{"sleep", "60"},
			LogPath:  name + "/0.log",
		}
		mod(cc)
		_, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
		return err
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	badMount := func(cc *runtimeapi.ContainerConfig) {
		cc.Mounts = []*runtimeapi.Mount{{HostPath: file + "/sub", ContainerPath: "/data"}}
	}
	badProfile := func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/no/such/profile.json"}}}
	}
	writableImageVolume := func(cc *runtimeapi.ContainerConfig) {
		cc.Mounts = []*runtimeapi.Mount{{ContainerPath: "/iv", Image: &runtimeapi.ImageSpec{Image: f.Busybox.ConfigDigest}}}
	}
	missing := f.Registry + "/no/such-image:1"
	missingImage := func(cc *runtimeapi.ContainerConfig) {
		cc.Image = &runtimeapi.ImageSpec{Image: "sha256:" + strings.Repeat("0", 64), UserSpecifiedImage: missing}
	}
	cases := []struct {
		name  string
		mod   func(*runtimeapi.ContainerConfig)
		cause string // in the error
		next  string // in what to do
	}{
		{"mount", badMount, file + "/sub", "hostPath"},
		{"profile", badProfile, "/no/such/profile.json", "seccomp profile"},
		{"imagevol", writableImageVolume, "/iv", "image volume"},
		{"image", missingImage, "0000000", "hull pull " + missing},
	}
	for _, tc := range cases {
		if err := create(tc.name, tc.mod); err == nil {
			t.Fatalf("CreateContainer %s succeeded; want it refused", tc.name)
		}
		out := hull("why", "pod/"+podID)
		if !strings.Contains(out, "Stage:     create") || !strings.Contains(out, "container "+tc.name+" could not be created") ||
			!strings.Contains(out, tc.cause) || !strings.Contains(out, tc.next) {
			t.Errorf("hull why pod/ID after CreateContainer %s was refused:\n%s\nwant the create stage, the container, %q and %q", tc.name, out, tc.cause, tc.next)
		}
	}
	out := hull("why", "pod/"+podID)
	for _, tc := range cases {
		if !strings.Contains(out, "Container "+tc.name+": never created: ") {
			t.Errorf("hull why pod/ID:\n%s\nwant container %s listed as never created", out, tc.name)
		}
	}

	// A create of a name that succeeds clears its refusal; once none is
	// left, the pod is running again.
	for _, tc := range cases {
		if err := create(tc.name, func(*runtimeapi.ContainerConfig) {}); err != nil {
			t.Fatalf("CreateContainer %s: %v", tc.name, err)
		}
		if out := hull("why", "pod/"+podID); strings.Contains(out, "Container "+tc.name+": never created") {
			t.Errorf("hull why pod/ID after a good create of %s:\n%s\nwant its refusal forgotten", tc.name, out)
		}
	}
	if out := hull("why", "pod/"+podID); strings.Contains(out, "Stage:     create") {
		t.Errorf("hull why pod/ID after every create succeeded:\n%s\nwant no create stage", out)
	}

	// A start that fails: the start stage and the entrypoint's error.
	id := createContainer(t, c, f, podID, pod, "nocmd", nil, "/no/such/entrypoint")
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err == nil {
		t.Fatal("StartContainer of a missing entrypoint succeeded")
	}
	out = hull("why", "pod/"+podID)
	if !strings.Contains(out, "Stage:     start") || !strings.Contains(out, "container k8s_nocmd_refused") ||
		!strings.Contains(out, "/no/such/entrypoint") || !strings.Contains(out, "command in the Pod") {
		t.Errorf("hull why pod/ID after a failed start:\n%s\nwant the start stage, the container and its entrypoint's error", out)
	}
}
