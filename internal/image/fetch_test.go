package image_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/config"
	"hull/internal/image"
	"hull/internal/snapshot"
	"hull/internal/testenv"
)

// blobFault is what the proxy does to one GET of the path it watches.
type blobFault int

const (
	serveWhole    blobFault = iota
	stallMidway             // send half of the response, then nothing, for ever
	cutMidway               // send half of the response, then drop the connection
	ignoreRange             // answer a Range request with the whole blob (200)
	cutThenWhole            // cut the first GET, ignore Range after
	cutThenRange            // cut the first GET, honour Range after
	trickleMidway           // send half of the response (none of a range), then a byte every 100 ms
)

// blobGet is one GET of the watched path as the proxy saw and served it.
type blobGet struct {
	rangeHeader string
	status      int
	sent        int64
	size        int64 // Content-Length of the response
}

// blobProxy stands on 127.0.0.1 between hull and the test registry, passes
// everything through, and interferes with the GETs of one blob (or
// manifest) as its fault says.
type blobProxy struct {
	addr  string
	watch string // the end of the path: "/blobs/sha256:...", "/manifests/1.0"
	fault blobFault

	upstream string
	rp       *httputil.ReverseProxy
	stop     chan struct{}

	mu   sync.Mutex
	gets []blobGet
}

func newBlobProxy(t *testing.T, reg *testenv.Registry, watch string, fault blobFault) *blobProxy {
	t.Helper()
	p := &blobProxy{watch: watch, fault: fault, upstream: reg.Addr, stop: make(chan struct{})}
	p.rp = httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Addr})
	srv := httptest.NewServer(p)
	// A stalled handler waits for the client to go, or for this.
	t.Cleanup(func() { close(p.stop); srv.Close() })
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// ref is a reference of the registry's, reached through the proxy.
func (p *blobProxy) ref(registryRef string) string {
	return p.addr + registryRef[strings.Index(registryRef, "/"):]
}

func (p *blobProxy) blobGets() []blobGet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]blobGet(nil), p.gets...)
}

func (p *blobProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, p.watch) {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	attempt := len(p.gets)
	p.gets = append(p.gets, blobGet{rangeHeader: r.Header.Get("Range")})
	p.mu.Unlock()
	record := func(f func(*blobGet)) {
		p.mu.Lock()
		f(&p.gets[attempt])
		p.mu.Unlock()
	}

	fault := p.fault
	switch {
	case fault == cutThenWhole && attempt == 0, fault == cutThenRange && attempt == 0:
		fault = cutMidway
	case fault == cutThenWhole:
		fault = ignoreRange
	case fault == cutThenRange:
		fault = serveWhole
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+p.upstream+r.URL.Path, nil)
	req.Header = r.Header.Clone()
	if fault == ignoreRange {
		req.Header.Del("Range")
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	record(func(g *blobGet) { g.status, g.size = resp.StatusCode, resp.ContentLength })

	send := func(n int64) {
		m, _ := io.CopyN(w, resp.Body, n)
		record(func(g *blobGet) { g.sent += m })
		w.(http.Flusher).Flush()
	}
	switch fault {
	case stallMidway:
		send(max(resp.ContentLength/2, 1))
		select {
		case <-r.Context().Done():
		case <-p.stop:
		}
	case cutMidway:
		send(max(resp.ContentLength/2, 1))
		panic(http.ErrAbortHandler) // closes the connection mid-body
	case trickleMidway:
		if r.Header.Get("Range") == "" {
			send(max(resp.ContentLength/2, 1))
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case <-p.stop:
				return
			case <-time.After(100 * time.Millisecond):
				send(1)
			}
		}
	default:
		send(resp.ContentLength)
	}
}

// progressLog records a pull's progress updates.
type progressLog struct {
	mu      sync.Mutex
	updates map[string][]progressUpdate
}

type progressUpdate struct {
	state          image.LayerState
	current, total int64
}

func (l *progressLog) Update(id string, state image.LayerState, current, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.updates == nil {
		l.updates = map[string][]progressUpdate{}
	}
	l.updates[id] = append(l.updates[id], progressUpdate{state, current, total})
}

func (l *progressLog) of(id string) []progressUpdate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.updates[id]
}

