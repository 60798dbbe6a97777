package testenv

import (
	"fmt"
	"os"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A package whose tests only read fixtures can share one registry with all
// fixtures pushed once, instead of starting a registry per test:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
//	func TestPull(t *testing.T) {
//		reg, f := testenv.Shared(t)
//		...
//	}
//
// Tests that push, delete or re-tag must use their own registry (Setup).
var shared struct {
	sync.Mutex
	main bool // Main is running the tests
	dir  string
	reg  *Registry
	fix  *Fixtures
	err  error
}

// Main runs the tests of a package and then stops the shared registry, if a
// test started one, and removes its directory. Use it from TestMain.
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.reg != nil {
		if err := shared.reg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			code = 1
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Shared returns the package's shared registry with every fixture pushed,
// starting it on first use. It needs TestMain to call Main, which cleans up
// after the last test.
func Shared(t testing.TB) (*Registry, *Fixtures) {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("testenv.Shared needs func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) } in this package")
	}
	if shared.reg == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "hull-testenv-")
		if shared.err == nil {
			shared.reg, shared.err = StartRegistry(shared.dir)
		}
		if shared.err == nil {
			shared.fix, shared.err = PushFixtures(shared.reg)
		}
	}
	if shared.err != nil {
		t.Fatalf("shared registry: %v", shared.err)
	}
	return shared.reg, shared.fix
}

// BuildImage returns a fixture image without pushing it, for tests that read
// layers directly (unpacking, snapshots). It fails for the index fixtures.
func BuildImage(fixture string) (v1.Image, error) {
	built, err := defaultBuilds.fixture(fixture)
	if err != nil {
		return nil, fmt.Errorf("build fixture %s: %w", fixture, err)
	}
	img, ok := built.(v1.Image)
	if !ok {
		return nil, fmt.Errorf("build fixture %s: an index, not an image (use BuildIndex)", fixture)
	}
	return img, nil
}

// BuildIndex returns a multi-platform fixture without pushing it.
func BuildIndex(fixture string) (v1.ImageIndex, error) {
	built, err := defaultBuilds.fixture(fixture)
	if err != nil {
		return nil, fmt.Errorf("build fixture %s: %w", fixture, err)
	}
	idx, ok := built.(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("build fixture %s: an image, not an index (use BuildImage)", fixture)
	}
	return idx, nil
}
