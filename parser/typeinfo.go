package parser

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sync"
)

var (
	rawType           = reflect.TypeFor[Raw]()
	rawPtrType        = reflect.TypeFor[*Raw]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	numberType        = reflect.TypeFor[json.Number]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// typeInfo is what the encoder caches about a type.
type typeInfo struct {
	// walk is set when a value of the type may hold a []byte, a Raw or an
	// interface (which may hold anything), so that encoding/json cannot be
	// used for it.
	walk bool
	// float is set when a value of the type may hold a floating-point number
	// (whose -0 encoding/json writes as "-0").
	float bool
	// marshaler and textMarshaler: the type implements json.Marshaler or
	// encoding.TextMarshaler; addrMarshaler and addrTextMarshaler: only its
	// pointer type does, so the method is used for addressable values.
	marshaler, addrMarshaler         bool
	textMarshaler, addrTextMarshaler bool
	// byteSlice: a slice of bytes, encoded as an attachment.
	byteSlice bool

	fieldsOnce sync.Once
	fields     []field // struct types only, computed on first use
}

func (ti *typeInfo) structFields(t reflect.Type) []field {
	ti.fieldsOnce.Do(func() { ti.fields = structFields(t) })
	return ti.fields
}

var typeCache sync.Map // reflect.Type → *typeInfo

func typeInfoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := newTypeInfo(t)
	actual, _ := typeCache.LoadOrStore(t, ti)
	return actual.(*typeInfo)
}

func newTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{
		marshaler:     t.Implements(marshalerType),
		textMarshaler: t.Implements(textMarshalerType),
		byteSlice:     isByteSlice(t),
	}
	if t.Kind() != reflect.Pointer {
		pt := reflect.PointerTo(t)
		ti.addrMarshaler = !ti.marshaler && pt.Implements(marshalerType)
		ti.addrTextMarshaler = !ti.textMarshaler && pt.Implements(textMarshalerType)
	}
	ti.walk, ti.float = analyze(t)
	return ti
}

// isByteSlice reports whether encoding/json would write t as base64, which
// is what becomes a binary attachment here.
func isByteSlice(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(t.Elem())
	return !p.Implements(marshalerType) && !p.Implements(textMarshalerType)
}

// analyze explores every type reachable from t for the walk and float flags
// of typeInfo. Only the answer for t itself is cached, so cycles between
// types need no special care.
func analyze(t reflect.Type) (walk, float bool) {
	seen := make(map[reflect.Type]bool)
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		if walk && float || seen[t] {
			return
		}
		seen[t] = true
		switch {
		case t == rawType || t == rawPtrType || t.Kind() == reflect.Interface:
			walk = true
			return
		case t.Implements(marshalerType) || t.Implements(textMarshalerType):
			return // opaque: its method decides
		}
		switch t.Kind() {
		case reflect.Float32, reflect.Float64:
			float = true
		case reflect.Pointer, reflect.Array, reflect.Map:
			visit(t.Elem())
		case reflect.Slice:
			if isByteSlice(t) {
				walk = true
				return
			}
			visit(t.Elem())
		case reflect.Struct:
			for _, f := range structFields(t) {
				visit(f.typ)
			}
		}
	}
	visit(t)
	return walk, float
}
