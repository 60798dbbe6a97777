package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"hull/internal/metadata"
)

var drivers = []string{Overlay, Copy}

func openT(t *testing.T, root, driver string) *Snapshotter {
	t.Helper()
	db, err := metadata.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Open(db, root, Options{Driver: driver})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unpackT unpacks layers in order and returns the top chain ID.
func unpackT(t *testing.T, s *Snapshotter, parent string, layers ...[]byte) string {
	t.Helper()
	for _, l := range layers {
		c, err := s.Unpack(context.Background(), parent, digestOf(l), bytes.NewReader(gzipBytes(t, l)))
		if err != nil {
			t.Fatal(err)
		}
		parent = c
	}
	return parent
}

func forEachDriver(t *testing.T, f func(t *testing.T, driver string)) {
	requireRoot(t)
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) { f(t, d) })
	}
}

func TestWhiteoutsOnMergedMount(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		s := openT(t, t.TempDir(), driver)
		base := makeTar(t,
			hdrDir("a/", 0o755), hdrFile("a/x", 0o644, "x"), hdrFile("a/y", 0o644, "y"),
			hdrDir("b/", 0o755), hdrFile("b/old", 0o644, "old"), hdrDir("b/sub/", 0o755), hdrFile("b/sub/deep", 0o644, "deep"),
			hdrFile("c", 0o644, "c"), hdrDir("d/", 0o755), hdrFile("d/f", 0o644, "f"),
			hdrDir("e/", 0o755), hdrFile("e/old", 0o644, "old"),
		)
		top := makeTar(t,
			hdrFile("a/.wh.x", 0o644, ""),
			hdrDir("b/", 0o755), hdrFile("b/.wh..wh..opq", 0o644, ""), hdrFile("b/new", 0o644, "new"),
			hdrFile(".wh.c", 0o644, ""),
			hdrFile(".wh.d", 0o644, ""), hdrDir("d/", 0o700), hdrFile("d/g", 0o644, "g"),
			// A whiteout after this layer's own entry hides the lower one only.
			hdrDir("e/", 0o755), hdrFile("e/new", 0o644, "new"), hdrFile(".wh.e", 0o644, ""),
		)
		chain := unpackT(t, s, "", base, top)
		check := func(t *testing.T, m string) {
			t.Helper()
			assertMissing(t, filepath.Join(m, "a/x"))
			if readFile(t, filepath.Join(m, "a/y")) != "y" {
				t.Error("a/y")
			}
			assertMissing(t, filepath.Join(m, "b/old"))
			assertMissing(t, filepath.Join(m, "b/sub"))
			if readFile(t, filepath.Join(m, "b/new")) != "new" {
				t.Error("b/new")
			}
			assertMissing(t, filepath.Join(m, "c"))
			assertMissing(t, filepath.Join(m, "d/f"))
			if readFile(t, filepath.Join(m, "d/g")) != "g" {
				t.Error("d/g")
			}
			assertMissing(t, filepath.Join(m, "e/old"))
			if readFile(t, filepath.Join(m, "e/new")) != "new" {
				t.Error("e/new")
			}
		}
		ctx := context.Background()
		ms, err := s.Prepare(ctx, "ctr1", chain)
		if err != nil {
			t.Fatal(err)
		}
		m := mountT(t, ms)
		check(t, m)
		// The container's writes land in its own layer only.
		if err := os.WriteFile(filepath.Join(m, "a/y"), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
		vms, err := s.View(ctx, "view1", chain)
		if err != nil {
			t.Fatal(err)
		}
		v := mountT(t, vms)
		check(t, v)
		if readFile(t, filepath.Join(v, "a/y")) != "y" {
			t.Error("a container's write shows in the image view")
		}
		if err := os.WriteFile(filepath.Join(v, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write to a view: %v, want EROFS", err)
		}
		u, err := s.Usage(ctx, "ctr1")
		if err != nil || u.Inodes == 0 {
			t.Errorf("usage of ctr1 = %+v, %v", u, err)
		}
	})
}

func TestSharedBaseUnpackedOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		s := openT(t, t.TempDir(), driver)
		ctx := context.Background()
		base := makeTar(t, hdrFile("etc/os-release", 0o644, "base"))
		app1 := makeTar(t, hdrFile("app", 0o755, "one"))
		app2 := makeTar(t, hdrFile("app", 0o755, "two"))

		// Eight concurrent pulls of two images that share the base.
		var reads atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := &countingReader{r: bytes.NewReader(gzipBytes(t, base)), n: &reads}
				c, err := s.Unpack(ctx, "", digestOf(base), r)
				if err == nil {
					app := [][]byte{app1, app2}[i%2]
					_, err = s.Unpack(ctx, c, digestOf(app), bytes.NewReader(app))
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := reads.Load(); n != int64(len(gzipBytes(t, base))) {
			t.Errorf("base blob read %d bytes in all, want it read exactly once (%d)", n, len(gzipBytes(t, base)))
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("%d snapshots, want base + two apps: %+v", len(list), list)
		}
		for _, app := range []struct {
			layer []byte
			want  string
		}{{app1, "one"}, {app2, "two"}} {
			ms, err := s.View(ctx, "v-"+app.want, ChainIDs([]string{digestOf(base), digestOf(app.layer)})[1])
			if err != nil {
				t.Fatal(err)
			}
			m := mountT(t, ms)
			if readFile(t, filepath.Join(m, "app")) != app.want || readFile(t, filepath.Join(m, "etc/os-release")) != "base" {
				t.Errorf("image %s content wrong", app.want)
			}
		}
	})
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Layers may be unpacked in any order; each is recorded once its parent is.
func TestUnpackChildBeforeParent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		s := openT(t, t.TempDir(), driver)
		ctx := context.Background()
		etc := hdrDir("etc/", 0o750)
		etc.Uid, etc.Gid = 5, 6
		varDir := hdrDir("var/", 0o711)
		varDir.Uid = 7
		l1 := makeTar(t, etc, hdrFile("etc/hosts", 0o644, "hosts"), varDir, hdrDir("var/log/", 0o755))
		// etc/ and var/log/ are implied; var/log is then replaced by a file.
		l2 := makeTar(t, hdrFile("etc/passwd", 0o644, "root:x:0:0"), hdrFile("var/log/x", 0o644, "x"), hdrFile("var/log", 0o600, "file"))
		c1 := ChainID("", digestOf(l1))
		done := make(chan error, 1)
		go func() {
			_, err := s.Unpack(ctx, c1, digestOf(l2), bytes.NewReader(l2))
			done <- err
		}()
		if _, err := s.Unpack(ctx, "", digestOf(l1), bytes.NewReader(l1)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		ms, err := s.View(ctx, "v", ChainID(c1, digestOf(l2)))
		if err != nil {
			t.Fatal(err)
		}
		m := mountT(t, ms)
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(m, "etc"), &st); err != nil || st.Mode&0o7777 != 0o750 || st.Uid != 5 || st.Gid != 6 {
			t.Errorf("etc is %o %d:%d (%v), want the base layer's 750 5:6", st.Mode&0o7777, st.Uid, st.Gid, err)
		}
		if err := unix.Stat(filepath.Join(m, "var"), &st); err != nil || st.Mode&0o7777 != 0o711 || st.Uid != 7 {
			t.Errorf("var is %o uid %d (%v), want the base layer's 711 uid 7", st.Mode&0o7777, st.Uid, err)
		}
		if err := unix.Stat(filepath.Join(m, "var/log"), &st); err != nil || st.Mode&0o7777 != 0o600 || st.Mode&unix.S_IFMT != unix.S_IFREG {
			t.Errorf("var/log is %o (%v), want the layer's 600 file", st.Mode, err)
		}
		if readFile(t, filepath.Join(m, "etc/hosts")) != "hosts" || readFile(t, filepath.Join(m, "etc/passwd")) != "root:x:0:0" {
			t.Error("merged etc is missing a layer's file")
		}
	})
}

