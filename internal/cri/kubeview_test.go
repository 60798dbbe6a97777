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
