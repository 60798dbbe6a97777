package cri

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus with verbose answers crictl inspect's .info as
// containerd does: the sandbox, the process's pid, the runtime spec, the
// snapshot; a container just created (its spec written after the
// create's answer) has its spec too, an exited one no pid. Without
// verbose, no info. PodSandboxStatus verbose has the pod record, its
// PID namespace holder's pid and its pinned namespace files, which are
// the container's own namespaces.
func TestVerboseStatusInfo(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "verbose")
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	podID := runSandbox(t, c, pod)

	type containerInfo struct {
		SandboxID   string     `json:"sandboxID"`
		Pid         int        `json:"pid"`
		Snapshotter string     `json:"snapshotter"`
		SnapshotKey string     `json:"snapshotKey"`
		RuntimeType string     `json:"runtimeType"`
		RuntimeSpec specs.Spec `json:"runtimeSpec"`
	}
	verbose := func(id string) containerInfo {
		t.Helper()
		r, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			t.Fatal(err)
		}
		var info containerInfo
		if err := json.Unmarshal([]byte(r.Info["info"]), &info); err != nil {
			t.Fatalf("verbose ContainerStatus info %q: %v", r.Info, err)
		}
		if info.SandboxID != podID || info.Snapshotter == "" || info.SnapshotKey == "" || info.RuntimeType != "hull" {
			t.Errorf("verbose info of %s: %+v; want sandbox %s, the snapshot, runtime hull", id[:12], info, podID)
		}
		return info
	}

	// Just created: the spec is there, no pid.
	id := createContainer(t, c, f, podID, pod, "sleeper", nil, "sleep", "60")
	if info := verbose(id); info.Pid != 0 || info.RuntimeSpec.Process == nil || !slices.Equal(info.RuntimeSpec.Process.Args, []string{"sleep", "60"}) {
		t.Errorf("created container's info: pid %d, spec process %+v; want 0 and the spec's args [sleep 60]", info.Pid, info.RuntimeSpec.Process)
	}
	startContainer(t, c, id)
	info := verbose(id)
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(info.Pid) + "/cmdline")
	if info.Pid <= 0 || !strings.HasPrefix(string(cmdline), "sleep\x0060") {
		t.Errorf("running container's info: pid %d (cmdline %q); want its process", info.Pid, cmdline)
	}
	if r, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); err != nil || r.Info != nil {
		t.Errorf("ContainerStatus without verbose: info %v, %v; want none", r.GetInfo(), err)
	}

	// The sandbox: its record, the holder of its PID namespace, and the
	// namespace files the container joined.
	r, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var pinfo struct {
		ID          string            `json:"ID"`
		Pid         int               `json:"pid"`
		NetNSClosed bool              `json:"netNamespaceClosed"`
		Namespaces  map[string]string `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(r.Info["info"]), &pinfo); err != nil {
		t.Fatalf("verbose PodSandboxStatus info %q: %v", r.Info, err)
	}
	if pinfo.ID != podID || pinfo.Pid <= 0 || pinfo.NetNSClosed || !strings.Contains(r.Info["info"], `"LogDirectory"`) {
		t.Errorf("sandbox info %s; want its record, the PID holder's pid, the network open", r.Info["info"])
	}
	for _, kind := range []string{"net", "ipc", "uts", "pid"} {
		var pinned, joined unix.Stat_t
		err1 := unix.Stat(pinfo.Namespaces[kind], &pinned)
		err2 := unix.Stat("/proc/"+strconv.Itoa(info.Pid)+"/ns/"+kind, &joined)
		if err1 != nil || err2 != nil || pinned.Ino != joined.Ino {
			t.Errorf("sandbox info's %s namespace %q (%v, %v): want the one the container is in", kind, pinfo.Namespaces[kind], err1, err2)
		}
	}

	// What crictl inspect and inspectp show of them (scripts read
	// .info.pid), when crictl is built.
	t.Run("crictl", func(t *testing.T) {
		c := crictl{t: t, bin: crictlPath(t), sock: c.sock}
		const tmpl = "{{.info.pid}} {{.info.runtimeType}}"
		if out := strings.TrimSpace(c.must("inspect", "-o", "go-template", "--template", tmpl, id)); out != strconv.Itoa(info.Pid)+" hull" {
			t.Errorf("crictl inspect %s: %q; want %d hull", tmpl, out, info.Pid)
		}
		if out := strings.TrimSpace(c.must("inspectp", "-o", "go-template", "--template", tmpl, podID)); out != strconv.Itoa(pinfo.Pid)+" hull" {
			t.Errorf("crictl inspectp %s: %q; want %d hull", tmpl, out, pinfo.Pid)
		}
	})

	// Exited: no pid.
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if info := verbose(id); info.Pid != 0 || info.RuntimeSpec.Process == nil {
		t.Errorf("exited container's info: pid %d, spec %v; want no pid, the spec", info.Pid, info.RuntimeSpec.Process != nil)
	}
}
