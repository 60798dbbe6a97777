package image

import (
	"testing"
	"time"
)

// SetRetryBackoff makes the waits between a blob's attempts d, 2d, 4d ...
// for the rest of the test, so tests of retries do not wait for seconds.
func SetRetryBackoff(t testing.TB, d time.Duration) {
	old := retryBackoff
	retryBackoff = d
	t.Cleanup(func() { retryBackoff = old })
}
