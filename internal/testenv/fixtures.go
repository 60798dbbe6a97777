package testenv

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxBinary is the statically linked busybox every fixture is built on
// (Debian package busybox-static).
const BusyboxBinary = "/bin/busybox"

// Applets are the busybox applets the busybox layer links in /bin.
var Applets = []string{
	"[", "ash", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date",
	"df", "dirname", "du", "echo", "env", "false", "find", "free", "grep", "head",
	"hostname", "id", "ip", "kill", "ln", "ls", "mkdir", "mkfifo", "mknod", "mount",
	"mv", "nc", "ping", "printf", "ps", "pwd", "readlink", "realpath", "rm", "rmdir",
	"sed", "seq", "sh", "sleep", "sort", "stat", "sync", "tail", "tee", "test",
	"top", "touch", "tr", "true", "umount", "uname", "wc", "wget", "which",
	"whoami", "xargs", "yes",
}

// DefaultPath is the PATH of every fixture image config.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Fixture names, for PushFixtures' only argument and `hack/testenv push --only`.
const (
	FixBusybox     = "busybox"      // Docker schema2, gzip
	FixBusyboxOCI  = "busybox-oci"  // the same layer in an OCI manifest
	FixBusyboxZstd = "busybox-zstd" // OCI manifest, zstd layer
	FixLayered     = "layered"
	FixConfig      = "config"
	FixMulti       = "multi"        // OCI index
	FixMultiDocker = "multi-docker" // Docker manifest list
	FixBig         = "big"
)

// AllFixtures lists every fixture name.
var AllFixtures = []string{FixBusybox, FixBusyboxOCI, FixBusyboxZstd, FixLayered, FixConfig, FixMulti, FixMultiDocker, FixBig}

// fixtureTags are the repository:tag each fixture is pushed to.
var fixtureTags = map[string]string{
	FixBusybox:     "hull-test/busybox:1.0",
	FixBusyboxOCI:  "hull-test/busybox:1.0-oci",
	FixBusyboxZstd: "hull-test/busybox:1.0-zstd",
	FixLayered:     "hull-test/layered:1.0",
	FixConfig:      "hull-test/config:1.0",
	FixMulti:       "hull-test/multi:1.0",
	FixMultiDocker: "hull-test/multi:1.0-docker",
	FixBig:         "hull-test/big:1.0",
}

// MultiPlatforms are the platforms of the multi fixtures, in index order.
var MultiPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}

// PlatformFile is the file in each multi fixture image that names its
// platform ("linux/arm/v7\n"), so tests can tell which one was unpacked.
const PlatformFile = "/etc/hull-platform"

// Image is a pushed fixture image.
type Image struct {
	Ref          string // "127.0.0.1:PORT/hull-test/busybox:1.0"
	Repo         string // "127.0.0.1:PORT/hull-test/busybox"
	Digest       string // manifest digest, "sha256:..."
	MediaType    string // manifest media type
	ConfigDigest string // the image ID, "sha256:..."
	Layers       []string
	DiffIDs      []string
	Platform     string // "linux/amd64", from the config
	Size         int64  // manifest + config + compressed layers, bytes
}

// ByDigest is the reference "REPO@sha256:...".
func (i Image) ByDigest() string { return i.Repo + "@" + i.Digest }

// Index is a pushed multi-platform fixture.
type Index struct {
	Ref       string
	Repo      string
	Digest    string
	MediaType string
	// Images are the index entries in order; their Ref is REPO@DIGEST.
	Images []Image
}

// ByDigest is the reference "REPO@sha256:...".
func (x Index) ByDigest() string { return x.Repo + "@" + x.Digest }

// For returns the entry for a platform such as "linux/arm/v7".
func (x Index) For(platform string) (Image, bool) {
	for _, im := range x.Images {
		if im.Platform == platform {
			return im, true
		}
	}
	return Image{}, false
}

