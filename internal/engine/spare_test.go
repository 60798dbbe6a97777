package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A spare monitor gets its container's spec ahead of the ID, decoded,
// only when the spec is that container's; a bad header is an error.
func TestReadSpareIDTakesTheSpecSentAhead(t *testing.T) {
	b, err := json.Marshal(&specs.Spec{Root: &specs.Root{Path: "/r"}, Process: &specs.Process{Args: []string{"true"}}, Hostname: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	sent := func(specID, id string) string { return fmt.Sprintf("spec %s %d\n%s%s\n", specID, len(b), b, id) }
	for _, tc := range []struct {
		name, in, id string
		spec, fails  bool
	}{
		{"spec ahead", sent("c1", "c1"), "c1", true, false},
		{"another container's spec", sent("c0", "c1"), "c1", false, false},
		{"no spec", "c1\n", "c1", false, false},
		{"bad header", "spec c1 x\n{}c1\n", "", false, true},
		{"no id", "", "", false, true},
	} {
		id, spec, err := ReadSpareID(strings.NewReader(tc.in))
		if (err != nil) != tc.fails || id != tc.id || (spec != nil) != tc.spec {
			t.Errorf("%s: id %q, spec %v, err %v", tc.name, id, spec != nil, err)
		}
		if spec != nil && spec.Hostname != "h1" {
			t.Errorf("%s: spec decoded as %+v", tc.name, spec)
		}
	}
}
