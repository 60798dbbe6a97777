package stream

import (
	"errors"
	"testing"
	"time"
)

// A token is good once, within its TTL; the cache refuses new tokens
// when full of live ones, and makes room by dropping expired ones.
func TestTokenCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTokenCache(time.Minute)
	c.now = func() time.Time { return now }

	tok, err := c.Insert("exec")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := c.Insert("attach")
	if tok == other || len(tok) != 22 {
		t.Fatalf("tokens %q, %q: want two distinct 16-byte tokens", tok, other)
	}
	if req, ok := c.Consume(tok); !ok || req != "exec" {
		t.Errorf("Consume = %v, %v; want exec", req, ok)
	}
	if _, ok := c.Consume(tok); ok {
		t.Error("a token was good twice")
	}
	if _, ok := c.Consume("nope"); ok {
		t.Error("an unknown token was good")
	}
	now = now.Add(time.Minute)
	if _, ok := c.Consume(other); ok {
		t.Error("a token was good a minute after its issue")
	}

	for range maxInFlight {
		if _, err := c.Insert(1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Insert(1); !errors.Is(err, errCacheFull) {
		t.Errorf("Insert into a full cache: %v; want %v", err, errCacheFull)
	}
	now = now.Add(time.Minute)
	if _, err := c.Insert(1); err != nil {
		t.Errorf("Insert once the others expired: %v", err)
	}
	if len(c.entries) != 1 {
		t.Errorf("%d entries after the expired were dropped; want 1", len(c.entries))
	}
}
