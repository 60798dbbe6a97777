package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	goruntime "runtime"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"hull/internal/checkpoint"
	"hull/internal/image"
	"hull/internal/reference"
)

// A checkpoint image (package checkpoint) carries a checkpoint archive
// through registries: `hull container checkpoint --create-image NAME`
// stores one (the archive as its only layer, the checkpointed
// container's name in its manifest annotations), so does `hull image
// checkpoint ARCHIVE NAME` from an archive (CreateCheckpointImage: what
// kubelet's checkpoint API leaves), `hull push` sends it,
// and a restore reads the archive back out of its layer
// (OpenCheckpointImage): `hull container restore IMAGE`, or a CRI
// CreateContainer naming it, as kubelet does for a Pod whose container
// image is one. Creating a container from it in any other way fails with
// a CheckpointImageError, found on the image record Create resolves
// anyway (its annotations are kept in memory with it), so no other image
// pays for the check.

// CheckpointImageError is a container created (not restored) from a
// checkpoint image. Its class is errdefs.ErrInvalidArgument; the CRI
// takes it as the sign to restore instead.
type CheckpointImageError struct {
	Image     string // as named
	ID        string // the image ID
	Container string // the checkpointed container's name
}

func (e *CheckpointImageError) Error() string {
	return fmt.Sprintf("image %s is a checkpoint image (of container %s), not an image to run: restore it with hull container restore %s",
		e.Image, e.Container, e.Image)
}

func (e *CheckpointImageError) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

// checkNotCheckpointImage fails a creation (not a restore) from a
// checkpoint image: two look-ups in the record's annotations.
func checkNotCheckpointImage(o *CreateOptions, rec *image.Record) error {
	if o.Checkpoint != nil {
		return nil
	}
	if name := checkpoint.ImageName(rec.Annotations); name != "" {
		return &CheckpointImageError{Image: o.Config.Image, ID: rec.ID(), Container: name}
	}
	return nil
}

// createCheckpointImage stores the checkpoint archive of container c as
// a checkpoint image named name (storeCheckpointImage), of the platform
// of c's image. It returns the image ID.
func (e *Engine) createCheckpointImage(ctx context.Context, c *Container, archive, name string) (string, error) {
	ref, err := parseImageName("checkpoint --create-image", name)
	if err != nil {
		return "", err
	}
	rec, err := e.images.Resolve(ctx, c.ImageID)
	if err != nil {
		return "", fmt.Errorf("its image %s: %w", c.Image, err)
	}
	base, err := e.images.Config(rec)
	if err != nil {
		return "", fmt.Errorf("its image %s: %w", c.Image, err)
	}
	// A CRI container by its metadata name (the Pod's container name),
	// as CRI-O's annotation carries it; another by its own.
	cname := c.Name
	if n := c.Config.Labels[LabelCRIContainer]; n != "" {
		cname = n
	}
	return e.storeCheckpointImage(ctx, ref, archive, cname, base, "hull container checkpoint --create-image",
		fmt.Sprintf("checkpoint of container %s (%s) of image %s", c.Name, c.ID, c.Image))
}

// CreateCheckpointImage stores the checkpoint archive at archive (one
// written by kubelet's checkpoint API through the CRI, by hull container
// checkpoint --export, or by CRI-O or podman) as the checkpoint image
// name, as --create-image does from a running container: `hull image
// checkpoint`, the step CRI-O's users take with buildah. The image's
// annotation names the checkpointed container as its config.dump does
// (a CRI container by its metadata name); its platform is that of the
// checkpointed container's image when the store has it, else this
// host's (a checkpoint restores on the kind of machine it was taken on).
// It returns the image ID.
//
// The archive is read (not extracted) before anything is stored: a file
// that is not one (not a tar; no config.dump, spec.dump or CRIU images;
// a record of another version) is an invalid argument, a missing file
// not found; a name with a digest is an invalid argument.
func (e *Engine) CreateCheckpointImage(ctx context.Context, archive, name string) (string, error) {
	ref, err := parseImageName("image checkpoint", name)
	if err != nil {
		return "", err
	}
	if ref == nil {
		return "", errdefs.ErrInvalidArgument.WithMessage("image checkpoint: no image name given")
	}
	rec, err := readArchiveRecord(archive)
	if err != nil {
		return "", err
	}
	cname := rec.Name
	if rec.CRI != nil && rec.CRI.Name != "" {
		cname = rec.CRI.Name
	}
	var base *v1.ConfigFile
	if img, err := e.images.Resolve(ctx, rec.ImageID); err == nil {
		base, _ = e.images.Config(img)
	}
	id, err := e.storeCheckpointImage(ctx, ref, archive, cname, base, "hull image checkpoint",
		fmt.Sprintf("checkpoint of container %s (%s) of image %s", rec.Name, rec.ID, rec.Image))
	if err != nil {
		return "", fmt.Errorf("checkpoint image %s of %s: %w", name, archive, err)
	}
	return id, nil
}

