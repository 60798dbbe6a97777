package shim

import (
	"testing"
	"time"
)

func TestRoundLineRoundTrips(t *testing.T) {
	for _, r := range []Round{{Done: true}, {Next: 1500 * time.Millisecond, Pid: 42, Start: 9001}, {Next: -time.Second}} {
		got, ok := ParseRound("some warning\n" + r.String())
		if !ok || got != r {
			t.Errorf("%q read back as %+v (%v)", r.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "next", "next 1 2", "later 1 2 3"} {
		if _, ok := ParseRound(bad); ok {
			t.Errorf("ParseRound(%q) took it", bad)
		}
	}
}
