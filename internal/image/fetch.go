package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// A registry, or the network to it, can stop sending in the middle of a
// response without closing the connection; nothing in HTTP then ends the
// read. So every GET to a registry fails once nothing has arrived for the
// configured idle time, and a blob whose download stalls or breaks off is
// asked for again from the byte where it stopped, a few times with
// back-off, as docker does.

// blobAttempts is how many times a blob is requested before the pull gives
// up on it (docker's five).
const blobAttempts = 5

// retryBackoff is the wait before a blob's second attempt; it doubles for
// each later one (0.5, 1, 2, 4 s). Tests shorten it.
var retryBackoff = 500 * time.Millisecond

// idleTimeout makes a GET or HEAD fail with a *stallError once nothing has
// arrived for d: first the response's headers, then, during each read of
// its body, any byte of it; and, with minRate > 0, once its body has come
// slower than minRate bytes a second over d of reading. Time the reader
// spends between reads (hashing, writing, unpacking) does not count.
// Other methods pass untouched: an upload sends for as long as its body
// takes.
func idleTimeout(d time.Duration, minRate int64, next http.RoundTripper) http.RoundTripper {
	if d <= 0 {
		return next
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return next.RoundTrip(r)
		}
		ctx, cancel := context.WithCancel(r.Context())
		w := &idleWatch{idle: d, minRate: minRate, host: r.URL.Host, path: r.URL.Path, cancel: cancel}
		w.timer = time.AfterFunc(d, w.expire)
		resp, err := next.RoundTrip(r.WithContext(ctx))
		w.timer.Stop()
		if err != nil {
			cancel()
			return nil, w.check(err)
		}
		w.body = resp.Body
		resp.Body = w
		return resp, nil
	})
}

// idleWatch is a response body whose reads are cancelled, by cancelling the
// request, when they wait longer than idle.
type idleWatch struct {
	idle       time.Duration
	minRate    int64 // bytes a second; 0: none
	host, path string
	cancel     context.CancelFunc
	timer      *time.Timer
	stalled    atomic.Bool
	body       io.ReadCloser
	got        int64
	// The rate's window: bytes read and time spent in reads since it
	// began.
	windowBytes int64
	windowTime  time.Duration
}

func (w *idleWatch) expire() {
	w.stalled.Store(true)
	w.cancel()
}

func (w *idleWatch) Read(p []byte) (int, error) {
	w.timer.Reset(w.idle)
	start := time.Now()
	n, err := w.body.Read(p)
	w.timer.Stop()
	w.got += int64(n)
	if err != nil && err != io.EOF {
		return n, w.check(err)
	}
	if w.minRate > 0 && err == nil {
		w.windowBytes += int64(n)
		w.windowTime += time.Since(start)
		if w.windowTime >= w.idle {
			rate := float64(w.windowBytes) / w.windowTime.Seconds()
			if rate < float64(w.minRate) {
				w.cancel()
				return n, &stallError{host: w.host, path: w.path, idle: w.idle, got: w.got, minRate: w.minRate, rate: rate}
			}
			w.windowBytes, w.windowTime = 0, 0
		}
	}
	return n, err
}

func (w *idleWatch) Close() error {
	w.timer.Stop()
	w.cancel()
	return w.body.Close()
}

// check turns the cancellation the timer caused into the stall it stands for.
func (w *idleWatch) check(err error) error {
	if w.stalled.Load() {
		return &stallError{host: w.host, path: w.path, idle: w.idle, got: w.got}
	}
	return err
}

// stallError is a registry response that sent nothing for the idle time.
// It does not unwrap to the context.Canceled that ended the read: the pull
// was not cancelled, the registry went quiet.
//
// With rate set (minRate > 0), the registry kept sending, but slower than
// registries.pull_min_rate.
type stallError struct {
	host, path string
	idle       time.Duration
	got        int64 // bytes of this response's body that had arrived
	minRate    int64
	rate       float64 // bytes a second over the last window; 0: a stall
}

func (e *stallError) Error() string {
	if e.minRate > 0 {
		return fmt.Sprintf("%s sent %.0f bytes/s over %s, under registries.pull_min_rate (%d), while answering GET %s (after %d bytes of the response)", e.host, e.rate, e.idle, e.minRate, e.path, e.got)
	}
	return fmt.Sprintf("%s sent nothing for %s while answering GET %s (after %d bytes of the response)", e.host, e.idle, e.path, e.got)
}

// what went wrong, for a download error ("sent nothing for 30s").
func (e *stallError) what() string {
	if e.minRate > 0 {
		return fmt.Sprintf("sent %.0f bytes/s, under registries.pull_min_rate (%d)", e.rate, e.minRate)
	}
	return "sent nothing for " + e.idle.String()
}

// hint is what to change in hull.toml for a slow link.
func (e *stallError) hint() string {
	if e.minRate > 0 {
		return fmt.Sprintf("on a slow link lower registries.pull_min_rate in hull.toml (now %d bytes/s; 0: no minimum)", e.minRate)
	}
	return fmt.Sprintf("on a slow link raise registries.pull_idle_timeout in hull.toml (now %s)", e.idle)
}

// blobFetch names a blob to download, for errors and progress.
type blobFetch struct {
	digest v1.Hash
	size   int64  // expected length, -1 if unknown
	what   string // "config", "layer 2 of 5"
	// retrying, if set, is told before each retry how many bytes are kept.
	retrying func(got int64)
}

