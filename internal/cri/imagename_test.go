package cri

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/testenv"
)

// A container created as kubelet creates it, from the image's ID with the
// pod's name for the image in user_specified_image, is named by that name
// in ContainerStatus, ListContainers and hull ps (kubelet shows the
// status's image.image as the pod's containerStatuses[].image), with the
// repo digest as image_ref and the ID as image_id; an image pulled from
// an index has the index's repo digest.
func TestContainerImageNamedAsThePodNamedIt(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	// A second tag, sorting before the pod's: the pod's own is shown.
	other := f.Registry + "/aaa/other:1"
	if err := c.eng.ImageTag(ctx, f.Busybox.Ref, other); err != nil {
		t.Fatal(err)
	}
	pod := sandboxConfig(t, "named")
	podID := runSandbox(t, c, pod)
	asKubelet := func(id, name string) func(*runtimeapi.ContainerConfig) {
		return func(cc *runtimeapi.ContainerConfig) {
			cc.Image = &runtimeapi.ImageSpec{Image: id, UserSpecifiedImage: name}
		}
	}
	ctr := createContainer(t, c, f, podID, pod, "web", asKubelet(f.Busybox.ConfigDigest, f.Busybox.Ref), "sleep", "60")

	// An index: its repo digest is the index's, not the platform image's.
	_, mf := testenv.Setup(t, testenv.FixMulti)
	pull, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: mf.Multi.Ref}})
	if err != nil {
		t.Fatal(err)
	}
	multi := createContainer(t, c, f, podID, pod, "multi", asKubelet(pull.ImageRef, mf.Multi.Ref), "sleep", "60")

	type want struct{ image, user, ref, id string }
	wants := map[string]want{
		ctr:   {f.Busybox.Ref, f.Busybox.Ref, f.Busybox.ByDigest(), f.Busybox.ConfigDigest},
		multi: {mf.Multi.Ref, mf.Multi.Ref, mf.Multi.ByDigest(), pull.ImageRef},
	}
	check := func(call, id string, img *runtimeapi.ImageSpec, ref, imageID string) {
		t.Helper()
		w := wants[id]
		if img.GetImage() != w.image || img.GetUserSpecifiedImage() != w.user || ref != w.ref || imageID != w.id {
			t.Errorf("%s of %s: image %q, user_specified_image %q, image_ref %q, image_id %q;\nwant %q, %q, %q, %q",
				call, id[:12], img.GetImage(), img.GetUserSpecifiedImage(), ref, imageID, w.image, w.user, w.ref, w.id)
		}
	}
	for id := range wants {
		st := containerStatus(t, c, id)
		check("ContainerStatus", id, st.Image, st.ImageRef, st.ImageId)
	}
	list, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Containers) != len(wants) {
		t.Fatalf("ListContainers: %d containers; want %d", len(list.Containers), len(wants))
	}
	for _, lc := range list.Containers {
		check("ListContainers", lc.Id, lc.Image, lc.ImageRef, lc.ImageId)
	}

	// hull ps -A: the name, not the ID.
	out := hullCLI(t, c, "ps", "-a", "-A", "--no-trunc", "--format", "{{.ID}} {{.Image}}")
	for id, w := range wants {
		if !strings.Contains(out, id+" "+w.image+"\n") {
			t.Errorf("hull ps -a -A:\n%s\nwant %s shown with its image %s", out, id[:12], w.image)
		}
	}
	if strings.Contains(out, "sha256:") {
		t.Errorf("hull ps -a -A:\n%s\nwant no image ID", out)
	}

	// The pod's tag removed by another process (the view's image records
	// follow the image generation): the image's other tag.
	hullCLI(t, c, "rmi", f.Busybox.Ref)
	if st := containerStatus(t, c, ctr); st.Image.GetImage() != other || st.Image.GetUserSpecifiedImage() != f.Busybox.Ref {
		t.Errorf("ContainerStatus after hull rmi %s: image %q, user_specified_image %q; want %q, %q", f.Busybox.Ref, st.Image.GetImage(), st.Image.GetUserSpecifiedImage(), other, f.Busybox.Ref)
	}

	// The image removed: named as kubelet sent it, image_ref its ID.
	if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: pull.ImageRef}}); err != nil {
		t.Fatal(err)
	}
	wants[multi] = want{pull.ImageRef, mf.Multi.Ref, pull.ImageRef, pull.ImageRef}
	st := containerStatus(t, c, multi)
	check("ContainerStatus after RemoveImage", multi, st.Image, st.ImageRef, st.ImageId)
}
