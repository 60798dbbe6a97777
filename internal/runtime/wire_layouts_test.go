package runtime

import (
	"flag"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/wire"
)

var update = flag.Bool("update", false, "rewrite wire_layouts.go")

// wire_layouts.go gives the fingerprints of the types this package sends
// as they are (wire.Known); -update rewrites it after a change.
func TestWireLayouts(t *testing.T) {
	// specs.LinuxSeccomp: the seccomp cache's keys (seccomp.Compiled).
	types := []reflect.Type{reflect.TypeFor[initConfig](), reflect.TypeFor[syncMsg](), reflect.TypeFor[specs.Spec](), reflect.TypeFor[specs.LinuxSeccomp]()}
	exprs := []string{"reflect.TypeFor[initConfig]()", "reflect.TypeFor[syncMsg]()", "reflect.TypeFor[specs.Spec]()", "reflect.TypeFor[specs.LinuxSeccomp]()"}
	var values []uint64
	for _, typ := range types {
		values = append(values, wire.Compute(typ))
	}
	want := wire.Layouts("runtime", "TestWireLayouts",
		[]string{`"reflect"`, ``, `specs "github.com/opencontainers/runtime-spec/specs-go"`, ``, `"hull/internal/wire"`}, exprs, values)
	if err := wire.CheckLayouts("wire_layouts.go", want, *update); err != nil {
		t.Fatal(err)
	}
	for i, typ := range types {
		if f := wire.Fingerprint(typ); f != values[i] {
			t.Errorf("%s: fingerprint %#x in use, %#x computed", typ, f, values[i])
		}
	}
}
