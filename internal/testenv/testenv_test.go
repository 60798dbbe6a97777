package testenv

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

func TestRegistryStartStop(t *testing.T) {
	dir := t.TempDir()
	reg, err := StartRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	if !strings.HasPrefix(reg.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want 127.0.0.1:PORT", reg.Addr)
	}
	resp, err := http.Get("http://" + reg.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
	pid := reg.PID()
	if err := reg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("registry pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if c, err := net.Dial("tcp", reg.Addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", reg.Addr)
	}
	if err := reg.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// A registry started in a test is gone, with its directory, once that test
// ends, even when it fails.
func TestRegistryCleanup(t *testing.T) {
	var reg *Registry
	t.Run("owner", func(t *testing.T) {
		reg = NewRegistry(t)
		t.Skip("ends the subtest early, as a failure would")
	})
	select {
	case <-reg.Done():
	default:
		t.Fatalf("registry pid %d still running after its test ended", reg.PID())
	}
	if _, err := os.Stat(reg.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registry dir %s left behind: %v", reg.Dir, err)
	}
}

// A registry outlives no test binary: killing the process that started it
// (no cleanups run) kills the registry too.
func TestRegistryDiesWithParent(t *testing.T) {
	if dir := os.Getenv("HULL_TESTENV_HELPER_DIR"); dir != "" {
		reg, err := StartRegistry(dir)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("PID", reg.PID())
		select {} // until killed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegistryDiesWithParent$")
	cmd.Env = append(os.Environ(), "HULL_TESTENV_HELPER_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var word string
	var pid int
	if _, err := fmt.Fscan(out, &word, &pid); err != nil || word != "PID" {
		t.Fatalf("helper said %q %d: %v", word, pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The registry is now gone or a zombie waiting for init to reap it.
	deadline := time.Now().Add(10 * time.Second)
	for ProcessRunning(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("registry pid %d survived its parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuthRegistry(t *testing.T) {
	reg := NewAuthRegistry(t, "hull", "s3cret")
	ref := reg.Ref("hull-test/busybox:1.0")

	// Anonymous: the push must fail with 401.
	anon := &Registry{Addr: reg.Addr}
	if _, err := PushFixtures(anon, FixBusybox); err == nil {
		t.Fatal("anonymous push to an auth registry succeeded")
	} else if !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("anonymous push: %v, want 401 Unauthorized", err)
	}
	wrong := &Registry{Addr: reg.Addr, User: "hull", Password: "wrong"}
	if _, err := PushFixtures(wrong, FixBusybox); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("push with a wrong password: %v, want 401 Unauthorized", err)
	}

	f := PushFixturesT(t, reg, FixBusybox)
	if f.Busybox.Ref != ref {
		t.Errorf("Ref = %q, want %q", f.Busybox.Ref, ref)
	}
	r, _ := name.ParseReference(ref)
	if _, err := remote.Head(r); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("anonymous HEAD %s: %v, want 401", ref, err)
	}
	desc, err := remote.Head(r, remote.WithAuth(&authn.Basic{Username: "hull", Password: "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != f.Busybox.Digest {
		t.Errorf("HEAD digest %s, want %s", desc.Digest, f.Busybox.Digest)
	}
}

func isStatus(err error, code int) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == code
}

func TestFixtures(t *testing.T) {
	reg, f := Setup(t)
	if f.Registry != reg.Addr {
		t.Errorf("Registry = %q, want %q", f.Registry, reg.Addr)
	}
	for _, n := range AllFixtures {
		if want := reg.Ref(fixtureTags[n]); f.Ref(n) != want {
			t.Errorf("Ref(%s) = %q, want %q", n, f.Ref(n), want)
		}
		if !strings.HasPrefix(f.Digest(n), "sha256:") {
			t.Errorf("Digest(%s) = %q", n, f.Digest(n))
		}
	}

	bb := checkImage(t, f.Busybox, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, 1)
	if !slices.Equal(bb.Config.Cmd, []string{"sh"}) || !slices.Equal(bb.Config.Env, []string{DefaultPath}) {
		t.Errorf("busybox config %+v", bb.Config)
	}
	checkImage(t, f.BusyboxOCI, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, 1)
	if !slices.Equal(f.BusyboxOCI.Layers, f.Busybox.Layers) {
		t.Errorf("OCI busybox layers %v, want the Docker one's %v", f.BusyboxOCI.Layers, f.Busybox.Layers)
	}
	if f.BusyboxOCI.Digest == f.Busybox.Digest {
		t.Error("OCI and Docker busybox share a manifest digest")
	}
	checkImage(t, f.BusyboxZstd, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayerZStd, 1)
	if !slices.Equal(f.BusyboxZstd.DiffIDs, f.Busybox.DiffIDs) || slices.Equal(f.BusyboxZstd.Layers, f.Busybox.Layers) {
		t.Errorf("zstd busybox: layers %v diff IDs %v; want other layers than gzip %v with the same diff IDs %v",
			f.BusyboxZstd.Layers, f.BusyboxZstd.DiffIDs, f.Busybox.Layers, f.Busybox.DiffIDs)
	}

	checkImage(t, f.Layered, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, 4)
	if f.Layered.Layers[0] != f.Busybox.Layers[0] {
		t.Errorf("layered base layer %s, want busybox's %s", f.Layered.Layers[0], f.Busybox.Layers[0])
	}

	cfg := checkImage(t, f.Config, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, 2)
	c := cfg.Config
	if c.User != "app" || c.WorkingDir != "/home/app" || !slices.Contains(c.Env, "FOO=bar") ||
		!slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(c.Cmd, []string{"echo hello"}) ||
		c.Labels["com.example.hull.fixture"] != "config" || len(c.ExposedPorts) != 2 {
		t.Errorf("config fixture config = %+v", c)
	}
	var createdBy []string
	for _, h := range cfg.History {
		createdBy = append(createdBy, h.CreatedBy)
	}
	if !slices.Equal(createdBy, ConfigHistory) {
		t.Errorf("config history %q, want %q", createdBy, ConfigHistory)
	}

	checkIndex(t, f.Multi, types.OCIImageIndex, types.OCIManifestSchema1)
	checkIndex(t, f.MultiDocker, types.DockerManifestList, types.DockerManifestSchema2)

	checkImage(t, f.Big, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, 5)
	if f.Big.Size < 45<<20 || f.Big.Size > 60<<20 {
		t.Errorf("big fixture is %d bytes, want about 50 MiB", f.Big.Size)
	}
}

// checkImage pulls im by tag and checks it matches what Fixtures recorded
// and has the given media types.
func checkImage(t *testing.T, im Image, manifestType, configType, layerType types.MediaType, layers int) *v1.ConfigFile {
	t.Helper()
	ref, err := name.ParseReference(im.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", im.Ref, err)
	}
	d, _ := img.Digest()
	if d.String() != im.Digest {
		t.Errorf("%s: pulled digest %s, Fixtures says %s", im.Ref, d, im.Digest)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != manifestType || m.Config.MediaType != configType {
		t.Errorf("%s: manifest %s config %s, want %s and %s", im.Ref, m.MediaType, m.Config.MediaType, manifestType, configType)
	}
	if len(m.Layers) != layers {
		t.Errorf("%s: %d layers, want %d", im.Ref, len(m.Layers), layers)
	}
	for i, l := range m.Layers {
		if l.MediaType != layerType {
			t.Errorf("%s: layer %d media type %s, want %s", im.Ref, i, l.MediaType, layerType)
		}
		if i < len(im.Layers) && l.Digest.String() != im.Layers[i] {
			t.Errorf("%s: layer %d %s, Fixtures says %s", im.Ref, i, l.Digest, im.Layers[i])
		}
	}
	if m.Config.Digest.String() != im.ConfigDigest {
		t.Errorf("%s: config %s, Fixtures says %s", im.Ref, m.Config.Digest, im.ConfigDigest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := platformString(cf.Platform()); got != im.Platform {
		t.Errorf("%s: config platform %s, Fixtures says %s", im.Ref, got, im.Platform)
	}
	if len(cf.RootFS.DiffIDs) != layers {
		t.Errorf("%s: %d diff IDs, want %d", im.Ref, len(cf.RootFS.DiffIDs), layers)
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("%s: created %v, want the fixed %v", im.Ref, cf.Created, epoch)
	}
	return cf
}

func checkIndex(t *testing.T, x Index, indexType, manifestType types.MediaType) {
	t.Helper()
	ref, err := name.ParseReference(x.Ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", x.Ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != x.Digest {
		t.Errorf("%s: digest %s, Fixtures says %s", x.Ref, d, x.Digest)
	}
	if im.MediaType != indexType {
		t.Errorf("%s: media type %s, want %s", x.Ref, im.MediaType, indexType)
	}
	configType, layerType := types.DockerConfigJSON, types.DockerLayer
	if manifestType == types.OCIManifestSchema1 {
		configType, layerType = types.OCIConfigJSON, types.OCILayer
	}
	var platforms []string
	digests := map[string]bool{}
	for i, desc := range im.Manifests {
		platforms = append(platforms, platformString(desc.Platform))
		digests[desc.Digest.String()] = true
		if desc.MediaType != manifestType {
			t.Errorf("%s: entry %d media type %s, want %s", x.Ref, i, desc.MediaType, manifestType)
		}
		if i < len(x.Images) {
			if desc.Digest.String() != x.Images[i].Digest {
				t.Errorf("%s: entry %d %s, Fixtures says %s", x.Ref, i, desc.Digest, x.Images[i].Digest)
			}
			// The config of each entry names the platform the index claims.
			checkImage(t, x.Images[i], manifestType, configType, layerType, 2)
			if x.Images[i].Platform != platforms[i] {
				t.Errorf("%s: entry %d config says %s, index says %s", x.Ref, i, x.Images[i].Platform, platforms[i])
			}
		}
	}
	if !slices.Equal(platforms, MultiPlatforms) {
		t.Errorf("%s: platforms %v, want %v", x.Ref, platforms, MultiPlatforms)
	}
	if len(digests) != len(MultiPlatforms) {
		t.Errorf("%s: %d distinct manifest digests, want %d", x.Ref, len(digests), len(MultiPlatforms))
	}
	if arm, ok := x.For("linux/arm/v7"); !ok || arm.Platform != "linux/arm/v7" {
		t.Errorf("%s: For(linux/arm/v7) = %+v, %v", x.Ref, arm, ok)
	}
}

// The merged view of the layered fixture, as go-containerregistry flattens
// it (an independent implementation of the whiteout rules), matches
// LayeredMerged; and CheckTree notices when it does not.
func TestLayeredMerged(t *testing.T) {
	_, f := Setup(t, FixLayered)
	ref, _ := name.ParseReference(f.Layered.Ref)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(rc, root); err != nil {
		t.Fatal(err)
	}
	if err := CheckTree(root, LayeredMerged); err != nil {
		t.Fatalf("flattened layered fixture differs from LayeredMerged:\n%v", err)
	}

	// Break the tree the ways a wrong unpacker would, and expect CheckTree
	// to say so for each.
	must(t, os.WriteFile(filepath.Join(root, "opaque/old1.txt"), []byte("old1\n"), 0o644))
	must(t, os.Remove(filepath.Join(root, "links/hard.txt")))
	must(t, os.WriteFile(filepath.Join(root, "links/hard.txt"), []byte("target\n"), 0o644))
	must(t, os.Chmod(filepath.Join(root, "usr/local/bin/suid"), 0o755))
	err = CheckTree(root, LayeredMerged)
	for _, want := range []string{"/opaque/old1.txt: exists", "/opaque: lists", "/links/hard.txt: not the same inode", "/usr/local/bin/suid: mode"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckTree on a broken tree: %v; want it to mention %q", err, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// untar writes a flattened (whiteout-free) tar stream under root.
func untar(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(root, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(hdr.Mode & 0o777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, mode)
		case tar.TypeReg:
			var out *os.File
			out, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err == nil {
				_, err = io.Copy(out, tr)
				out.Close()
			}
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		case tar.TypeLink:
			err = os.Link(filepath.Join(root, hdr.Linkname), p)
		case tar.TypeFifo:
			err = unix.Mkfifo(p, uint32(mode))
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeLink {
			continue
		}
		if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeSymlink {
			// chown clears setuid, so the full mode goes on afterwards.
			if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
				return err
			}
		}
		for k, v := range hdr.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if err := unix.Lsetxattr(p, x, []byte(v), 0); err != nil {
					return err
				}
			}
		}
	}
}

// Digests depend only on the inputs: two independent builds agree.
func TestDeterministicBuild(t *testing.T) {
	a, b := &builds{}, &builds{}
	for _, n := range AllFixtures {
		da, err := digestOf(a, n)
		if err != nil {
			t.Fatal(err)
		}
		db, err := digestOf(b, n)
		if err != nil {
			t.Fatal(err)
		}
		if da != db {
			t.Errorf("fixture %s: two builds gave %s and %s", n, da, db)
		}
	}
}

func digestOf(b *builds, fixture string) (v1.Hash, error) {
	built, err := b.fixture(fixture)
	if err != nil {
		return v1.Hash{}, err
	}
	return built.(interface{ Digest() (v1.Hash, error) }).Digest()
}

// Every applet the busybox layer links exists in the installed busybox.
func TestApplets(t *testing.T) {
	out, err := exec.Command(BusyboxBinary, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	have := strings.Fields(string(out))
	for _, a := range Applets {
		if !slices.Contains(have, a) {
			t.Errorf("applet %q not in %s --list", a, BusyboxBinary)
		}
	}
}

func TestPushUnknownFixture(t *testing.T) {
	reg := NewRegistry(t)
	if _, err := PushFixtures(reg, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("PushFixtures(nope) = %v, want an unknown-fixture error", err)
	}
}

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestShared(t *testing.T) {
	reg, f := Shared(t)
	reg2, f2 := Shared(t)
	if reg != reg2 || f != f2 {
		t.Error("second Shared call started another registry")
	}
	checkImage(t, f.Busybox, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, 1)
	if f.Big.Digest == "" || f.Multi.Digest == "" {
		t.Errorf("shared fixtures incomplete: %+v", f)
	}
}

func TestBuildWithoutRegistry(t *testing.T) {
	img, err := BuildImage(FixLayered)
	if err != nil {
		t.Fatal(err)
	}
	if ls, _ := img.Layers(); len(ls) != 4 {
		t.Errorf("layered fixture has %d layers, want 4", len(ls))
	}
	idx, err := BuildIndex(FixMulti)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := idx.IndexManifest(); len(m.Manifests) != len(MultiPlatforms) {
		t.Errorf("multi fixture has %d manifests, want %d", len(m.Manifests), len(MultiPlatforms))
	}
	if _, err := BuildImage(FixMulti); err == nil {
		t.Error("BuildImage(multi) succeeded; it is an index")
	}
	if _, err := BuildIndex(FixBusybox); err == nil {
		t.Error("BuildIndex(busybox) succeeded; it is an image")
	}
}