// readArchiveRecord reads the record of the checkpoint archive at
// archive, checking on the way that it has the other members a restore
// needs (openCheckpoint's checks, by name, without extracting).
func readArchiveRecord(archive string) (checkpoint.Record, error) {
	what := "checkpoint archive " + archive
	invalid := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(what + ": " + fmt.Sprintf(format, args...))
	}
	f, err := os.Open(archive)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return checkpoint.Record{}, errdefs.ErrNotFound.WithMessage(what + ": not found")
		}
		return checkpoint.Record{}, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	var config []byte
	var spec, images bool
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return checkpoint.Record{}, invalid("%v (is it a checkpoint archive?)", err)
		}
		switch path.Clean("/" + hdr.Name)[1:] {
		case checkpoint.ConfigFile:
			if config, err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return checkpoint.Record{}, invalid("%s: %v", checkpoint.ConfigFile, err)
			}
		case checkpoint.SpecFile:
			spec = true
		case checkpoint.ImagesDir + "/inventory.img":
			images = true
		}
	}
	switch {
	case config == nil:
		return checkpoint.Record{}, invalid("no %s: not a checkpoint archive", checkpoint.ConfigFile)
	case !spec:
		return checkpoint.Record{}, invalid("no %s: not a checkpoint archive", checkpoint.SpecFile)
	case !images:
		return checkpoint.Record{}, invalid("no CRIU images in %s/", checkpoint.ImagesDir)
	}
	rec, err := decodeRecord(config)
	if err != nil {
		return checkpoint.Record{}, invalid("%v", err)
	}
	return rec, nil
}

// storeCheckpointImage stores the checkpoint archive at archive as a
// checkpoint image named ref: one gzip layer of the archive's members,
// an empty config of base's platform (nil: this host's), and the
// annotations (CRI-O's and podman's) naming the container cname. It is
// stored (and unpacked) like a committed image. createdBy and comment
// are its layer's history. It returns the image ID.
func (e *Engine) storeCheckpointImage(ctx context.Context, ref *reference.Reference, archive, cname string, base *v1.ConfigFile, createdBy, comment string) (string, error) {
	if base == nil {
		base = &v1.ConfigFile{OS: goruntime.GOOS, Architecture: goruntime.GOARCH}
	}
	layerFile, _, err := e.gzipLayer(".checkpoint-*.tar.gz", func(w io.Writer) (int, error) {
		f, err := os.Open(archive)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return 1, err
	})
	if err != nil {
		return "", fmt.Errorf("checkpoint image layer: %w", err)
	}
	defer os.Remove(layerFile)
	layer, err := tarball.LayerFromFile(layerFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		OS: base.OS, Architecture: base.Architecture, Variant: base.Variant, OSVersion: base.OSVersion,
		Created: v1.Time{Time: now}, RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return "", err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: now}, CreatedBy: createdBy, Comment: comment,
	}})
	if err != nil {
		return "", err
	}
	img = mutate.Annotations(img, checkpoint.ImageAnnotations(cname)).(v1.Image)
	return e.addImage(ctx, img, ref)
}

// CheckpointImageOptions tune OpenCheckpointImage.
type CheckpointImageOptions struct {
	// Pull pulls the image when it is not in the store.
	Pull bool
	// OnPull and Progress show that pull (as CreateOptions').
	OnPull   func(ref string)
	Progress image.Progress
	// Shown names the image in errors ("": ref), e.g. the name a Pod
	// gives the image kubelet passes by ID.
	Shown string
}

// OpenCheckpointImage reads the checkpoint image ref (a name, name@digest
// or ID) for a restore: its layer's members are extracted as an archive's
// (OpenCheckpoint). The caller closes it.
//
// Errors: an image not in the store (and not pulled) is not found; one
// without the checkpoint annotation, with other than one layer, or whose
// layer is not a checkpoint archive (no config.dump, ...) is an invalid
// argument; no working CRIU a failed precondition.
func (e *Engine) OpenCheckpointImage(ctx context.Context, ref string, o CheckpointImageOptions) (*Checkpoint, error) {
	criu, err := checkpoint.FindCRIU()
	if err != nil {
		return nil, err
	}
	rec, err := e.images.Resolve(ctx, ref)
	if err != nil && o.Pull && errdefs.IsNotFound(err) {
		if o.OnPull != nil {
			o.OnPull(ref)
		}
		var res *PullResult
		if res, err = e.images.Pull(ctx, ref, image.PullOptions{Progress: o.Progress}); err == nil {
			rec, err = e.images.Resolve(ctx, res.Ref.String())
		}
	}
	if err != nil {
		return nil, err
	}
	shown := o.Shown
	if shown == "" {
		shown = ref
	}
	what := "checkpoint image " + shown
	name := checkpoint.ImageName(rec.Annotations)
	if name == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("image %s is not a checkpoint image: its manifest has no %s annotation", shown, checkpoint.ImageAnnotation))
	}
	img, err := e.images.Image(rec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(layers) != 1 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s has %d layers; a checkpoint image has one, holding the checkpoint archive's members", what, len(layers)))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rc.Close()
	k, err := e.openCheckpoint(ctx, criu, what, shown, rc)
	if err != nil {
		return nil, err
	}
	k.FromImage = rec.ID()
	return k, nil
}
