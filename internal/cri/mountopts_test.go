package cri

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A recursive read-only bind: a mount below the source is read-only in
// the container too (a plain read-only bind leaves it writable), and
// Status claims the feature.
func TestRecursiveReadOnlyMount(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	st, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || len(st.RuntimeHandlers) != 1 || !st.RuntimeHandlers[0].GetFeatures().GetRecursiveReadOnlyMounts() {
		t.Errorf("Status handlers = %v, %v; want recursive read-only mounts", st.GetRuntimeHandlers(), err)
	}
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	pod := sandboxConfig(t, "rro")
	podID := runSandbox(t, c, pod)
	bind := func(rro bool) func(*runtimeapi.ContainerConfig) {
		return func(cc *runtimeapi.ContainerConfig) {
			cc.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true, RecursiveReadOnly: rro}}
		}
	}
	for _, tc := range []struct {
		name string
		rro  bool
	}{{"plain", false}, {"recursive", true}} {
		id := createContainer(t, c, f, podID, pod, tc.name, bind(tc.rro), "sleep", "600")
		startContainer(t, c, id)
		r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"touch", "/data/sub/x"}, Timeout: 10})
		if err != nil {
			t.Fatal(err)
		}
		if wrote := r.ExitCode == 0; wrote == tc.rro {
			t.Errorf("%s read-only bind: touch below it exited %d (%s)", tc.name, r.ExitCode, r.Stderr)
		}
		if s := containerStatus(t, c, id); len(s.Mounts) != 1 || s.Mounts[0].RecursiveReadOnly != tc.rro {
			t.Errorf("%s: status mounts = %v", tc.name, s.Mounts)
		}
	}
	// recursive_read_only without readonly is refused, as the CRI says.
	cc := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}, Command: []string{"true"},
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, RecursiveReadOnly: true}}}
	if _, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("recursive_read_only without readonly: %v; want InvalidArgument", err)
	}
}
