package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A sandbox with a user namespace (kubelet's hostUsers: false): its
// containers see the mapping, their root writes a kubelet volume (an
// idmapped bind) whose files keep the host's ids, and bad options are
// InvalidArgument.
func TestPodUserNamespace(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	st, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if !st.RuntimeHandlers[0].GetFeatures().GetUserNamespaces() {
		t.Fatalf("Status: the default handler does not claim user namespaces: %v", st.RuntimeHandlers)
	}
	var cfg struct{ StateDir string }
	if err := json.Unmarshal([]byte(st.Info["config"]), &cfg); err != nil || cfg.StateDir == "" {
		t.Errorf("Status config %s: no stateDir (%v)", st.Info["config"], err)
	}
	// The run root is the test's temporary directory's, 0700 like its
	// parents: open them as /run is.
	run := filepath.Dir(cfg.StateDir)
	for d := filepath.Dir(run); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}

	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 100000}}
	pod := sandboxConfig(t, "userns")
	pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
	podID := runSandbox(t, c, pod)
	vol := t.TempDir()
	ctr := createContainer(t, c, f, podID, pod, "app", func(cc *runtimeapi.ContainerConfig) {
		cc.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", HostPath: vol}}
		cc.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: pod.Linux.SecurityContext.NamespaceOptions,
		}}
	}, "sleep", "600")
	startContainer(t, c, ctr)
	ex, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr, Timeout: 10,
		Cmd: []string{"sh", "-c", "cat /proc/self/uid_map; echo x > /vol/f && touch /made && id -u"}})
	if got := strings.Fields(string(ex.GetStdout())); err != nil || strings.Join(got, " ") != "0 1000 100000 0" {
		t.Fatalf("in the container: %q %q, %v; want the mapping and root writing /vol and /", ex.GetStdout(), ex.GetStderr(), err)
	}
	var fst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "f"), &fst); err != nil || fst.Uid != 0 {
		t.Errorf("the volume's file on the host: uid %d (%v), want 0 (idmapped: the host's ids)", fst.Uid, err)
	}
	ps, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if u := ps.GetStatus().GetLinux().GetNamespaces().GetOptions().GetUsernsOptions(); err != nil || u.GetMode() != runtimeapi.NamespaceMode_POD || u.GetUids()[0].GetHostId() != 1000 {
		t.Errorf("PodSandboxStatus user namespace = %v, %v", u, err)
	}

	for name, u := range map[string]*runtimeapi.UserNamespace{
		"two mappings":  {Mode: runtimeapi.NamespaceMode_POD, Uids: append(mapping, &runtimeapi.IDMapping{ContainerId: 0, HostId: 2000, Length: 100000}), Gids: mapping},
		"root unmapped": {Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 10}}, Gids: mapping},
		"container":     {Mode: runtimeapi.NamespaceMode_CONTAINER},
		"target":        {Mode: runtimeapi.NamespaceMode_TARGET},
	} {
		bad := sandboxConfig(t, "bad")
		bad.Linux.SecurityContext.NamespaceOptions.UsernsOptions = u
		if _, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: bad}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: RunPodSandbox = %v, want InvalidArgument", name, err)
		}
	}
}
