package reference

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The hand-written matchers accept exactly what docker's grammar (as
// regular expressions) accepts, on many random strings from the alphabet
// that matters and on edge cases.
func TestMatchersAgreeWithGrammar(t *testing.T) {
	for _, tc := range []struct {
		name  string
		expr  string
		match func(string) bool
		chars string
	}{
		{"path component", `^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`, isPathComponent, "az09._-A/"},
		{"tag", `^[\w][\w.-]{0,127}$`, isTag, "aZ9_.-:@"},
		{"domain", `^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`, isDomain, "aZ9-.:[]fg_"},
		{"digest", `^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$`, isDigest, "af09G"},
	} {
		re := regexp.MustCompile(tc.expr)
		r := rand.New(rand.NewPCG(1, 2))
		check := func(s string) {
			if got, want := tc.match(s), re.MatchString(s); got != want {
				t.Errorf("%s %q: matcher says %v, grammar %v", tc.name, s, got, want)
			}
		}
		for _, s := range []string{"", "a", "-", "a-", "a--b", "a__b", "a___b", "a._b", "[::1]", "[::1]:5000", "[]", "localhost:", ":5000",
			"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128), "sha256:" + strings.Repeat("a", 63), strings.Repeat("a", 128), strings.Repeat("a", 129)} {
			check(s)
		}
		for range 200000 {
			n := r.IntN(12)
			if tc.name == "digest" {
				n = []int{64, 128, 3}[r.IntN(3)]
			}
			var b strings.Builder
			if tc.name == "digest" {
				b.WriteString([]string{"sha256:", "sha512:", "md5:"}[r.IntN(3)])
			}
			for range n {
				b.WriteByte(tc.chars[r.IntN(len(tc.chars))])
			}
			check(b.String())
		}
	}
}
