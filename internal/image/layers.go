package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"hull/internal/trace"
)

// chainIDs names each layer stack of an image, bottom first, as the OCI
// image spec defines: ChainID(L0) = DiffID(L0), ChainID(Ln) =
// sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func chainIDs(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d.String()
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d.String()))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// streamingUnpacker is an Unpacker that can apply a layer before its parent
// exists (overlay layers are independent diffs), so a pull may unpack every
// layer while it downloads.
type streamingUnpacker interface {
	UnpacksConcurrently() bool
}

func (s *Service) streaming() bool {
	su, ok := s.unpacker.(streamingUnpacker)
	return ok && su.UnpacksConcurrently()
}

// fetchLayers makes every layer present in the store and, with an unpacker,
// unpacked. Missing layers download concurrently (bounded). With a
// streaming unpacker each download feeds the unpacker as its bytes arrive,
// so hashing the blob and applying it run on separate cores; otherwise
// layers are applied in order from the store as soon as each and its parent
// are present.
func (s *Service) fetchLayers(ctx context.Context, sess *session, layers []v1.Descriptor, diffIDs []v1.Hash, p Progress) error {
	g, ctx := errgroup.WithContext(ctx)
	chains := chainIDs(diffIDs)
	parentOf := func(i int) string {
		if i == 0 {
			return ""
		}
		return chains[i-1]
	}
	stream := s.unpacker != nil && s.streaming()
	ready := make([]chan struct{}, len(layers))
	sem := make(chan struct{}, s.cfg.Registries.MaxConcurrentDownloads)
	for i, l := range layers {
		ready[i] = make(chan struct{})
		id := shortID(l.Digest.Hex)
		existed := s.store.Has(l.Digest)
		if existed {
			p.Update(id, StateExists, l.Size, l.Size)
		} else {
			p.Update(id, StateWaiting, 0, l.Size)
		}
		g.Go(func() error {
			defer close(ready[i])
			if existed {
				if stream {
					return s.unpackStored(ctx, parentOf(i), diffIDs[i], l.Digest)
				}
				return nil
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-sem }()
			// The unpacker starts only once this process holds the blob's
			// write lock and is downloading it: started earlier, it could
			// take the layer's unpack lock and wait on a stream that another
			// process's download (blocked on that same lock) never lets
			// begin.
			var tee *teeUnpack
			written, err := s.store.WriteFrom(ctx, l.Digest, l.Size, func() (io.Reader, error) {
				body, err := sess.fetchBlob(ctx, blobFetch{
					digest: l.Digest, size: l.Size, what: fmt.Sprintf("layer %d of %d", i+1, len(layers)),
					retrying: func(got int64) { p.Update(id, StateRetrying, got, l.Size) },
				})
				if err != nil || !stream {
					return body, err
				}
				tee = s.startUnpack(ctx, parentOf(i), diffIDs[i])
				return tee.feed(body), nil
			}, func(n int64) {
				if n >= l.Size {
					p.Update(id, StateVerifying, n, l.Size)
				} else {
					p.Update(id, StateDownloading, n, l.Size)
				}
			})
			if tee != nil {
				if uerr := tee.finish(err); err == nil && uerr != nil {
					return uerr
				}
			}
			if err != nil {
				return fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			if stream && tee == nil {
				// Another process stored the blob first: nothing was
				// streamed, so apply it from the store.
				if err := s.unpackStored(ctx, parentOf(i), diffIDs[i], l.Digest); err != nil {
					return err
				}
			}
			if written {
				p.Update(id, StateDownloaded, l.Size, l.Size)
			}
			if stream {
				p.Update(id, StateDone, l.Size, l.Size)
			}
			trace.Mark("pull: layer " + id)
			return nil
		})
	}
	if s.unpacker != nil && !stream {
		g.Go(func() error {
			for i, l := range layers {
				select {
				case <-ready[i]:
				case <-ctx.Done():
					return ctx.Err()
				}
				p.Update(shortID(l.Digest.Hex), StateExtracting, 0, l.Size)
				if err := s.unpackStored(ctx, parentOf(i), diffIDs[i], l.Digest); err != nil {
					return err
				}
				p.Update(shortID(l.Digest.Hex), StateDone, l.Size, l.Size)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if s.unpacker == nil {
		for _, l := range layers {
			p.Update(shortID(l.Digest.Hex), StateDone, l.Size, l.Size)
		}
	}
	return nil
}

func (s *Service) unpackStored(ctx context.Context, parent string, diffID, blob v1.Hash) error {
	f, err := s.store.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := s.unpacker.Unpack(ctx, parent, diffID.String(), f); err != nil {
		return fmt.Errorf("unpack layer %s: %w", blob, err)
	}
	return nil
}

// teeUnpack applies a layer from the bytes of its download as they pass
// into the store.
type teeUnpack struct {
	pr   *io.PipeReader
	pw   *io.PipeWriter
	done chan error

	mu      sync.Mutex
	stopped bool // the unpacker stopped reading (done, or found it unpacked)

	// fed is set once the unpacker has taken bytes (only the download
	// writes): the blob's temp file and the snapshot being built both
	// exist, for the kill -9 tests' "pull: layer streaming" mark.
	fed bool
}

func (s *Service) startUnpack(ctx context.Context, parent string, diffID v1.Hash) *teeUnpack {
	t := &teeUnpack{done: make(chan error, 1)}
	t.pr, t.pw = io.Pipe()
	go func() {
		_, err := s.unpacker.Unpack(ctx, parent, diffID.String(), t.pr)
		t.mu.Lock()
		t.stopped = true
		t.mu.Unlock()
		t.pr.CloseWithError(io.ErrClosedPipe)
		t.done <- err
	}()
	return t
}

// feed returns body with every byte read also written to the unpacker.
func (t *teeUnpack) feed(body io.ReadCloser) io.Reader {
	return struct {
		io.Reader
		io.Closer
	}{io.TeeReader(body, t), body}
}

// Write passes bytes to the unpacker; once it has stopped reading, bytes are
// dropped so the download into the store still completes.
func (t *teeUnpack) Write(b []byte) (int, error) {
	if _, err := t.pw.Write(b); err != nil {
		t.mu.Lock()
		stopped := t.stopped
		t.mu.Unlock()
		if stopped {
			return len(b), nil
		}
		return 0, err
	}
	if !t.fed {
		t.fed = true
		trace.Mark("pull: layer streaming")
	}
	return len(b), nil
}

// finish ends the stream (with the download's error, if any) and returns
// the unpacker's result.
func (t *teeUnpack) finish(downloadErr error) error {
	if downloadErr != nil {
		t.pw.CloseWithError(downloadErr)
	} else {
		t.pw.Close()
	}
	return <-t.done
}
