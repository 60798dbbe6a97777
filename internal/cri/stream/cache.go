package stream

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// errCacheFull is Insert's error when maxInFlight requests wait for
// their clients: kubelet's limit, against a caller that asks for URLs and
// never uses them.
var errCacheFull = errors.New("maximum number of in-flight streaming requests exceeded")

// maxInFlight is how many unused tokens the cache holds (kubelet's 1000).
const maxInFlight = 1000

// tokenCache holds the requests behind issued URLs. A token is good for
// one connection (Consume removes it) within ttl of its issue; expired
// entries are dropped as new ones arrive, so the cache never outgrows
// maxInFlight.
type tokenCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	req     any
	expires time.Time
}

func newTokenCache(ttl time.Duration) *tokenCache {
	return &tokenCache{ttl: ttl, now: time.Now, entries: map[string]cacheEntry{}}
}

// Insert keeps req and returns its token: 16 random bytes, URL-safe
// base64, so tokens can be neither guessed nor enumerated.
func (c *tokenCache) Insert(req any) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= maxInFlight {
		for t, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, t)
			}
		}
		if len(c.entries) >= maxInFlight {
			return "", errCacheFull
		}
	}
	c.entries[tok] = cacheEntry{req: req, expires: now.Add(c.ttl)}
	return tok, nil
}

// Consume removes the token and returns its request, unless it is
// unknown, used already or expired.
func (c *tokenCache) Consume(tok string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[tok]
	if !ok {
		return nil, false
	}
	delete(c.entries, tok)
	if !c.now().Before(e.expires) {
		return nil, false
	}
	return e.req, true
}
