// Package wire encodes Go values in a compact binary form for a hull
// process and a process it starts from the same source (the container's
// init, hull-init), where JSON cost too much: a first JSON decode of an OCI
// spec in a fresh process builds its per-type decoders by reflection,
// about a millisecond, and every container start paid it in the init
// before anything else could happen.
//
// The encoding walks the value's exported fields in declaration order
// (no names, no tags): integers as varints, strings and slices with their
// length, a flag for nil pointers, slices and maps. Both sides must
// therefore have the same types; every message starts with a fingerprint
// of the type's layout, and Decode refuses a message made for another
// layout (an init binary from another build) instead of misreading it.
// Interfaces are encoded only when nil; unexported fields are skipped,
// except in types that encode themselves (encoding.BinaryMarshaler and
// BinaryUnmarshaler, as time.Time), which go as their bytes.
package wire

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"
)

// Append appends the encoding of v (a value, or a pointer to the value)
// to b.
func Append(b []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, errors.New("wire: nil pointer")
		}
		rv = rv.Elem()
	}
	b = binary.LittleEndian.AppendUint64(b, Fingerprint(rv.Type()))
	return appendValue(b, rv)
}

// Decode decodes data, made by Append from a value of the same type, into
// v, a non-nil pointer to a zero value.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("wire: decode needs a non-nil pointer")
	}
	if len(data) < 8 {
		return errors.New("wire: message too short")
	}
	rv = rv.Elem()
	if got, want := binary.LittleEndian.Uint64(data), Fingerprint(rv.Type()); got != want {
		return fmt.Errorf("wire: message for another layout of %s (fingerprint %x, this build has %x): hull and its init binary come from different builds", rv.Type(), got, want)
	}
	d := decoder{data: data[8:]}
	d.value(rv)
	if d.err == nil && len(d.data) != 0 {
		d.err = fmt.Errorf("wire: %d bytes left over", len(d.data))
	}
	return d.err
}

var fingerprints sync.Map // reflect.Type -> uint64

// Fingerprint is a hash (FNV-1a) of t's layout as the encoding sees it:
// kinds, field names and element types, recursively.
func Fingerprint(t reflect.Type) uint64 {
	if f, ok := fingerprints.Load(t); ok {
		return f.(uint64)
	}
	d := describe(make([]byte, 0, 4096), t, map[reflect.Type]int{})
	f := uint64(14695981039346656037)
	for _, c := range d {
		f = (f ^ uint64(c)) * 1099511628211
	}
	fingerprints.Store(t, f)
	return f
}

func describe(d []byte, t reflect.Type, seen map[reflect.Type]int) []byte {
	if n, ok := seen[t]; ok {
		return strconv.AppendInt(append(d, '@'), int64(n), 10)
	}
	seen[t] = len(seen)
	ti := infoOf(t)
	if ti.self {
		d = append(append(d, "binary("...), t.PkgPath()...)
		return append(append(append(d, '.'), t.Name()...), ')')
	}
	d = append(append(d, t.Kind().String()...), '(')
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Array {
			d = strconv.AppendInt(d, int64(t.Len()), 10)
		}
		d = describe(d, t.Elem(), seen)
	case reflect.Map:
		d = describe(d, t.Key(), seen)
		d = describe(d, t.Elem(), seen)
	case reflect.Struct:
		for i, f := range ti.fields {
			d = append(append(d, ti.names[i]...), ':')
			d = describe(d, t.Field(f).Type, seen)
		}
	}
	return append(d, ')')
}

var (
	marshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	unmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	infos           sync.Map // reflect.Type -> *typeInfo
)

// typeInfo is what the encoding needs to know of a type, worked out once
// per type (reflection on every value cost more than the encoding).
type typeInfo struct {
	// self: values encode themselves (encoding.BinaryMarshaler and, on
	// the pointer, BinaryUnmarshaler), as time.Time; pointers, which
	// carry a nil flag first, never do.
	self bool
	// fields and names are a struct's exported fields, in order.
	fields []int
	names  []string
}

func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := infos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{self: t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		t.Implements(marshalerType) && reflect.PointerTo(t).Implements(unmarshalerType)}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.IsExported() {
				ti.fields = append(ti.fields, i)
				ti.names = append(ti.names, f.Name)
			}
		}
	}
	infos.Store(t, ti)
	return ti
}