func Test128LayerMount(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		// A long root, so 128 absolute lower dirs surely exceed a page.
		s := openT(t, filepath.Join(t.TempDir(), strings.Repeat("long", 16)), driver)
		ctx := context.Background()
		parent := ""
		for i := 0; i < 128; i++ {
			l := makeTar(t, hdrFile(fmt.Sprintf("layers/%03d", i), 0o644, strconv.Itoa(i)), hdrFile("top", 0o644, strconv.Itoa(i)))
			parent = unpackT(t, s, parent, l)
		}
		ms, err := s.Prepare(ctx, "ctr", parent)
		if err != nil {
			t.Fatal(err)
		}
		if driver == Overlay {
			if n := len(ms[0].Options[1]); n < os.Getpagesize() {
				t.Fatalf("lowerdir option is %d bytes; the test must exceed a page (%d)", n, os.Getpagesize())
			}
		}
		m := mountT(t, ms)
		entries, err := os.ReadDir(filepath.Join(m, "layers"))
		if err != nil || len(entries) != 128 {
			t.Fatalf("merged layers/ has %d entries (%v), want 128", len(entries), err)
		}
		if got := readFile(t, filepath.Join(m, "top")); got != "127" {
			t.Errorf("top = %q, want the last layer's", got)
		}
	})
}

func TestDiffIDMismatchKeepsNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		root := t.TempDir()
		s := openT(t, root, driver)
		ctx := context.Background()
		l := makeTar(t, hdrFile("a", 0o644, "a"))
		wrong := digestOf([]byte("not this layer"))
		_, err := s.Unpack(ctx, "", wrong, bytes.NewReader(gzipBytes(t, l)))
		var de *DiffIDError
		if !errors.As(err, &de) {
			t.Fatalf("err = %v, want DiffIDError", err)
		}
		if ok, _ := s.Has(ctx, wrong); ok {
			t.Error("mismatched layer recorded")
		}
		assertSnapshotDirs(t, root, 0)
	})
}

// Layers that each fit the layer limit can together make too big an
// image: the stack's sum is bounded too, with an error that names the
// layer, the limit and the setting, and the layers below stay.
func TestImageSizeLimit(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		root := t.TempDir()
		db, err := metadata.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := Open(db, root, Options{Driver: driver, Limits: Limits{MaxBytes: 1 << 20, MaxImageBytes: 1536 << 10}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		body := strings.Repeat("x", 600<<10)
		l1, l2, l3 := makeTar(t, hdrFile("a", 0o644, body)), makeTar(t, hdrFile("b", 0o644, body)), makeTar(t, hdrFile("c", 0o644, body))
		c2 := ChainID(ChainID("", digestOf(l1)), digestOf(l2))
		check := func(err error, size int64) {
			t.Helper()
			var ie *ImageLimitError
			if !errors.As(err, &ie) || ie.Limit != 1536<<10 || ie.Below != 1200<<10 || ie.Size != size {
				t.Fatalf("err = %v, want an ImageLimitError over 1.5 MiB with 1200 KiB below, size %d", err, size)
			}
			for _, says := range []string{digestOf(l3), "1.5MiB", "[storage] max_image_size", "hull.toml"} {
				if !strings.Contains(err.Error(), says) {
					t.Errorf("error %q does not say %q", err, says)
				}
			}
			if ok, _ := s.Has(ctx, ChainID(c2, digestOf(l3))); ok {
				t.Error("the layer over the image limit was recorded")
			}
			if ok, _ := s.Has(ctx, c2); !ok {
				t.Error("the layers below the one over the limit were lost")
			}
			assertSnapshotDirs(t, root, 2)
		}
		// The top layer starts before its parents are in. Overlay applies
		// it alone (it has read the whole layer before they come) and
		// checks the sum once they are; copy waits for them and stops the
		// layer as it goes over.
		done := make(chan error, 1)
		read := &eofSignal{r: bytes.NewReader(l3), eof: make(chan struct{})}
		go func() {
			_, err := s.Unpack(ctx, c2, digestOf(l3), read)
			done <- err
		}()
		size := int64(-1)
		if driver == Overlay {
			<-read.eof
			size = 1800 << 10
		}
		if got := unpackT(t, s, "", l1, l2); got != c2 {
			t.Fatalf("chain %s, want %s", got, c2)
		}
		check(<-done, size)
		// With its parents in, the layer is stopped as it goes over.
		_, err = s.Unpack(ctx, c2, digestOf(l3), bytes.NewReader(l3))
		check(err, -1)
		// A smaller layer still fits on the same stack.
		unpackT(t, s, c2, makeTar(t, hdrFile("d", 0o644, "small")))
	})
}

