package cri

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
)

// execOut runs cmd in container id through ExecSync and returns its
// stdout, failing the test on an error or a non-zero exit.
func execOut(t *testing.T, c *client, id string, cmd ...string) string {
	t.Helper()
	r, err := c.rt.ExecSync(ctxT(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("ExecSync %q = %v, %v", cmd, r, err)
	}
	return string(r.Stdout)
}

// devicesCgroup is the v1 devices cgroup directory of container id
// (named for its ID; the container's own view is its cgroup namespace's).
func devicesCgroup(t *testing.T, id string) string {
	t.Helper()
	found := ""
	filepath.WalkDir(filepath.Join(cgroups.DefaultMountpoint, "devices"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.Contains(d.Name(), id) {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no devices cgroup named for container %s", id)
	}
	return found
}

// A container config's devices (kubelet's device plugins hand them over
// so) are in the container under their container paths, and its device
// cgroup allows them with the permissions given: /dev/null as /dev/xnull
// ("rwm"), and /dev/loop-control, which the default rules do not allow,
// as /dev/xloop read-only.
func TestContainerDevices(t *testing.T) {
	c, f := serveRuntime(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control on this host")
	}
	pod := sandboxConfig(t, "devices")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "dev", func(cc *runtimeapi.ContainerConfig) {
		cc.Devices = []*runtimeapi.Device{
			{ContainerPath: "/dev/xnull", HostPath: "/dev/null", Permissions: "rwm"},
			{ContainerPath: "/dev/xloop", HostPath: "/dev/loop-control", Permissions: "r"},
		}
	}, "sleep", "600")
	startContainer(t, c, id)

	if out := execOut(t, c, id, "stat", "-c", "%F %t:%T", "/dev/xnull", "/dev/xloop"); out != "character special file 1:3\ncharacter special file a:ed\n" {
		t.Errorf("the devices in the container: %q; want /dev/xnull 1:3 and /dev/xloop 10:237 (hex a:ed)", out)
	}
	if out := execOut(t, c, id, "sh", "-c", "echo x >/dev/xnull && echo wrote; (: </dev/xloop) && echo read; (: >/dev/xloop) 2>/dev/null || echo write-refused"); out != "wrote\nread\nwrite-refused\n" {
		t.Errorf("using the devices: %q; want /dev/xnull writable, /dev/xloop readable only", out)
	}
	if cgroups.DetectMode() == cgroups.Unified {
		return // the rules are an eBPF program there, checked by use above
	}
	list, err := os.ReadFile(filepath.Join(devicesCgroup(t, id), "devices.list"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"c 1:3 rwm", "c 10:237 r"} {
		if !strings.Contains("\n"+string(list), "\n"+want+"\n") {
			t.Errorf("the container's devices.list lacks %q:\n%s", want, list)
		}
	}
}

// UpdateContainerResources applies what this host's cgroups can enforce
// and refuses, with FailedPrecondition naming the host's cgroups, what
// they cannot; oom_score_adj reaches the running processes.
func TestUpdateContainerResourcesHostLimits(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "update")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "upd", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}
	}, "sleep", "600")
	startContainer(t, c, id)
	update := func(r *runtimeapi.LinuxContainerResources) error {
		_, err := c.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: r})
		return err
	}
	mode := cgroups.DetectMode()
	// cgroupValue is the container's cgroup file name, from whichever of
	// its hierarchies has it.
	cgroupValue := func(name string) string {
		t.Helper()
		for _, dir := range cgroupDirsOf(t, id) {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return "(no " + name + ")"
	}

	// oom_score_adj: recorded, and the container's processes have it.
	if err := update(&runtimeapi.LinuxContainerResources{OomScoreAdj: 500}); err != nil {
		t.Fatalf("update oom_score_adj: %v", err)
	}
	if out := execOut(t, c, id, "cat", "/proc/1/oom_score_adj"); out != "500\n" {
		t.Errorf("the container's process has oom_score_adj %q after the update; want 500", out)
	}
	if s := containerStatus(t, c, id); s.Resources.Linux.OomScoreAdj != 500 {
		t.Errorf("ContainerStatus oom_score_adj = %d; want 500", s.Resources.Linux.OomScoreAdj)
	}
	if err := update(&runtimeapi.LinuxContainerResources{OomScoreAdj: 2000}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "-1000 to 1000") {
		t.Errorf("update oom_score_adj 2000: %v; want InvalidArgument naming the range", err)
	}

	// unified: only on a cgroup v2 host.
	unified := map[string]string{"memory.high": "50331648"}
	err := update(&runtimeapi.LinuxContainerResources{Unified: unified})
	if mode == cgroups.Unified {
		if got := cgroupValue("memory.high"); err != nil || got != unified["memory.high"] {
			t.Errorf("update unified on a v2 host: %v, memory.high %s; want %s", err, got, unified["memory.high"])
		}
	} else if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cannot update container k8s_upd_") || !strings.Contains(err.Error(), "memory.high") ||
		!strings.Contains(err.Error(), "cgroup v2 host; this host's cgroups are "+mode.String()) {
		t.Errorf("update unified on a %s host: %v; want FailedPrecondition naming the container, the key and the host's cgroups", mode, err)
	}
	// CreateContainer takes it on a v2 host and refuses it alike elsewhere
	// (it would fail at start).
	cc := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "unified"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref},
		Command: []string{"true"}, LogPath: "unified/0.log", Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{Unified: unified}}}
	made, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
	if err == nil {
		t.Cleanup(func() {
			c.rt.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: made.ContainerId})
		})
	}
	if mode == cgroups.Unified && err != nil {
		t.Errorf("CreateContainer with unified on a v2 host: %v", err)
	} else if mode != cgroups.Unified && status.Code(err) != codes.FailedPrecondition {
		t.Errorf("CreateContainer with unified on a %s host: %v; want FailedPrecondition", mode, err)
	}

	// hugepages: kubelet's zeros for the sizes not asked for always pass;
	// a limit is applied where the hugetlb controller is, else refused.
	zeros := []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}}
	if err := update(&runtimeapi.LinuxContainerResources{HugepageLimits: zeros}); err != nil {
		t.Errorf("update with kubelet's zero hugepage limits: %v", err)
	}
	err = update(&runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}}})
	if cgroups.HugetlbSupported() {
		file := "hugetlb.2MB.limit_in_bytes"
		if mode == cgroups.Unified {
			file = "hugetlb.2MB.max"
		}
		if s, got := containerStatus(t, c, id), cgroupValue(file); err != nil || len(s.Resources.Linux.HugepageLimits) == 0 || got != strconv.Itoa(4<<20) {
			t.Errorf("update a hugepage limit with hugetlb: %v, status %v, %s %s; want %d", err, s.Resources.Linux.HugepageLimits, file, got, 4<<20)
		}
	} else if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cannot update container k8s_upd_") || !strings.Contains(err.Error(), "no hugetlb controller") || !strings.Contains(err.Error(), "cgroup "+mode.String()) {
		t.Errorf("update a hugepage limit without hugetlb: %v; want FailedPrecondition naming the container and the missing controller", err)
	}

	// The refusals changed nothing: the memory limit is still the one set.
	if s := containerStatus(t, c, id); s.Resources.Linux.MemoryLimitInBytes != 64<<20 || s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after the refused updates: %v", s)
	}
	mem := "memory.limit_in_bytes"
	if mode == cgroups.Unified {
		mem = "memory.max"
	}
	if got := cgroupValue(mem); got != strconv.Itoa(64<<20) {
		t.Errorf("after the refused updates, the container's %s is %s; want %d", mem, got, 64<<20)
	}
}

// kubelet sends a hugepage limit for every page size the node has. Where
// the hugetlb controller exists they are set; where it does not (this
// host's v1 hierarchies have none) they are dropped, as runc's cgroupfs
// manager does, and the container runs: refusing would fail every pod
// kubelet makes here.
func TestHugepageLimitsAsKubeletSendsThem(t *testing.T) {
	c, f := serveRuntime(t)
	pod := sandboxConfig(t, "huge")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "huge", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}},
		}}
	}, "true")
	startContainer(t, c, id)
	if s := waitExited(t, c, id); s.ExitCode != 0 {
		t.Errorf("a container with kubelet's hugepage limits (hugetlb here: %v) exited %d: %s", cgroups.HugetlbSupported(), s.ExitCode, s.Message)
	}
}
