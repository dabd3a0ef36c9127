package parser

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// reflectValue encodes v following encoding/json's rules, except that byte
// slices become attachments, Raw values are re-numbered and numbers and
// strings are written as JSON.stringify writes them. Sub-values whose type
// cannot contain binary data go to encoding/json (unless e.force is set).
func (e *encoder) reflectValue(v reflect.Value) error {
	if !v.IsValid() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	t := v.Type()
	switch t {
	case rawType:
		if v.CanAddr() {
			return e.raw(v.Addr().Interface().(*Raw))
		}
		r := v.Interface().(Raw)
		return e.raw(&r)
	case rawPtrType:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.raw(v.Interface().(*Raw))
	case rawMessageType:
		return e.rawMessage(json.RawMessage(v.Bytes()))
	case numberType:
		return e.number(json.Number(v.String()))
	}
	if t.Kind() == reflect.Interface {
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		err := e.value(v.Elem().Interface())
		e.depth--
		return err
	}

	ti := typeInfoOf(t)
	switch {
	case ti.marshaler:
		return e.marshalJSON(v)
	case ti.addrMarshaler && v.CanAddr():
		return e.marshalJSON(v.Addr())
	case ti.textMarshaler:
		return e.marshalText(v)
	case ti.addrTextMarshaler && v.CanAddr():
		return e.marshalText(v.Addr())
	}

	switch t.Kind() {
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.Float32:
		e.buf = appendFloat(e.buf, v.Float(), 32)
	case reflect.Float64:
		e.buf = appendFloat(e.buf, v.Float(), 64)
	case reflect.String:
		e.buf = appendString(e.buf, v.String())
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		err := e.reflectValue(v.Elem())
		e.depth--
		return err
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if ti.byteSlice {
			e.bytes(v.Bytes())
			return nil
		}
		return e.composite(v, ti, e.array)
	case reflect.Array:
		return e.composite(v, ti, e.array)
	case reflect.Map:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.composite(v, ti, e.mapValue)
	case reflect.Struct:
		return e.composite(v, ti, e.structValue)
	default:
		return &json.UnsupportedTypeError{Type: t}
	}
	return nil
}

// composite encodes an array, slice, map or struct value: with encoding/json
// when its type cannot contain binary data, with walk otherwise.
func (e *encoder) composite(v reflect.Value, ti *typeInfo, walk func(reflect.Value) error) error {
	if !ti.walk && e.force == 0 && v.CanInterface() {
		return e.std(v.Interface(), ti)
	}
	if err := e.enter(); err != nil {
		return err
	}
	err := walk(v)
	e.depth--
	return err
}

func (e *encoder) array(v reflect.Value) error {
	e.buf = append(e.buf, '[')
	for i := range v.Len() {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.reflectValue(v.Index(i)); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

func (e *encoder) mapValue(v reflect.Value) error {
	type entry struct {
		key string
		val reflect.Value
	}
	switch kt := v.Type().Key(); kt.Kind() {
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
	default:
		if !kt.Implements(textMarshalerType) {
			return &json.UnsupportedTypeError{Type: v.Type()}
		}
	}
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k, err := mapKey(it.Key())
		if err != nil {
			return err
		}
		entries = append(entries, entry{k, it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	e.buf = append(e.buf, '{')
	for i, en := range entries {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, en.key)
		e.buf = append(e.buf, ':')
		if err := e.reflectValue(en.val); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// mapKey returns the JSON object key for a map key, by encoding/json's rules.
func mapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := tm.MarshalText()
		if err != nil {
			return "", &json.MarshalerError{Type: k.Type(), Err: err}
		}
		return string(b), nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", &json.UnsupportedTypeError{Type: k.Type()}
}

func (e *encoder) structValue(v reflect.Value) error {
	fields := typeInfoOf(v.Type()).structFields(v.Type())
	e.buf = append(e.buf, '{')
	first := true
next:
	for i := range fields {
		f := &fields[i]
		fv := v
		for _, x := range f.index {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue next // field of a nil embedded pointer
				}
				fv = fv.Elem()
			}
			fv = fv.Field(x)
		}
		if f.omitEmpty && isEmptyValue(fv) || f.omitZero && isZeroValue(fv) {
			continue
		}
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
		e.buf = append(e.buf, f.key...)
		var err error
		if f.quoted {
			err = e.quoted(fv)
		} else {
			err = e.reflectValue(fv)
		}
		if err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// quoted encodes a field tagged ",string": its scalar value inside a JSON
// string.
func (e *encoder) quoted(v reflect.Value) error {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		v = v.Elem()
	}
	if ti := typeInfoOf(v.Type()); ti.marshaler || ti.textMarshaler ||
		(ti.addrMarshaler || ti.addrTextMarshaler) && v.CanAddr() {
		return e.reflectValue(v)
	}
	start := len(e.buf)
	if err := e.reflectValue(v); err != nil {
		return err
	}
	if v.Kind() == reflect.String {
		inner := string(e.buf[start:])
		e.buf = appendString(e.buf[:start], inner)
		return nil
	}
	e.buf = append(e.buf, '"')
	copy(e.buf[start+1:], e.buf[start:len(e.buf)-1])
	e.buf[start] = '"'
	e.buf = append(e.buf, '"')
	return nil
}

func (e *encoder) number(n json.Number) error {
	if n == "" {
		e.buf = append(e.buf, '0')
		return nil
	}
	if end, err := jsonscan.ScanNumber([]byte(n), 0); err != nil || end != len(n) {
		return fmt.Errorf("json: invalid number literal %q", string(n))
	}
	e.buf = append(e.buf, n...)
	return nil
}

func (e *encoder) marshalJSON(v reflect.Value) error {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	m, ok := v.Interface().(json.Marshaler)
	if !ok { // a nil interface value
		e.buf = append(e.buf, "null"...)
		return nil
	}
	b, err := m.MarshalJSON()
	if err != nil {
		return &json.MarshalerError{Type: v.Type(), Err: err}
	}
	var s jsonscan.Scanner
	start, end, err := s.Whole(b)
	if err != nil {
		return &json.MarshalerError{Type: v.Type(), Err: err}
	}
	e.buf = appendCompact(e.buf, b[start:end])
	return nil
}

func (e *encoder) marshalText(v reflect.Value) error {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	m, ok := v.Interface().(encoding.TextMarshaler)
	if !ok {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	b, err := m.MarshalText()
	if err != nil {
		return &json.MarshalerError{Type: v.Type(), Err: err}
	}
	e.buf = appendString(e.buf, string(b))
	return nil
}

// appendCompact appends the valid JSON value b without insignificant
// whitespace.
func appendCompact(dst, b []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case jsonscan.IsSpace(c):
			dst = append(dst, b[start:i]...)
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}

func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

type isZeroer interface{ IsZero() bool }

var isZeroerType = reflect.TypeFor[isZeroer]()

// isZeroValue implements ",omitzero": the type's IsZero method when it has
// one, the zero value otherwise.
func isZeroValue(v reflect.Value) bool {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return v.IsNil() || v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() ||
			v.Interface().(isZeroer).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(isZeroer).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(isZeroer).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		if !v.CanAddr() {
			c := reflect.New(t).Elem()
			c.Set(v)
			v = c
		}
		return v.Addr().Interface().(isZeroer).IsZero()
	}
	return v.IsZero()
}
