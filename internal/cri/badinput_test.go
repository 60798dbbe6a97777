package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Bad input gets the code kubelet acts on and a message naming the
// cause.
func TestBadInput(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "bad")
	podID := runSandbox(t, c, pod)
	create := func(mod func(*runtimeapi.ContainerConfig)) error {
		cc := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref},
			Command: []string{"true"}, LogPath: "c/0.log",
		}
		mod(cc)
		r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
		if err == nil {
			c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: r.ContainerId})
		}
		return err
	}
	missingImage := f.Registry + "/no/such-image:1"
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		says []string
	}{
		{"pull a missing image", func() error {
			_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: missingImage}})
			return err
		}, codes.NotFound, []string{"no/such-image"}},
		{"create from an image not pulled", func() error {
			return create(func(cc *runtimeapi.ContainerConfig) { cc.Image.Image = missingImage })
		}, codes.NotFound, []string{"no/such-image"}},
		{"create in an unknown sandbox", func() error {
			_, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "0123456789abcdef", Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}}, SandboxConfig: pod})
			return err
		}, codes.NotFound, []string{"0123456789abcdef"}},
		{"status of an unknown sandbox", func() error {
			_, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "0123456789abcdef"})
			return err
		}, codes.NotFound, []string{"0123456789abcdef"}},
		{"status of an unknown container", func() error {
			_, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "0123456789abcdef"})
			return err
		}, codes.NotFound, []string{"0123456789abcdef"}},
		{"a mount source that cannot exist", func() error {
			return create(func(cc *runtimeapi.ContainerConfig) {
				cc.Mounts = []*runtimeapi.Mount{{HostPath: "/etc/hostname/hull-test-src", ContainerPath: "/data"}}
			})
		}, codes.InvalidArgument, []string{"/etc/hostname/hull-test-src"}},
		{"a seccomp profile that does not exist", func() error {
			return create(func(cc *runtimeapi.ContainerConfig) {
				cc.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent/profile.json"}}}
			})
		}, codes.InvalidArgument, []string{"/nonexistent/profile.json"}},
		{"a seccomp profile that is not one", func() error {
			return create(func(cc *runtimeapi.ContainerConfig) {
				cc.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/etc/hostname"}}}
			})
		}, codes.InvalidArgument, []string{"/etc/hostname"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code {
				t.Fatalf("%v; want %v", err, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v; want it to name %s", err, s)
				}
			}
		})
	}

	// A missing mount source is made a directory, as containerd and
	// CRI-O do (kubelet's hostPath volumes of no type expect it).
	src := filepath.Join(t.TempDir(), "made", "here")
	if err := create(func(cc *runtimeapi.ContainerConfig) {
		cc.Mounts = []*runtimeapi.Mount{{HostPath: src, ContainerPath: "/data"}}
	}); err != nil {
		t.Errorf("CreateContainer with a missing mount source: %v; want it made", err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		t.Errorf("missing mount source: %v; want a directory made", err)
	}

	// runAsNonRoot is kubelet's check, against the user ImageStatus
	// reports: the fixture runs as root (uid 0), which kubelet refuses
	// for such a pod ("container has runAsNonRoot and image will run as
	// root"; an image with no USER reports neither uid nor username,
	// which kubelet takes for root, as from containerd).
	st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}})
	if err != nil || st.Image.GetUid().GetValue() != 0 || st.Image.Username != "" {
		t.Errorf("ImageStatus user = uid %v username %q, %v; want root for kubelet's runAsNonRoot check", st.GetImage().GetUid(), st.GetImage().GetUsername(), err)
	}
}