// Fixtures are the images pushed to one registry. Fixtures not asked for are
// zero.
type Fixtures struct {
	Registry string // "127.0.0.1:PORT"

	// Busybox is one layer: /bin/busybox and a symlink per Applets entry in
	// /bin, /usr/bin/env, /etc/passwd and /etc/group (root, nobody, app
	// 1000:1000), /tmp (1777), /root, /home/app (owned by app), and empty
	// /dev /proc /sys. Cmd ["sh"], Env [DefaultPath]. Docker schema2, gzip.
	Busybox Image
	// BusyboxOCI is the same layer blob in an OCI manifest (OCI media types).
	BusyboxOCI Image
	// BusyboxZstd is the same files compressed with zstd, in an OCI manifest.
	BusyboxZstd Image
	// Layered is busybox plus three layers of whiteouts, opaque dirs,
	// hardlinks, symlinks, setuid, xattr and fifo; LayeredMerged is its
	// expected merged tree. Docker schema2.
	Layered Image
	// Config has USER app, ENV FOO=bar, WORKDIR /home/app, ENTRYPOINT
	// ["/bin/sh","-c"], CMD ["echo hello"], labels, exposed ports, stop
	// signal and a Dockerfile-like history; ConfigImage says exactly what.
	// OCI media types.
	Config Image
	// Multi is an OCI index of MultiPlatforms; each image is busybox plus
	// PlatformFile.
	Multi Index
	// MultiDocker is the same as a Docker manifest list.
	MultiDocker Index
	// Big is busybox plus 4 layers of ~12 MiB incompressible data (48 files
	// of 256 KiB each under /big/N/), for pull and unpack benchmarks.
	// Docker schema2, gzip.
	Big Image
}

// Ref returns the reference of a fixture by name ("" when not pushed).
func (f *Fixtures) Ref(fixture string) string {
	ref, _ := f.lookup(fixture)
	return ref
}

// Digest returns the manifest digest of a fixture by name.
func (f *Fixtures) Digest(fixture string) string {
	_, digest := f.lookup(fixture)
	return digest
}

// slots maps fixture names to their fields.
func (f *Fixtures) slots() (map[string]*Image, map[string]*Index) {
	return map[string]*Image{
			FixBusybox: &f.Busybox, FixBusyboxOCI: &f.BusyboxOCI, FixBusyboxZstd: &f.BusyboxZstd,
			FixLayered: &f.Layered, FixConfig: &f.Config, FixBig: &f.Big,
		},
		map[string]*Index{FixMulti: &f.Multi, FixMultiDocker: &f.MultiDocker}
}

func (f *Fixtures) lookup(fixture string) (ref, digest string) {
	images, indexes := f.slots()
	if im, ok := images[fixture]; ok {
		return im.Ref, im.Digest
	}
	if x, ok := indexes[fixture]; ok {
		return x.Ref, x.Digest
	}
	return "", ""
}

