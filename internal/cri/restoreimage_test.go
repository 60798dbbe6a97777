package cri

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/checkpoint"
	"hull/internal/engine"
	"hull/internal/testenv"
)

// TestRestoreContainerFromCheckpointImage is Kubernetes' restore path: a
// counting container is checkpointed into a checkpoint image (hull
// container checkpoint --create-image's engine call), which is pushed to
// a registry and removed from the node; PullImage brings it back (its
// status shows the annotation), and CreateContainer naming it by ID, as
// kubelet does after the pull, gives a CREATED container that
// StartContainer restores: it counts on from where it was. A checkpoint
// image whose layer has no config.dump fails with InvalidArgument and
// leaves nothing behind; a normal image is not taken for one.
func TestRestoreContainerFromCheckpointImage(t *testing.T) {
	testenv.NeedCRIU(t)
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "cia")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "count", nil, "sh", "-c", memoryCounter)
	startContainer(t, c, id)
	waitNumbers(t, pod, "count", 10)
	ref := fmt.Sprintf("%s/hull-test/ckimg-%d:1", f.Registry, time.Now().UnixNano())
	if _, err := c.eng.Checkpoint(ctx, id, engine.CheckpointOptions{CreateImage: ref, LeaveRunning: true, Timeout: time.Minute}); err != nil {
		t.Fatalf("checkpoint --create-image: %v", err)
	}
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	before := loggedNumbers(pod, "count")
	if _, err := c.eng.Push(ctx, ref, nil); err != nil {
		t.Fatalf("push the checkpoint image: %v", err)
	}
	if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil || st.Image != nil {
		t.Fatalf("the checkpoint image is still on the node: %v %v", st, err)
	}

	pulled, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("PullImage of the checkpoint image: %v", err)
	}
	st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || st.Image == nil || st.Image.Id != pulled.ImageRef {
		t.Fatalf("ImageStatus of the pulled checkpoint image: %v %v", st, err)
	}
	if got := st.Image.Spec.GetAnnotations()[checkpoint.ImageAnnotation]; got != "count" {
		t.Errorf("the checkpoint image's %s annotation is %q; want the container's name", checkpoint.ImageAnnotation, got)
	}
	list, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, img := range list.Images {
		listed = listed || img.Id == pulled.ImageRef
	}
	if !listed {
		t.Errorf("ListImages does not list the checkpoint image %s", pulled.ImageRef)
	}

	pod2 := sandboxConfig(t, "cib")
	parent := ownCgroupParent(t, pod2)
	pod2ID := runSandbox(t, c, pod2)

	// A checkpoint image whose layer is no checkpoint archive.
	badRef := pushBadCheckpointImage(t, f.Registry)
	badPulled, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: badRef}})
	if err != nil {
		t.Fatal(err)
	}
	p0, c0, m0 := leftovers(t, c)
	g0 := cgroupsUnder(parent)
	_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod2ID, SandboxConfig: pod2, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, LogPath: "bad/0.log",
		Image: &runtimeapi.ImageSpec{Image: badPulled.ImageRef, UserSpecifiedImage: badRef},
	}})
	t.Logf("CreateContainer from the bad checkpoint image: %v", err)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no config.dump") || !strings.Contains(err.Error(), badRef) {
		t.Errorf("CreateContainer from a checkpoint image without config.dump: %v; want InvalidArgument naming it and config.dump", err)
	}
	if p, cs, m := leftovers(t, c); p != p0 || cs != c0 || m != m0 || cgroupsUnder(parent) != g0 {
		t.Errorf("the failed create left sandboxes %d->%d, containers %d->%d, mounts %d->%d, cgroups %d->%d", p0, p, c0, cs, m0, m, g0, cgroupsUnder(parent))
	}

	// A normal image is not taken for a checkpoint image.
	plain := createContainer(t, c, f, pod2ID, pod2, "plain", nil, "sh", "-c", "echo plain; sleep 1000")
	if cs := containerStatus(t, c, plain); cs.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("a container of a normal image is %v", cs.State)
	}
	if _, err := c.eng.OpenCheckpointImage(ctx, f.Busybox.Ref, engine.CheckpointImageOptions{}); !errdefs.IsInvalidArgument(err) || !strings.Contains(fmt.Sprint(err), "not a checkpoint image") {
		t.Errorf("OpenCheckpointImage of busybox: %v; want InvalidArgument: not a checkpoint image", err)
	}

	rid := createContainer(t, c, f, pod2ID, pod2, "count", func(cc *runtimeapi.ContainerConfig) {
		cc.Image = &runtimeapi.ImageSpec{Image: pulled.ImageRef, UserSpecifiedImage: ref}
	})
	if cs := containerStatus(t, c, rid); cs.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Fatalf("the container created from the checkpoint image is %v, not CREATED", cs.State)
	}
	if ns := loggedNumbers(pod2, "count"); len(ns) > 0 {
		t.Errorf("the restored process ran before StartContainer: %v", ns)
	}
	startContainer(t, c, rid)
	if cs := containerStatus(t, c, rid); cs.State != runtimeapi.ContainerState_CONTAINER_RUNNING || cs.Image.GetUserSpecifiedImage() != ref {
		t.Errorf("restored container: %v, image %v; want RUNNING, the Pod's image %s", cs.State, cs.Image, ref)
	}
	after := waitNumbers(t, pod2, "count", 5)
	t.Logf("checkpointed at %d, restored from %d", before[len(before)-1], after[0])
	checkContinues(t, "CreateContainer from the checkpoint image", before, after)
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: rid, Cmd: []string{"cat", "/state"}, Timeout: 10})
	if err != nil || string(r.Stdout) != "before\n" {
		t.Errorf("/state in the restored container: %v %q", err, r.GetStdout())
	}
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: rid, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	waitExited(t, c, rid)
}

// pushBadCheckpointImage pushes a checkpoint image (annotated as one)
// whose layer holds a spec.dump but no config.dump, and returns its name.
func pushBadCheckpointImage(t *testing.T, registry string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(`{"ociVersion":"1.0.2"}`)
	tw.WriteHeader(&tar.Header{Name: checkpoint.SpecFile, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}}); err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{checkpoint.PodmanImageAnnotation: "bad"}).(v1.Image)
	ref := fmt.Sprintf("%s/hull-test/badck-%d:1", registry, time.Now().UnixNano())
	dst, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}
