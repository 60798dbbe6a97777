package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"hull/internal/image"
	"hull/internal/perm"
	"hull/internal/reference"
	"hull/internal/snapshot"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Name is NAME[:TAG] for the image; "" leaves it untagged.
	Name string
	// Message is the layer's history comment ("Imported from SOURCE" if
	// empty).
	Message string
	// Changes are Dockerfile instructions for the image's config (CMD,
	// ENV, ...; see applyChanges).
	Changes []string
	// Platform is os/arch[/variant] the image says it is for ("": the
	// host's).
	Platform string
}

// Import makes a one-layer image from the root filesystem tarball at
// path (plain, gzip or zstd), at an http(s) URL, or, when path is "-",
// read from r (docker import). The image is unpacked at once, so it can be run or mounted
// right away. It returns the image ID.
func (e *Engine) Import(ctx context.Context, path string, r io.Reader, o ImportOptions) (string, error) {
	src := path
	ref, err := parseImageName("import", o.Name)
	if err != nil {
		return "", err
	}
	platform, err := image.ParsePlatform(o.Platform)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	var cfg v1.Config
	if err := applyChanges(&cfg, o.Changes); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if err := os.MkdirAll(e.cfg.Root, 0o711); err != nil {
		return "", err
	}
	if src == "-" || isURL(src) {
		f, err := os.CreateTemp(e.cfg.Root, ".import-*")
		if err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
		defer os.Remove(f.Name())
		what := "read standard input"
		if isURL(src) {
			what = "download " + src
			err = download(ctx, src, f)
		} else {
			_, err = io.Copy(f, r)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("import: %s: %w", what, err)
		}
		path = f.Name()
	}
	if err := checkTarball(path); err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	layer, err := tarball.LayerFromFile(path)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	now := time.Now().UTC()
	message := o.Message
	if message == "" {
		message = "Imported from " + src
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: platform.Architecture, OS: platform.OS, Variant: platform.Variant, Created: v1.Time{Time: now},
		Config: cfg, RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return "", err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: now}, CreatedBy: "hull import", Comment: message,
	}})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	id, err := e.addImage(ctx, img, ref)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", src, err)
	}
	return id, nil
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// download writes what url serves to w.
func download(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server answered %s", resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// parseImageName parses the NAME[:TAG] an import or a commit gives its
// image ("": none).
func parseImageName(op, name string) (*reference.Reference, error) {
	if name == "" {
		return nil, nil
	}
	ref, err := reference.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if ref.Digest != "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: name %q has a digest; give NAME[:TAG]", op, name))
	}
	return &ref, nil
}

// addImage stores an image built here (import, commit) through the
// image service, which verifies its blobs, unpacks its layers (so it
// runs at once) and names it ref (nil: untagged). It returns the image
// ID.
func (e *Engine) addImage(ctx context.Context, img v1.Image, ref *reference.Reference) (string, error) {
	name := ""
	if ref != nil {
		name = ref.Tagged()
	}
	if err := e.images.Add(ctx, img, name); err != nil {
		return "", err
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// checkTarball fails early, and clearly, on input that is not a tar
// archive, plain or in a compression a layer may have (gzip, zstd).
func checkTarball(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, kind, done, err := decompressed(f)
	if err != nil {
		return fmt.Errorf("not a tar archive: %w", err)
	}
	defer done()
	if kind == "bzip2" || kind == "xz" {
		return fmt.Errorf("a %s-compressed tarball cannot be an image layer: decompress it, or compress it with gzip or zstd", kind)
	}
	if _, err := tar.NewReader(r).Next(); err != nil {
		return fmt.Errorf("not a tar archive (%v)", err)
	}
	return nil
}

// An image mount (`hull image mount IMAGE`, like podman's) shows an
// image's merged root filesystem read-only: a view snapshot of the
// image's top layer chain (imageMountKey) mounted under
// <run-root>/mounts/<short image id> (imageMountPoint). It stays until
// UnmountImage.

// imageMountKey is the view snapshot of the image whose short ID is id.
func imageMountKey(id string) string { return "image-mount-" + id }

// imageMountPoint is where the image whose short ID is id is mounted
// ("": the directory of all image mounts).
func (e *Engine) imageMountPoint(id string) string {
	return filepath.Join(e.cfg.RunRoot, "mounts", id)
}

// MountImage mounts the image ref read-only, if it is not mounted, and
// returns where.
func (e *Engine) MountImage(ctx context.Context, ref string) (string, error) {
	r, err := e.images.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	chains, err := e.imageChains(r)
	if err != nil {
		return "", err
	}
	if len(chains) == 0 {
		return "", fmt.Errorf("image %s has no layers to mount", ref)
	}
	id := r.ConfigID.Hex[:12]
	target := e.imageMountPoint(id)
	if isMounted(target) {
		return target, nil
	}
	key := imageMountKey(id)
	mounts, err := e.snap.Mounts(ctx, key)
	if errors.Is(err, snapshot.ErrNotFound) {
		mounts, err = e.snap.View(ctx, key, chains[len(chains)-1])
	}
	if err != nil {
		return "", fmt.Errorf("mount image %s: %w", ref, err)
	}
	// Image content is untrusted: other users must not reach it (a 0700
	// parent), and its setuid binaries and device nodes must not work
	// even for root (nosuid,nodev).
	if err := perm.PrivateDir(filepath.Dir(target)); err != nil {
		return "", fmt.Errorf("mount image %s: %w", ref, err)
	}
	if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("mount image %s: %w", ref, err)
	}
	if err := snapshot.MountAll(snapshot.Inert(mounts), target); err != nil {
		return "", fmt.Errorf("mount image %s: %w", ref, err)
	}
	return target, nil
}

// UnmountImage undoes MountImage and returns the image's ID.
func (e *Engine) UnmountImage(ctx context.Context, ref string) (string, error) {
	r, err := e.images.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	id := r.ConfigID.Hex[:12]
	target := e.imageMountPoint(id)
	if err := snapshot.Unmount(target); err != nil {
		return "", err
	}
	os.Remove(target)
	if err := e.snap.Remove(ctx, imageMountKey(id)); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return "", err
	}
	return r.ConfigID.String(), nil
}