// eofSignal closes eof when its reader is read to the end.
type eofSignal struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// A sparse layer's snapshot counts its files whole (Info.Size, what the
// image limit sums) but its disk usage is the blocks it really takes.
func TestSparseLayerUsage(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		s := openT(t, t.TempDir(), driver)
		const size = 300 << 20
		l := append(paxSparseEntry("sparse", size, []sparseRegion{{0, "head"}, {size - 4, "tail"}}), make([]byte, 1024)...)
		c := unpackT(t, s, "", l)
		info, err := s.Stat(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != size {
			t.Errorf("Info.Size = %d, want the file's full size %d", info.Size, size)
		}
		u, err := s.Usage(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if u.Size <= 0 || u.Size > 1<<20 {
			t.Errorf("usage %d bytes, want the few blocks the layer takes", u.Size)
		}
	})
}

// assertSnapshotDirs checks that snapshots/ holds n snapshot dirs and tmp/ is empty.
func assertSnapshotDirs(t *testing.T, root string, n int) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	got := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			got++
		}
	}
	if got != n {
		t.Errorf("%d snapshot dirs, want %d", got, n)
	}
	tmp, _ := os.ReadDir(filepath.Join(root, "snapshots/tmp"))
	if len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}
}

// A symlink planted by one layer must not carry a later layer's entries
// (or the container's view of them) outside the snapshot.
func TestCrossLayerEscapes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		os.MkdirAll(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "victim"), []byte("original"), 0o644)
		s := openT(t, root, driver)
		before := treeState(t, base, root)
		ctx := context.Background()

		l1 := makeTar(t, hdrSymlink("evil", outside), hdrSymlink("rel", "../../../../../../.."+outside),
			hdrSymlink("victimlink", outside+"/victim"), hdrDir("real/", 0o755))
		c1 := unpackT(t, s, "", l1)
		for i, hdrs := range [][]*tar.Header{
			{hdrFile("evil/pwned", 0o644, "pwned")},
			{hdrFile("rel/pwned", 0o644, "pwned")},
			{hdrLink("hl", "evil/victim")},
			{hdrLink("hl", "victimlink"), hdrFile("hl", 0o644, "pwned")},
			{hdrFile("victimlink", 0o644, "pwned")},
			{hdrFile("evil/.wh.victim", 0o644, "")},
			{hdrFile("evil/.wh..wh..opq", 0o644, "")},
		} {
			l := makeTar(t, hdrs...)
			c, err := s.Unpack(ctx, c1, digestOf(l), bytes.NewReader(l))
			if err == nil {
				ms, err := s.Prepare(ctx, fmt.Sprintf("c%d", i), c)
				if err != nil {
					t.Fatal(err)
				}
				mountT(t, ms)
			}
			if after := treeState(t, base, root); !equalStates(before, after) {
				t.Fatalf("layer %d (%v) changed the host outside the root:\nbefore %v\nafter  %v", i, hdrs[0].Name, before, after)
			}
		}
	})
}

