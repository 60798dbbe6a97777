package runtime

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// validID accepts exactly what its grammar does.
func TestValidIDMatchesGrammar(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	r := rand.New(rand.NewPCG(3, 4))
	const chars = "aZ09_.+-/ é"
	for range 100000 {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteByte(chars[r.IntN(len(chars))])
		}
		if s := b.String(); validID(s) != re.MatchString(s) {
			t.Errorf("validID(%q) = %v, grammar says %v", s, validID(s), re.MatchString(s))
		}
	}
}
