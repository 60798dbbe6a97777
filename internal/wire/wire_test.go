package wire

import (
	"encoding/binary"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets v to random contents: every kind the encoding handles, nil
// and empty pointers, slices and maps among them, nil interfaces.
func fill(v reflect.Value, r *rand.Rand, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		v.SetInt(r.Int63() >> (64 - bits) * int64(1-2*r.Intn(2)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(r.Uint64() >> (64 - v.Type().Bits()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(float32(r.NormFloat64())))
	case reflect.String:
		b := make([]byte, r.Intn(12))
		r.Read(b)
		v.SetString(string(b))
	case reflect.Pointer:
		if depth > 6 || r.Intn(4) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), r, depth+1)
		v.Set(p)
	case reflect.Slice:
		switch {
		case depth > 6 || r.Intn(5) == 0:
		case r.Intn(5) == 0:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + r.Intn(4)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := 0; i < n; i++ {
				fill(s.Index(i), r, depth+1)
			}
			v.Set(s)
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), r, depth+1)
		}
	case reflect.Map:
		if depth > 6 || r.Intn(4) == 0 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := r.Intn(4); i > 0; i-- {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, r, depth+1)
			fill(e, r, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(r.Int63n(1<<33), r.Int63n(1e9)).UTC())) // a zone goes as its offset only
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), r, depth+1)
			}
		}
	}
}

type kinds struct {
	B       bool
	I8      int8
	I       int
	U16     uint16
	U64     uint64
	F       float64
	S       string
	P       *int64
	PP      **string
	Bytes   []byte
	Strs    []string
	Arr     [3]uint32
	M       map[string][]int
	Nested  []*kinds
	Iface   any
	When    time.Time
	WhenP   *time.Time
	private int
}

func roundTrip[T any](t *testing.T, in *T) {
	t.Helper()
	b, err := Append(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := Decode(b, out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the value:\n in  %+v\n out %+v", in, out)
	}
}

func TestRoundTripKeepsEveryField(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		var k kinds
		fill(reflect.ValueOf(&k).Elem(), r, 0)
		roundTrip(t, &k)

		var s specs.Spec
		fill(reflect.ValueOf(&s).Elem(), r, 0)
		roundTrip(t, &s)
	}
}

func TestNilAndEmptyStayApart(t *testing.T) {
	zero := int64(0)
	roundTrip(t, &kinds{Bytes: []byte{}, Strs: []string{}, M: map[string][]int{"": nil, "a": {}}, P: &zero})
	roundTrip(t, &kinds{})
}

func TestUnexportedFieldsAreLeftOut(t *testing.T) {
	b, err := Append(nil, &kinds{private: 7})
	if err != nil {
		t.Fatal(err)
	}
	var out kinds
	if err := Decode(b, &out); err != nil || out.private != 0 {
		t.Fatalf("private = %d, err %v; want 0, nil", out.private, err)
	}
}

func TestNonNilInterfaceIsRefused(t *testing.T) {
	if _, err := Append(nil, &kinds{Iface: 1}); err == nil || !strings.Contains(err.Error(), "Iface") {
		t.Fatalf("err = %v, want one naming the field", err)
	}
}

// A message for another layout (an init binary from another build) is
// refused with an error that says so, not misread.
func TestOtherLayoutIsRefused(t *testing.T) {
	type v1 struct{ A, B string }
	type v2 struct{ A, C string }
	b, err := Append(nil, &v1{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	var out v2
	if err := Decode(b, &out); err == nil || !strings.Contains(err.Error(), "different build") {
		t.Fatalf("err = %v, want a layout mismatch", err)
	}
}

// Cut or corrupted messages give errors, never a panic or a huge
// allocation.
func TestDamagedMessagesFail(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	var s specs.Spec
	fill(reflect.ValueOf(&s).Elem(), r, 0)
	b, err := Append(nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if err := Decode(b[:n], new(specs.Spec)); err == nil {
			t.Fatalf("decoding the first %d of %d bytes succeeded", n, len(b))
		}
	}
	for i := 0; i < 2000; i++ {
		c := append([]byte{}, b...)
		c[8+r.Intn(len(c)-8)] ^= byte(1 + r.Intn(255))
		_ = Decode(c, new(specs.Spec)) // must not panic
	}
	if err := Decode(append(b, 0), new(specs.Spec)); err == nil {
		t.Fatal("trailing bytes were accepted")
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := Append(nil, &kinds{S: "x", Strs: []string{"a"}, M: map[string][]int{"k": {1}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var k kinds
		if Decode(data, &k) == nil {
			if _, err := Append(nil, &k); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A fingerprint given at build time (Known) is the one used, without
// working it out.
func TestKnownFingerprintIsUsed(t *testing.T) {
	type known struct{ A int }
	typ := reflect.TypeFor[known]()
	Known(typ, 42)
	if f := Fingerprint(typ); f != 42 {
		t.Fatalf("fingerprint %d, want the known 42", f)
	}
	if Compute(typ) == 42 {
		t.Fatal("Compute returned the known value, not its own")
	}
	b, err := Append(nil, known{7})
	if err != nil || binary.LittleEndian.Uint64(b) != 42 {
		t.Fatalf("message %x, %v: want the known fingerprint first", b, err)
	}
}