// noHang bounds a pull that, without an idle timeout, would never end: a
// failure deadline, far beyond what the test's own timeouts add up to.
func noHang(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// A registry that stops sending in the middle of a layer, without closing
// the connection: the pull fails once nothing has arrived for the idle
// timeout (on every attempt), naming the layer and the timeout to raise;
// nothing partial is stored and the image pulled before is intact.
func TestPullStalledBlobTimesOut(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox, testenv.FixLayered)
	image.SetRetryBackoff(t, time.Millisecond)
	root := t.TempDir()
	svc := newServiceWith(t, root, snapshot.Overlay, func(c *config.Config) {
		c.Registries.PullIdleTimeout = time.Second
	})
	if _, err := svc.Pull(ctx, fx.Busybox.Ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}

	top := len(fx.Layered.Layers) // the layered fixture's own last layer
	layer := fx.Layered.Layers[top-1]
	proxy := newBlobProxy(t, reg, "/blobs/"+layer, stallMidway)
	ref := proxy.ref(fx.Layered.Ref)
	_, err := svc.Pull(noHang(t), ref, image.PullOptions{})
	t.Logf("pull: %v", err)
	short := strings.TrimPrefix(layer, "sha256:")[:12]
	checkGaveUp(t, err, proxy, fmt.Sprintf("layer %d of %d %s stalled", top, top, short), "sent nothing for 1s", "5 attempts", "pull_idle_timeout")

	if d, _ := v1.NewHash(layer); svc.Store().Has(d) {
		t.Error("the stalled layer became visible in the store")
	}
	if left, _ := filepath.Glob(filepath.Join(root, "images", "ingest", "*.tmp")); len(left) != 0 {
		t.Errorf("partial downloads left behind: %v", left)
	}
	recs, _ := svc.List(ctx)
	if len(recs) != 1 || recs[0].Digest.String() != fx.Busybox.Digest {
		t.Errorf("want only the busybox image recorded, got %+v", recs)
	}
	if _, err := svc.Resolve(ctx, fx.Busybox.Ref); err != nil {
		t.Errorf("the image pulled before: %v", err)
	}
	verifyStore(t, svc)
}

// checkGaveUp checks a pull that gave up on the proxy's blob: a download
// error saying each of says, after 5 requests, each after the first
// resuming where the last stopped.
func checkGaveUp(t *testing.T, err error, proxy *blobProxy, says ...string) {
	t.Helper()
	for _, s := range says {
		if !strings.Contains(fmt.Sprint(err), s) {
			t.Errorf("error should say %q: %v", s, err)
		}
	}
	if !image.IsKind(err, image.ErrDownload) {
		t.Errorf("want a %q error, got %v", image.ErrDownload, err)
	}
	gets := proxy.blobGets()
	if len(gets) != 5 {
		t.Errorf("the blob was requested %d times, want 5", len(gets))
	}
	for i, g := range gets[1:] {
		if g.rangeHeader == "" {
			t.Errorf("attempt %d asked for the whole blob again", i+2)
		}
	}
}

// A registry that keeps sending a layer, but at 10 bytes/s, under
// registries.pull_min_rate: each attempt fails once a second of reading
// has brought less, and the pull fails naming the rate and the setting
// to lower, keeping nothing partial.
func TestPullTooSlowBlobFails(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixLayered)
	image.SetRetryBackoff(t, time.Millisecond)
	root := t.TempDir()
	svc := newServiceWith(t, root, snapshot.Overlay, func(c *config.Config) {
		c.Registries.PullIdleTimeout = time.Second
		c.Registries.PullMinRate = 1000
	})
	top := len(fx.Layered.Layers)
	layer := fx.Layered.Layers[top-1]
	proxy := newBlobProxy(t, reg, "/blobs/"+layer, trickleMidway)
	start := time.Now()
	_, err := svc.Pull(noHang(t), proxy.ref(fx.Layered.Ref), image.PullOptions{})
	t.Logf("pull: %v (after %s)", err, time.Since(start))
	checkGaveUp(t, err, proxy, fmt.Sprintf("layer %d of %d", top, top), "came too slowly", "bytes/s, under registries.pull_min_rate (1000)", "5 attempts", "lower registries.pull_min_rate")
	if left, _ := filepath.Glob(filepath.Join(root, "images", "ingest", "*.tmp")); len(left) != 0 {
		t.Errorf("partial downloads left behind: %v", left)
	}
	verifyStore(t, svc)
}