// fetchBlob GETs a blob. The reader it returns hides stalls and broken
// connections: it asks again for the rest of the blob (see blobReader), so
// the store hashes one continuous stream and verifies the whole of it.
func (ss *session) fetchBlob(ctx context.Context, b blobFetch) (io.ReadCloser, error) {
	r := &blobReader{ss: ss, ctx: ctx, blob: b}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// blobReader reads a blob over up to blobAttempts requests. After a stall or
// a broken connection it requests the bytes from where the last response
// stopped (Range: bytes=N-); a registry that ignores Range sends the whole
// blob again, and the part already read is skipped. Either way what it
// returns is the blob from byte 0, once.
type blobReader struct {
	ss       *session
	ctx      context.Context
	blob     blobFetch
	body     io.ReadCloser
	got      int64 // bytes returned by Read
	attempts int
	lastErr  error
}

func (r *blobReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.got += int64(n)
		switch {
		case err == io.EOF && r.blob.size >= 0 && r.got < r.blob.size:
			// A response without a length ends like this when the
			// connection drops.
			err = io.ErrUnexpectedEOF
		case err != nil && r.blob.size >= 0 && r.got >= r.blob.size:
			// Every byte is in (the store verifies them); asking for
			// more would only get a 416.
			err = io.EOF
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		if r.ctx.Err() != nil {
			return n, err
		}
		// Any other failure inside a body is the connection's: try again.
		r.body.Close()
		r.body = nil
		r.lastErr = err
		if n > 0 {
			return n, nil
		}
	}
}

func (r *blobReader) Close() error {
	if r.body == nil {
		return nil
	}
	return r.body.Close()
}

// open requests the blob from byte r.got, waiting first if this is a retry.
func (r *blobReader) open() error {
	for {
		if r.attempts == blobAttempts {
			return r.giveUp(r.lastErr)
		}
		if r.attempts > 0 {
			if r.blob.retrying != nil {
				r.blob.retrying(r.got)
			}
			t := time.NewTimer(retryBackoff << (r.attempts - 1))
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				return r.ctx.Err()
			}
		}
		r.attempts++
		body, err := r.ss.getBlob(r.ctx, r.blob.digest, r.got)
		if err == nil {
			r.body = body
			return nil
		}
		if r.ctx.Err() != nil {
			return err
		}
		if !retryable(err) {
			if r.attempts == 1 {
				return err // not a download problem: classify says what it is
			}
			return r.giveUp(err)
		}
		r.lastErr = err
	}
}

func (r *blobReader) giveUp(err error) error {
	return &downloadError{
		what: r.blob.what, digest: r.blob.digest, registry: r.ss.repo.RegistryStr(),
		attempts: r.attempts, got: r.got, size: r.blob.size, err: err,
	}
}

// retryable reports whether a failed blob request may succeed if repeated.
func retryable(err error) bool {
	var se *stallError
	var te *transport.Error
	switch {
	case errors.As(err, &se):
		return true
	case errors.As(err, &te):
		return te.StatusCode == http.StatusRequestTimeout || te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500
	}
	return isNetErr(err) || errors.Is(err, io.ErrUnexpectedEOF)
}

// getBlob GETs blob d from byte from on, through the session's
// authenticated transport (which follows the registry's redirects).
func (ss *session) getBlob(ctx context.Context, d v1.Hash, from int64) (io.ReadCloser, error) {
	u := url.URL{Scheme: ss.repo.Scheme(), Host: ss.repo.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/%s", ss.repo.RepositoryStr(), d)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := (&http.Client{Transport: ss.rt}).Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent); err != nil {
		resp.Body.Close()
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("blob %s is missing from the registry: %w", d, err)
		}
		return nil, err
	}
	if from == 0 {
		return resp.Body, nil
	}
	if resp.StatusCode == http.StatusPartialContent {
		if cr := resp.Header.Get("Content-Range"); !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-", from)) {
			resp.Body.Close()
			return nil, fmt.Errorf("blob %s: asked for the bytes from %d on, the registry sent range %q", d, from, cr)
		}
		return resp.Body, nil
	}
	// 200: the registry ignores Range and sends the whole blob again. The
	// bytes before from were read (and hashed) already; skip them.
	if _, err := io.CopyN(io.Discard, resp.Body, from); err != nil {
		resp.Body.Close()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return resp.Body, nil
}

// downloadError is a blob the registry did not deliver in blobAttempts
// requests: which one, how far it got, and the last failure.
type downloadError struct {
	what     string
	digest   v1.Hash
	registry string
	attempts int
	got      int64
	size     int64
	err      error
}

func (e *downloadError) Error() string {
	of := ""
	if e.size >= 0 {
		of = fmt.Sprintf(" of %d", e.size)
	}
	var se *stallError
	if errors.As(e.err, &se) {
		verb := "stalled"
		if se.minRate > 0 {
			verb = "came too slowly"
		}
		return fmt.Sprintf("%s %s %s at byte %d%s: %s %s (%d attempts)",
			e.what, shortID(e.digest.Hex), verb, e.got, of, e.registry, se.what(), e.attempts)
	}
	return fmt.Sprintf("%s %s broke off at byte %d%s: %v (%d attempts)", e.what, shortID(e.digest.Hex), e.got, of, e.err, e.attempts)
}

func (e *downloadError) Unwrap() error { return e.err }