func appendValue(b []byte, v reflect.Value) ([]byte, error) {
	ti := infoOf(v.Type())
	if ti.self {
		data, err := v.Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("wire: %s: %w", v.Type(), err)
		}
		b = binary.AppendUvarint(b, uint64(len(data)))
		return append(b, data...), nil
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(b, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(b, v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float())), nil
	case reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		return append(b, v.String()...), nil
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0), nil
		}
		return appendValue(append(b, 1), v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return b, nil
		}
		return nil, fmt.Errorf("wire: cannot encode a non-nil %s", v.Type())
	case reflect.Slice:
		if v.IsNil() {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return append(b, v.Bytes()...), nil
		}
		return appendElems(b, v)
	case reflect.Array:
		return appendElems(b, v)
	case reflect.Map:
		if v.IsNil() {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		var err error
		for it := v.MapRange(); it.Next(); {
			if b, err = appendValue(b, it.Key()); err != nil {
				return nil, err
			}
			if b, err = appendValue(b, it.Value()); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Struct:
		var err error
		for i, f := range ti.fields {
			if b, err = appendValue(b, v.Field(f)); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", v.Type().Name(), ti.names[i], err)
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("wire: cannot encode a %s", v.Type())
}

func appendElems(b []byte, v reflect.Value) ([]byte, error) {
	var err error
	for i := 0; i < v.Len(); i++ {
		if b, err = appendValue(b, v.Index(i)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decoder reads what appendValue wrote; the first error sticks and stops
// all further reading.
type decoder struct {
	data []byte
	err  error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("wire: "+format, a...)
	}
	d.data = nil
}

func (d *decoder) uvarint() uint64 { return number(d, binary.Uvarint) }
func (d *decoder) varint() int64   { return number(d, binary.Varint) }

// number reads one varint with read (binary.Uvarint or binary.Varint).
func number[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	x, n := read(d.data)
	if n <= 0 {
		d.fail("truncated or bad number")
		return 0
	}
	d.data = d.data[n:]
	return x
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.data)) {
		d.fail("truncated: %d bytes wanted, %d left", n, len(d.data))
		return nil
	}
	b := d.data[:n]
	d.data = d.data[n:]
	return b
}

// length reads a nil-or-length prefix: ok is false for nil.
func (d *decoder) length() (n int, ok bool) {
	x := d.uvarint()
	if x == 0 {
		return 0, false
	}
	// Every element takes at least one byte.
	if x-1 > uint64(len(d.data)) {
		d.fail("length %d beyond the message", x-1)
		return 0, false
	}
	return int(x - 1), true
}

func (d *decoder) value(v reflect.Value) {
	if d.err != nil {
		return
	}
	ti := infoOf(v.Type())
	if ti.self {
		data := d.bytes(d.uvarint())
		if d.err == nil {
			if err := v.Addr().Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(data); err != nil {
				d.fail("%s: %v", v.Type(), err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		b := d.bytes(1)
		if len(b) == 1 {
			v.SetBool(b[0] != 0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := d.varint()
		if v.OverflowInt(x) {
			d.fail("%d overflows %s", x, v.Type())
			return
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x := d.uvarint()
		if v.OverflowUint(x) {
			d.fail("%d overflows %s", x, v.Type())
			return
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		if b := d.bytes(8); len(b) == 8 {
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
	case reflect.String:
		v.SetString(string(d.bytes(d.uvarint())))
	case reflect.Pointer:
		b := d.bytes(1)
		if len(b) == 1 && b[0] != 0 {
			p := reflect.New(v.Type().Elem())
			d.value(p.Elem())
			v.Set(p)
		}
	case reflect.Interface:
		// Only nil interfaces are encoded, as nothing.
	case reflect.Slice:
		n, ok := d.length()
		if !ok {
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(append([]byte{}, d.bytes(uint64(n))...))
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n && d.err == nil; i++ {
			d.value(s.Index(i))
		}
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len() && d.err == nil; i++ {
			d.value(v.Index(i))
		}
	case reflect.Map:
		n, ok := d.length()
		if !ok {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), n)
		for i := 0; i < n && d.err == nil; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(k)
			d.value(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for _, f := range ti.fields {
			if d.err != nil {
				break
			}
			d.value(v.Field(f))
		}
	default:
		d.fail("cannot decode a %s", v.Type())
	}
}