// A manifest that stops half way fails the pull after the idle timeout
// (a manifest is small: it is not retried), saying what stalled.
func TestPullStalledManifestTimesOut(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	svc := newServiceWith(t, "", snapshot.Overlay, func(c *config.Config) {
		c.Registries.PullIdleTimeout = time.Second
	})
	tag := fx.Busybox.Ref[strings.LastIndex(fx.Busybox.Ref, ":")+1:]
	proxy := newBlobProxy(t, reg, "/manifests/"+tag, stallMidway)
	_, err := svc.Pull(noHang(t), proxy.ref(fx.Busybox.Ref), image.PullOptions{})
	t.Logf("pull: %v", err)
	if !image.IsKind(err, image.ErrDownload) || !strings.Contains(err.Error(), "sent nothing for 1s while answering GET /v2/hull-test/busybox/manifests/"+tag) {
		t.Errorf("want a %q error naming the manifest, got %v", image.ErrDownload, err)
	}
	if len(proxy.blobGets()) != 1 {
		t.Errorf("manifest requested %d times", len(proxy.blobGets()))
	}
	if recs, _ := svc.List(ctx); len(recs) != 0 {
		t.Errorf("recorded %+v", recs)
	}
}

// A connection dropped in the middle of a layer: the pull asks for the rest
// (Range) and gets only the rest, the progress bar carries on from where it
// was, and the image is whole.
func TestPullResumesBrokenBlob(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	image.SetRetryBackoff(t, time.Millisecond)
	svc := newService(t, "")
	layer := fx.Busybox.Layers[0]
	proxy := newBlobProxy(t, reg, "/blobs/"+layer, cutThenRange)
	var prog progressLog
	res, err := svc.Pull(noHang(t), proxy.ref(fx.Busybox.Ref), image.PullOptions{Progress: &prog})
	if err != nil {
		t.Fatalf("pull through a connection cut mid-layer: %v", err)
	}
	if res.Manifest.String() != fx.Busybox.Digest {
		t.Errorf("pulled %s, want %s", res.Manifest, fx.Busybox.Digest)
	}
	gets := proxy.blobGets()
	if len(gets) != 2 {
		t.Fatalf("want the layer requested twice (cut, then resumed), got %+v", gets)
	}
	first, second := gets[0], gets[1]
	if first.rangeHeader != "" || first.sent == 0 || first.sent >= first.size {
		t.Errorf("first GET: %+v, want a whole-blob request cut part way", first)
	}
	if want := fmt.Sprintf("bytes=%d-", first.sent); second.rangeHeader != want {
		t.Errorf("second GET asked for %q, want %q", second.rangeHeader, want)
	}
	if second.status != http.StatusPartialContent || second.sent != first.size-first.sent {
		t.Errorf("second GET: %+v, want 206 with the %d bytes the first did not send", second, first.size-first.sent)
	}

	// The bar never goes back, and says it is retrying.
	id := strings.TrimPrefix(layer, "sha256:")[:12]
	var last int64
	retried := false
	for _, u := range prog.of(id) {
		switch u.state {
		case image.StateRetrying:
			retried = true
			fallthrough
		case image.StateDownloading, image.StateVerifying:
			if u.current < last {
				t.Errorf("progress went back from %d to %d (%s)", last, u.current, u.state)
			}
			last = u.current
		}
	}
	if !retried {
		t.Errorf("progress never showed %q: %+v", image.StateRetrying, prog.of(id))
	}
	if _, err := svc.Resolve(ctx, proxy.ref(fx.Busybox.Ref)); err != nil {
		t.Error(err)
	}
	verifyStore(t, svc)
}

// A registry that ignores Range answers the resumed request with the whole
// blob: the pull skips what it already has and still stores a verified
// layer.
func TestPullRestartsWhenRangeIgnored(t *testing.T) {
	reg, fx := testenv.Setup(t, testenv.FixBusybox)
	image.SetRetryBackoff(t, time.Millisecond)
	svc := newService(t, "")
	layer := fx.Busybox.Layers[0]
	proxy := newBlobProxy(t, reg, "/blobs/"+layer, cutThenWhole)
	if _, err := svc.Pull(noHang(t), proxy.ref(fx.Busybox.Ref), image.PullOptions{}); err != nil {
		t.Fatalf("pull through a registry that ignores Range: %v", err)
	}
	gets := proxy.blobGets()
	if len(gets) != 2 {
		t.Fatalf("want the layer requested twice, got %+v", gets)
	}
	if second := gets[1]; second.rangeHeader == "" || second.status != http.StatusOK || second.sent != second.size || second.size != gets[0].size {
		t.Errorf("second GET: %+v, want a Range request answered 200 with the whole blob", second)
	}
	if d, _ := v1.NewHash(layer); !svc.Store().Has(d) {
		t.Error("layer not stored")
	}
	verifyStore(t, svc)
}
