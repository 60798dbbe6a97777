package engine

import (
	"flag"
	"reflect"
	"testing"

	"hull/internal/wire"
)

var update = flag.Bool("update", false, "rewrite wire_layouts.go")

// wire_layouts.go gives the fingerprints of the types this package sends
// as they are (wire.Known); -update rewrites it after a change.
func TestWireLayouts(t *testing.T) {
	typ := reflect.TypeFor[Container]()
	want := wire.Layouts("engine", "TestWireLayouts", []string{`"reflect"`, ``, `"hull/internal/wire"`},
		[]string{"reflect.TypeFor[Container]()"}, []uint64{wire.Compute(typ)})
	if err := wire.CheckLayouts("wire_layouts.go", want, *update); err != nil {
		t.Fatal(err)
	}
	if f := wire.Fingerprint(typ); f != wire.Compute(typ) {
		t.Errorf("%s: fingerprint %#x in use, %#x computed", typ, f, wire.Compute(typ))
	}
}
