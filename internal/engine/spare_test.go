package engine

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A spare monitor gets its container's spec ahead of the ID, decoded,
// only when the spec is that container's; a spec it cannot decode (JSON,
// say) leaves it to read config.json; a bad header is an error.
func TestReadSpareIDTakesTheSpecSentAhead(t *testing.T) {
	spec := &specs.Spec{Root: &specs.Root{Path: "/r"}, Process: &specs.Process{Args: []string{"true"}}, Hostname: "h1"}
	sent := func(specID, id string) string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		e := &Engine{spare: &Spare{id: w}}
		e.offerSpare(specID, spec)
		w.Close()
		b, _ := io.ReadAll(r)
		return string(b) + id + "\n"
	}
	json := `{"root":{"path":"/r"},"process":{"args":["true"]},"hostname":"h1"}`
	for _, tc := range []struct {
		name, in, id string
		spec, fails  bool
	}{
		{"spec ahead", sent("c1", "c1"), "c1", true, false},
		{"another container's spec", sent("c0", "c1"), "c1", false, false},
		{"no spec", "c1\n", "c1", false, false},
		{"a spec in JSON", fmt.Sprintf("spec c1 %d\n%sc1\n", len(json), json), "c1", false, false},
		{"bad header", "spec c1 x\n{}c1\n", "", false, true},
		{"no id", "", "", false, true},
	} {
		var early *specs.Spec
		id, spec, err := ReadSpareID(strings.NewReader(tc.in), func(s *specs.Spec) { early = s })
		if (err != nil) != tc.fails || id != tc.id || (spec != nil) != tc.spec {
			t.Errorf("%s: id %q, spec %v, err %v", tc.name, id, spec != nil, err)
		}
		if early != nil && early.Hostname != "h1" {
			t.Errorf("%s: the spec given ahead is %+v", tc.name, early)
		}
		if spec != nil && (spec.Hostname != "h1" || spec.Linux == nil) {
			t.Errorf("%s: spec decoded as %+v", tc.name, spec)
		}
	}
}
