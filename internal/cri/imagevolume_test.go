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

// mountedAt says whether something is mounted at path (mountinfo).
func mountedAt(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// Image volumes: the image's root (or a directory of it) read-only at a
// path of the container, executable, reported in ContainerStatus with
// the image's ID; a writable one or a missing sub path refused; the
// image unmounted when its last container goes.
func TestImageVolumes(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "imgvol")
	podID := runSandbox(t, c, pod)
	ref := f.Busybox.ConfigDigest
	withVolume := func(path, sub string, ro bool) func(*runtimeapi.ContainerConfig) {
		return func(cc *runtimeapi.ContainerConfig) {
			cc.Mounts = append(cc.Mounts, &runtimeapi.Mount{ContainerPath: path, Readonly: ro, ImageSubPath: sub,
				Image: &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: f.Busybox.Ref}})
		}
	}
	exec := func(id string, cmd ...string) (string, int32) {
		t.Helper()
		r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
		if err != nil {
			t.Fatalf("exec %v: %v", cmd, err)
		}
		return string(r.Stdout) + string(r.Stderr), r.ExitCode
	}

	whole := createContainer(t, c, f, podID, pod, "whole", withVolume("/mnt/image", "", true), "sleep", "600")
	startContainer(t, c, whole)
	if out, code := exec(whole, "ls", "-A", "/mnt/image/bin/sh"); code != 0 {
		t.Errorf("ls the volume's /bin/sh: %d %s", code, out)
	}
	if out, code := exec(whole, "touch", "/mnt/image/written"); code == 0 {
		t.Errorf("touch in the volume succeeded: %s; want read-only", out)
	}
	if out, code := exec(whole, "/mnt/image/bin/ls", "/mnt/image"); code != 0 || !strings.Contains(out, "etc") {
		t.Errorf("run the volume's /bin/ls: %d %s; want it executable", code, out)
	}
	st := containerStatus(t, c, whole)
	var found *runtimeapi.Mount
	for _, m := range st.Mounts {
		if m.ContainerPath == "/mnt/image" {
			found = m
		}
	}
	if found == nil || found.GetImage().GetImageRef() != ref || found.GetImage().GetImage() != ref || found.HostPath != "" || !found.Readonly {
		t.Errorf("status mount = %v; want the image volume with image_ref %s", found, ref)
	}
	// The image's mount point: <run-root>/mounts/<short ID>.
	mp := filepath.Join(c.root, "run", "mounts", strings.TrimPrefix(ref, "sha256:")[:12])
	if !mountedAt(t, mp) {
		t.Fatalf("%s is not mounted while a container uses the image", mp)
	}

	sub := createContainer(t, c, f, podID, pod, "sub", withVolume("/mnt/etc", "etc", true), "sleep", "600")
	startContainer(t, c, sub)
	if out, code := exec(sub, "ls", "/mnt/etc/passwd"); code != 0 {
		t.Errorf("ls /mnt/etc/passwd (sub path etc): %d %s", code, out)
	}
	if _, code := exec(sub, "ls", "/mnt/etc/etc/passwd"); code == 0 {
		t.Error("the whole image is mounted, not its sub path")
	}

	// Refused: writable, a sub path the image lacks, one escaping it.
	for _, bad := range []func(*runtimeapi.ContainerConfig){
		withVolume("/mnt/x", "", false),
		withVolume("/mnt/x", "not-existing", true),
		withVolume("/mnt/x", "../../etc", true),
	} {
		cc := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}, Command: []string{"true"}}
		bad(cc)
		if _, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateContainer with %v: %v; want InvalidArgument", cc.Mounts[0], err)
		}
	}
	// Not pulled: not found, saying to pull.
	cc := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: f.Busybox.Ref}, Command: []string{"true"},
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/mnt/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "sha256:" + strings.Repeat("0", 64)}}}}
	if _, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod}); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "pull it first") {
		t.Errorf("CreateContainer with an image not pulled: %v; want NotFound saying to pull it", err)
	}
	if !mountedAt(t, mp) {
		t.Fatal("a refused volume released the image two containers use")
	}

	// The image is not removed while a container mounts it.
	if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "mounted as a volume") {
		t.Errorf("RemoveImage of a mounted image: %v; want FailedPrecondition", err)
	}

	// Released with the last container that binds it.
	if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: whole}); err != nil {
		t.Fatal(err)
	}
	if !mountedAt(t, mp) {
		t.Fatal("the image was unmounted while another container binds it")
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if mountedAt(t, mp) {
		t.Errorf("%s is still mounted after its containers were removed", mp)
	}
}
