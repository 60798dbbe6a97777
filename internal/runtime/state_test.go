package runtime

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
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

// The spec is kept beside state.json in the wire encoding and loaded back
// whole; a state.json of an earlier version (spec inline) still loads, and
// a spec file this build cannot decode gives way to the bundle's
// config.json.
func TestStateKeepsSpecBeside(t *testing.T) {
	root := t.TempDir()
	r := &Runtime{Root: root}
	bundle := t.TempDir()
	spec := DefaultSpec()
	spec.Hostname = "beside"
	spec.Annotations = map[string]string{"a": "b"}
	dir := filepath.Join(root, "c1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &Container{ID: "c1", Bundle: bundle, Pid: 42, Spec: spec, dir: dir}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if strings.Contains(string(st), `"spec"`) {
		t.Errorf("state.json still holds the spec: %s", st)
	}
	got, err := r.load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec, spec) || got.Pid != 42 {
		t.Fatalf("loaded %+v, spec %+v", got, got.Spec)
	}

	// An earlier version's state.json, with the spec inline.
	inline, _ := json.Marshal(&Container{ID: "c1", Bundle: bundle, Spec: spec})
	os.WriteFile(filepath.Join(dir, "state.json"), inline, 0o600)
	os.Remove(filepath.Join(dir, specFile))
	if got, err := r.load("c1"); err != nil || got.Spec == nil || got.Spec.Hostname != "beside" {
		t.Fatalf("inline spec: %+v, %v", got, err)
	}

	// A spec file from another build: the bundle's config.json.
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, specFile))
	b[0] ^= 0xff // the layout fingerprint
	os.WriteFile(filepath.Join(dir, specFile), b, 0o600)
	if _, err := r.load("c1"); err == nil {
		t.Fatal("an undecodable spec and no config.json loaded")
	}
	other := DefaultSpec()
	other.Hostname = "from-bundle"
	j, _ := json.Marshal(other)
	os.WriteFile(filepath.Join(bundle, "config.json"), j, 0o600)
	if got, err := r.load("c1"); err != nil || got.Spec.Hostname != "from-bundle" {
		t.Fatalf("fallback to config.json: %+v, %v", got, err)
	}
}