// PushFixturesT pushes the named fixtures (all when none are named) to reg,
// failing the test on error. The registry's cleanup removes them.
func PushFixturesT(t testing.TB, reg *Registry, only ...string) *Fixtures {
	t.Helper()
	f, err := PushFixtures(reg, only...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Setup starts a registry for the test and pushes the named fixtures (all
// when none are named) to it.
func Setup(t testing.TB, only ...string) (*Registry, *Fixtures) {
	t.Helper()
	reg := NewRegistry(t)
	return reg, PushFixturesT(t, reg, only...)
}

// PushFixtures pushes the named fixtures (all when none are named) to reg.
// Images are built once per process and reused for every registry.
func PushFixtures(reg *Registry, only ...string) (*Fixtures, error) {
	if len(only) == 0 {
		only = AllFixtures
	}
	for _, n := range only {
		if _, ok := fixtureTags[n]; !ok {
			return nil, fmt.Errorf("push fixture %q: unknown (known: %s)", n, strings.Join(AllFixtures, ", "))
		}
	}
	f := &Fixtures{Registry: reg.Addr}
	// One at a time: distribution 2.8 can fail a manifest with DIGEST_INVALID
	// when the same blob is uploaded to one repository twice at once, and
	// several fixtures share layers.
	for _, n := range only {
		if err := pushFixture(reg, f, n); err != nil {
			return nil, fmt.Errorf("push fixtures to %s: %w", reg.Addr, err)
		}
	}
	return f, nil
}

func pushFixture(reg *Registry, f *Fixtures, fixture string) error {
	ref, err := name.ParseReference(reg.Ref(fixtureTags[fixture]), name.Insecure)
	if err != nil {
		return fmt.Errorf("fixture %s: %w", fixture, err)
	}
	built, err := defaultBuilds.fixture(fixture)
	if err != nil {
		return fmt.Errorf("build fixture %s: %w", fixture, err)
	}
	switch b := built.(type) {
	case v1.Image:
		if err := remote.Write(ref, b, reg.RemoteOptions()...); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		im, err := describeImage(ref.Context(), b)
		if err != nil {
			return fmt.Errorf("fixture %s: %w", fixture, err)
		}
		im.Ref = ref.String()
		images, _ := f.slots()
		*images[fixture] = im
	case v1.ImageIndex:
		if err := remote.WriteIndex(ref, b, reg.RemoteOptions()...); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		x, err := describeIndex(ref.Context(), b)
		if err != nil {
			return fmt.Errorf("fixture %s: %w", fixture, err)
		}
		x.Ref = ref.String()
		_, indexes := f.slots()
		*indexes[fixture] = x
	}
	return nil
}

func describeImage(repo name.Repository, img v1.Image) (Image, error) {
	d, err := img.Digest()
	if err != nil {
		return Image{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Image{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Image{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return Image{}, err
	}
	im := Image{
		Ref:          repo.String() + "@" + d.String(),
		Repo:         repo.String(),
		Digest:       d.String(),
		MediaType:    string(m.MediaType),
		ConfigDigest: m.Config.Digest.String(),
		Platform:     platformString(cf.Platform()),
		Size:         int64(len(raw)) + m.Config.Size,
	}
	for _, l := range m.Layers {
		im.Layers = append(im.Layers, l.Digest.String())
		im.Size += l.Size
	}
	for _, id := range cf.RootFS.DiffIDs {
		im.DiffIDs = append(im.DiffIDs, id.String())
	}
	return im, nil
}

func describeIndex(repo name.Repository, idx v1.ImageIndex) (Index, error) {
	d, err := idx.Digest()
	if err != nil {
		return Index{}, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return Index{}, err
	}
	x := Index{Repo: repo.String(), Digest: d.String(), MediaType: string(m.MediaType)}
	for _, desc := range m.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return Index{}, err
		}
		im, err := describeImage(repo, img)
		if err != nil {
			return Index{}, err
		}
		x.Images = append(x.Images, im)
	}
	return x, nil
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func parsePlatform(s string) v1.Platform {
	parts := strings.Split(s, "/")
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p
}

// builds memoizes built layers and images, so each is built once per process
// however many registries a test binary pushes to.
type builds struct {
	mu sync.Mutex
	m  map[string]*memoEntry
}

type memoEntry struct {
	once sync.Once
	v    any
	err  error
}

var defaultBuilds = &builds{}

func (b *builds) get(key string, build func() (any, error)) (any, error) {
	b.mu.Lock()
	if b.m == nil {
		b.m = map[string]*memoEntry{}
	}
	e := b.m[key]
	if e == nil {
		e = &memoEntry{}
		b.m[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.v, e.err = build() })
	return e.v, e.err
}

func (b *builds) layer(key string, comp compression, entries func() ([]entry, error)) (*blobLayer, error) {
	v, err := b.get(fmt.Sprintf("layer/%s/%d", key, comp), func() (any, error) {
		es, err := entries()
		if err != nil {
			return nil, err
		}
		tb, err := tarball(es)
		if err != nil {
			return nil, err
		}
		return newLayer(tb, comp)
	})
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", key, err)
	}
	return v.(*blobLayer), nil
}

// fixture returns the v1.Image or v1.ImageIndex of a fixture.
func (b *builds) fixture(fixture string) (any, error) {
	return b.get("fixture/"+fixture, func() (any, error) {
		switch fixture {
		case FixBusybox:
			return b.busybox(gzipped, false)
		case FixBusyboxOCI:
			return b.busybox(gzipped, true)
		case FixBusyboxZstd:
			return b.busybox(zstded, true)
		case FixLayered:
			return b.layered()
		case FixConfig:
			return b.config()
		case FixMulti:
			return b.multi(true)
		case FixMultiDocker:
			return b.multi(false)
		case FixBig:
			return b.big()
		}
		return nil, fmt.Errorf("unknown fixture %q", fixture)
	})
}

func (b *builds) base(comp compression) (*blobLayer, error) {
	return b.layer("busybox", comp, busyboxEntries)
}

func busyboxEntries() ([]entry, error) {
	bin, err := os.ReadFile(BusyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("%w (install the Debian package busybox-static)", err)
	}
	home := dir("home/app", 0o755)
	home.uid, home.gid = 1000, 1000
	es := []entry{
		dir("bin", 0o755),
		fileBytes("bin/busybox", 0o755, bin),
	}
	for _, a := range Applets {
		es = append(es, symlink("bin/"+a, "busybox"))
	}
	es = append(es,
		dir("dev", 0o755),
		dir("etc", 0o755),
		file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"+
			"app:x:1000:1000:app:/home/app:/bin/sh\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		file("etc/group", 0o644, "root:x:0:\napp:x:1000:\nnobody:x:65534:\n"),
		dir("home", 0o755),
		home,
		dir("proc", 0o755),
		dir("root", 0o700),
		dir("sys", 0o755),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/bin", 0o755),
		symlink("usr/bin/env", "/bin/busybox"),
	)
	return es, nil
}

// imageSpec is what buildImage assembles.
type imageSpec struct {
	layers   []*blobLayer
	oci      bool
	platform string // "" means linux/GOARCH, the busybox binary's own
	config   v1.Config
	history  []v1.History // nil means one generic entry per layer
}

func buildImage(s imageSpec) (v1.Image, error) {
	img := empty.Image
	if s.oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	var adds []mutate.Addendum
	for _, l := range s.layers {
		adds = append(adds, mutate.Addendum{Layer: l.as(s.oci)})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	platform := s.platform
	if platform == "" {
		platform = "linux/" + runtime.GOARCH
	}
	p := parsePlatform(platform)
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: epoch}
	cf.Author = "hull testenv"
	cf.Config = s.config
	cf.History = s.history
	if cf.History == nil {
		for i := range s.layers {
			cf.History = append(cf.History, v1.History{Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("hull testenv layer %d", i)})
		}
	}
	return mutate.ConfigFile(img, cf)
}

func history(createdBy string, empty bool) v1.History {
	return v1.History{Created: v1.Time{Time: epoch}, CreatedBy: createdBy, EmptyLayer: empty}
}

func (b *builds) busybox(comp compression, oci bool) (v1.Image, error) {
	base, err := b.base(comp)
	if err != nil {
		return nil, err
	}
	return buildImage(imageSpec{
		layers: []*blobLayer{base},
		oci:    oci,
		config: v1.Config{Env: []string{DefaultPath}, Cmd: []string{"sh"}},
		history: []v1.History{
			history("ADD busybox-static rootfs / # hull testenv", false),
			history(`CMD ["sh"]`, true),
		},
	})
}

func (b *builds) layered() (v1.Image, error) {
	base, err := b.base(gzipped)
	if err != nil {
		return nil, err
	}
	layers := []*blobLayer{base}
	hist := []v1.History{history("ADD busybox-static rootfs /", false)}
	for i, es := range layeredLayers() {
		l, err := b.layer(fmt.Sprintf("layered-%d", i+1), gzipped, func() ([]entry, error) { return es, nil })
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
		hist = append(hist, history(fmt.Sprintf("layered fixture layer %d", i+1), false))
	}
	hist = append(hist, history(`CMD ["sh"]`, true))
	return buildImage(imageSpec{
		layers:  layers,
		config:  v1.Config{Env: []string{DefaultPath}, Cmd: []string{"sh"}},
		history: hist,
	})
}

// ConfigImage is the runtime config of the config fixture.
var ConfigImage = v1.Config{
	User:         "app",
	Env:          []string{DefaultPath, "FOO=bar"},
	WorkingDir:   "/home/app",
	Entrypoint:   []string{"/bin/sh", "-c"},
	Cmd:          []string{"echo hello"},
	Labels:       map[string]string{"org.opencontainers.image.title": "hull config fixture", "com.example.hull.fixture": "config"},
	ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
	StopSignal:   "SIGQUIT",
}

// ConfigHistory is the created_by of each history entry of the config
// fixture, oldest first; the first two made layers.
var ConfigHistory = []string{
	"ADD busybox-static rootfs / # buildkit",
	"COPY hello.txt /home/app/hello.txt # buildkit",
	"USER app",
	"ENV FOO=bar",
	"WORKDIR /home/app",
	`LABEL org.opencontainers.image.title="hull config fixture" com.example.hull.fixture=config`,
	"EXPOSE map[53/udp:{} 8080/tcp:{}]",
	"STOPSIGNAL SIGQUIT",
	`ENTRYPOINT ["/bin/sh" "-c"]`,
	`CMD ["echo hello"]`,
}

func (b *builds) config() (v1.Image, error) {
	base, err := b.base(gzipped)
	if err != nil {
		return nil, err
	}
	hello, err := b.layer("config-hello", gzipped, func() ([]entry, error) {
		f := file("home/app/hello.txt", 0o644, "hello from the config fixture\n")
		f.uid, f.gid = 1000, 1000
		return []entry{f}, nil
	})
	if err != nil {
		return nil, err
	}
	var hist []v1.History
	for i, c := range ConfigHistory {
		hist = append(hist, history(c, i >= 2))
	}
	return buildImage(imageSpec{
		layers:  []*blobLayer{base, hello},
		oci:     true,
		config:  ConfigImage,
		history: hist,
	})
}

func (b *builds) multi(oci bool) (v1.ImageIndex, error) {
	base, err := b.base(gzipped)
	if err != nil {
		return nil, err
	}
	var idx v1.ImageIndex = empty.Index
	if oci {
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	} else {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	var adds []mutate.IndexAddendum
	for _, platform := range MultiPlatforms {
		pl, err := b.layer("platform-"+platform, gzipped, func() ([]entry, error) {
			return []entry{dir("etc", 0o755), file(PlatformFile[1:], 0o644, platform+"\n")}, nil
		})
		if err != nil {
			return nil, err
		}
		img, err := buildImage(imageSpec{
			layers:   []*blobLayer{base, pl},
			oci:      oci,
			platform: platform,
			config:   v1.Config{Env: []string{DefaultPath}, Cmd: []string{"sh"}},
		})
		if err != nil {
			return nil, err
		}
		p := parsePlatform(platform)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

// Big fixture shape: 4 layers of bigFiles files of bigFileSize bytes each.
const (
	bigLayers   = 4
	bigFiles    = 48
	bigFileSize = 256 << 10
)

func (b *builds) big() (v1.Image, error) {
	base, err := b.base(gzipped)
	if err != nil {
		return nil, err
	}
	layers := []*blobLayer{base}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	bigs := make([]*blobLayer, bigLayers)
	for i := range bigLayers {
		wg.Go(func() {
			l, err := b.layer(fmt.Sprintf("big-%d", i), gzipped, func() ([]entry, error) {
				return bigEntries(i), nil
			})
			mu.Lock()
			defer mu.Unlock()
			bigs[i] = l
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	layers = append(layers, bigs...)
	return buildImage(imageSpec{
		layers: layers,
		config: v1.Config{Env: []string{DefaultPath}, Cmd: []string{"sh"}},
	})
}

// bigEntries is layer i of the big fixture: pseudo-random bytes from a seed
// fixed per layer, so gzip cannot shrink them and the digest never changes.
func bigEntries(i int) []entry {
	rng := rand.NewChaCha8([32]byte{'h', 'u', 'l', 'l', byte(i)})
	dirname := fmt.Sprintf("big/%d", i)
	es := []entry{dir("big", 0o755), dir(dirname, 0o755)}
	for f := range bigFiles {
		body := make([]byte, bigFileSize)
		rng.Read(body)
		es = append(es, fileBytes(fmt.Sprintf("%s/%02d.bin", dirname, f), 0o644, body))
	}
	return es
}