func TestRetainReleasePrune(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		root := t.TempDir()
		s := openT(t, root, driver)
		ctx := context.Background()
		base := makeTar(t, hdrFile("base", 0o644, "b"))
		a := makeTar(t, hdrFile("a", 0o644, "a"))
		b := makeTar(t, hdrFile("b", 0o644, "b"))
		chainsA := ChainIDs([]string{digestOf(base), digestOf(a)})
		chainsB := ChainIDs([]string{digestOf(base), digestOf(b)})
		// Retain before unpacking, as a puller does.
		if err := s.Retain(ctx, "image:A", chainsA...); err != nil {
			t.Fatal(err)
		}
		if err := s.Retain(ctx, "image:B", chainsB...); err != nil {
			t.Fatal(err)
		}
		unpackT(t, s, "", base, a)
		unpackT(t, s, chainsA[0], b)
		ctrMounts, err := s.Prepare(ctx, "ctrA", chainsA[1])
		if err != nil {
			t.Fatal(err)
		}
		prune := func(want ...string) {
			t.Helper()
			unused, err := s.Unused(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range unused {
				names = append(names, u.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Fatalf("unused %v, want %v", names, want)
			}
			res, err := s.Prune(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res.Removed) != fmt.Sprint(want) {
				t.Fatalf("pruned %v, want %v", res.Removed, want)
			}
		}
		prune()
		if err := s.Release(ctx, "image:A"); err != nil {
			t.Fatal(err)
		}
		prune() // ctrA still runs on A's layers
		if driver == Overlay {
			target := mountT(t, ctrMounts)
			if err := s.Remove(ctx, "ctrA"); err == nil || !strings.Contains(err.Error(), "still mounted on "+target) {
				t.Fatalf("Remove of a mounted snapshot: %v, want it refused", err)
			}
			if _, err := s.RemoveLater(ctx, "ctrA"); err == nil || !strings.Contains(err.Error(), "still mounted on "+target) {
				t.Fatalf("RemoveLater of a mounted snapshot: %v, want it refused", err)
			}
			if err := Unmount(target); err != nil {
				t.Fatal(err)
			}
			// Unmounted by the caller, who says so: no mount table search.
			trash, err := s.RemoveUnmounted(ctx, "ctrA")
			if err != nil || trash == "" {
				t.Fatalf("RemoveUnmounted: %q, %v", trash, err)
			}
			if ok, _ := s.Has(ctx, "ctrA"); ok {
				t.Fatal("ctrA still recorded after RemoveUnmounted")
			}
			if err := os.RemoveAll(trash); err != nil {
				t.Fatal(err)
			}
		} else if err := s.Remove(ctx, "ctrA"); err != nil {
			t.Fatal(err)
		}
		prune(chainsA[1]) // the base stays for B
		for _, c := range chainsB {
			if ok, _ := s.Has(ctx, c); !ok {
				t.Errorf("%s pruned while image B retains it", c)
			}
		}
		s.Release(ctx, "image:B")
		prune(chainsB[0], chainsB[1])
		assertSnapshotDirs(t, root, 0)
		if locks, _ := os.ReadDir(filepath.Join(root, "snapshots/locks")); len(locks) != 0 {
			t.Errorf("lock files of pruned layers left: %v", locks)
		}
	})
}

// TestMain doubles as a second hull process: with HULL_SNAPSHOT_HELPER_ROOT
// set, the test binary unpacks helperLayer into that root, stopping half way
// until the file <root>/go exists (never, for the crash test), and writes
// how many blob bytes it read to <root>/read-<HULL_SNAPSHOT_HELPER_NAME>.
func TestMain(m *testing.M) {
	if root := os.Getenv("HULL_SNAPSHOT_HELPER_ROOT"); root != "" {
		unpackHelper(root, os.Getenv("HULL_SNAPSHOT_HELPER_DRIVER"), os.Getenv("HULL_SNAPSHOT_HELPER_NAME"))
		return
	}
	os.Exit(m.Run())
}

