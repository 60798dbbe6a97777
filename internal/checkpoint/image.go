package checkpoint

// A checkpoint image is an OCI image whose single layer holds a
// checkpoint archive's members at its root (ImagesDir, SpecFile,
// ConfigFile, RootfsDiffFile), its manifest annotated with the
// checkpointed container's name. It is how Kubernetes restores a
// container: the image is pushed to a registry and named as a Pod
// container's image; kubelet pulls it like any image, and the runtime's
// CreateContainer sees the annotation and restores instead of running
// it. CRI-O's annotation and podman's (podman container checkpoint
// --create-image) are both written and both recognised.
const (
	// ImageAnnotation is CRI-O's: the checkpointed container's name.
	ImageAnnotation = "io.kubernetes.cri-o.annotations.checkpoint.name"
	// PodmanImageAnnotation is podman's, of the same meaning.
	PodmanImageAnnotation = "io.podman.annotations.checkpoint.name"
)

// ImageName is the checkpointed container's name an image's manifest
// annotations carry, "" when the image is not a checkpoint image. It is
// two map look-ups: cheap enough for every container creation.
func ImageName(annotations map[string]string) string {
	if n := annotations[ImageAnnotation]; n != "" {
		return n
	}
	return annotations[PodmanImageAnnotation]
}

// ImageAnnotations are the manifest annotations of a checkpoint image of
// the container named name.
func ImageAnnotations(name string) map[string]string {
	return map[string]string{ImageAnnotation: name, PodmanImageAnnotation: name}
}