func helperLayer(t fataler) []byte {
	var hdrs []*tar.Header
	for i := 0; i < 100; i++ {
		hdrs = append(hdrs, hdrFile(fmt.Sprintf("f%d", i), 0o644, "content"))
	}
	return makeTar(t, hdrs...)
}

func unpackHelper(root, driver, name string) {
	db, err := metadata.Open(root)
	if err != nil {
		panic(err)
	}
	s, err := Open(db, root, Options{Driver: driver})
	if err != nil {
		panic(err)
	}
	layer := helperLayer(panicker{})
	lockBusyHook = func(string) { os.WriteFile(filepath.Join(root, "waiting-"+name), nil, 0o644) }
	var read atomic.Int64
	pr, pw := io.Pipe()
	go func() {
		pw.Write(layer[:len(layer)/2])
		// Half the layer is in; tell the test, then wait for its go.
		os.WriteFile(filepath.Join(root, "half-"+name), nil, 0o644)
		for {
			if _, err := os.Stat(filepath.Join(root, "go")); err == nil {
				break
			}
			unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
		}
		pw.Write(layer[len(layer)/2:])
		pw.Close()
	}()
	if _, err := s.Unpack(context.Background(), "", digestOf(layer), &countingReader{r: pr, n: &read}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.WriteFile(filepath.Join(root, "read-"+name), []byte(strconv.FormatInt(read.Load(), 10)), 0o644)
	os.Exit(0)
}

// startHelper starts unpackHelper in a new process and waits until it has
// read half the layer (or, with waitHalf false, only starts it).
func startHelper(t *testing.T, root, driver, name string, waitHalf bool) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HULL_SNAPSHOT_HELPER_ROOT="+root, "HULL_SNAPSHOT_HELPER_DRIVER="+driver, "HULL_SNAPSHOT_HELPER_NAME="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		exited <- err
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	for waitHalf {
		if _, err := os.Stat(filepath.Join(root, "half-"+name)); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("helper %s exited early: %v", name, err)
		default:
			unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
		}
	}
	return cmd, exited
}

// Two processes unpacking one layer at once: the second waits on the
// chain's file lock and then finds the layer done, reading nothing.
func TestConcurrentProcessesUnpackOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		root := t.TempDir()
		s := openT(t, root, driver)
		_, firstDone := startHelper(t, root, driver, "first", true)
		_, secondDone := startHelper(t, root, driver, "second", false)
		// Once the second waits on the lock the first holds, let the first
		// finish.
		for {
			if _, err := os.Stat(filepath.Join(root, "waiting-second")); err == nil {
				break
			}
			select {
			case err := <-secondDone:
				t.Fatalf("second process finished without waiting for the first: %v", err)
			default:
				unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
			}
		}
		os.WriteFile(filepath.Join(root, "go"), nil, 0o644)
		for _, done := range []chan error{firstDone, secondDone} {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		layer := helperLayer(t)
		if got := readFile(t, filepath.Join(root, "read-first")); got != strconv.Itoa(len(layer)) {
			t.Errorf("first process read %s bytes, want the whole layer (%d)", got, len(layer))
		}
		if got := readFile(t, filepath.Join(root, "read-second")); got != "0" {
			t.Errorf("second process read %s bytes, want 0 (the layer was unpacked by the first)", got)
		}
		if ok, err := s.Has(context.Background(), digestOf(layer)); !ok || err != nil {
			t.Errorf("layer not recorded: %v", err)
		}
		assertSnapshotDirs(t, root, 1)
	})
}

func TestCrashLeftoversCleaned(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		root := t.TempDir()
		s := openT(t, root, driver)
		ctx := context.Background()
		base := makeTar(t, hdrFile("base", 0o644, "b"))
		chain := unpackT(t, s, "", base)

		// A process killed mid-unpack.
		cmd, exited := startHelper(t, root, driver, "crash", true)
		cmd.Process.Signal(unix.SIGKILL)
		<-exited
		tmp, _ := os.ReadDir(filepath.Join(root, "snapshots/tmp"))
		if len(tmp) == 0 {
			t.Fatal("the killed unpack left no temp dir; the test proves nothing")
		}

		// A crash after a directory was moved into place but before its row
		// committed, and a row whose directory is gone.
		os.MkdirAll(filepath.Join(root, "snapshots/999/fs"), 0o755)
		if _, err := s.db.Exec(`INSERT INTO snapshots(driver, kind, name, parent, created) VALUES(?, 'committed', ?, '', 0)`,
			driver, digestOf([]byte("ghost"))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(`INSERT INTO snapshots(driver, kind, name, parent, created) VALUES(?, 'active', 'ghost-child', ?, 0)`,
			driver, digestOf([]byte("ghost"))); err != nil {
			t.Fatal(err)
		}

		s2 := openT(t, root, driver)
		assertSnapshotDirs(t, root, 1)
		list, err := s2.List(ctx)
		if err != nil || len(list) != 1 || list[0].Name != chain {
			t.Fatalf("after cleanup: %+v, %v; want only %s", list, err, chain)
		}
		// The store is usable: the killed layer unpacks now.
		unpackT(t, s2, "", helperLayer(t))
	})
}

// TestBuildDirSpreadsSubdirs: on ext4 the directory snapshots are built in
// carries the "T" attribute, so each new snapshot gets a block group of
// its own rather than one full of a just-removed image's freed inodes.
func TestBuildDirSpreadsSubdirs(t *testing.T) {
	root := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skip("the temp dir is not on ext4")
	}
	s := openT(t, root, Overlay)
	fd, err := unix.Open(s.tmpDir(), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if flags&0x00020000 == 0 {
		t.Fatalf("%s flags %#x: no FS_TOPDIR_FL", s.tmpDir(), flags)
	}
}

// A volatile writable layer mounts again once ClearVolatile has removed
// the marker its first mount left (the kernel refuses it otherwise).
func TestVolatileLayerMountsAgain(t *testing.T) {
	s := openT(t, t.TempDir(), Overlay)
	chain := unpackT(t, s, "", makeTar(t, hdrFile("f", 0o644, "f")))
	ms, err := s.Prepare(context.Background(), "ctr", chain)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := MountAll(Volatile(ms), target); err != nil {
		if errors.Is(err, unix.EINVAL) {
			t.Skip("this kernel has no volatile overlays")
		}
		t.Fatal(err)
	}
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if err := MountAll(Volatile(ms), target); err == nil {
		unix.Unmount(target, 0)
		t.Skip("this kernel remounts a volatile layer without clearing it")
	}
	if err := ClearVolatile(ms); err != nil {
		t.Fatal(err)
	}
	if err := MountAll(Volatile(ms), target); err != nil {
		t.Fatalf("mount again after ClearVolatile: %v", err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)
	if readFile(t, filepath.Join(target, "f")) != "f" {
		t.Error("the layer's content is not there")
	}
}

// DiskUsage counts a file's blocks once however many links it has, and
// stops at a filesystem mounted below the directory, as du -x does (a
// pod's emptyDir may have one; kube's sizeLimit must not count it).
func TestDiskUsage(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	data := bytes.Repeat([]byte("x"), 64<<10)
	if err := os.WriteFile(filepath.Join(dir, "a"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	one, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if one.Size < int64(len(data)) || one.Size >= 2*int64(len(data)) || one.Inodes != 2 {
		t.Errorf("usage with a file linked twice: %+v, want its %d bytes once and 2 inodes (the directory, the file)", one, len(data))
	}

	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(mnt, "c"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.Size >= one.Size+int64(len(data)) {
		t.Errorf("usage with a tmpfs below holding %d bytes: %+v, counted it (without: %+v)", len(data), u, one)
	}
}
