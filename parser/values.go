package parser

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// AppendValues appends a compact JSON array of values to dst and returns the
// extended slice, together with atts extended by the binary attachments found
// in values. It is the way to build the Data of an EVENT or ACK packet:
//
//	data, atts, err := parser.AppendValues(nil, nil, "upload", name, fileBytes)
//	text := parser.AppendEncode(nil, &parser.Packet{Type: parser.Event, Data: data, Attachments: atts})
//
// Every []byte found anywhere in values (at the top level, or inside maps,
// slices, arrays, struct fields, pointers and interfaces) is replaced by
// {"_placeholder":true,"num":N}, where N is len(atts) at that moment, and
// appended to atts (not copied: do not modify it until it has been sent),
// depth first in encounter order. A nil []byte is written as null. Raw values
// are written with their placeholders renumbered the same way, and
// json.RawMessage values verbatim (they must be valid JSON).
//
// The output matches JavaScript's JSON.stringify for the same data: no HTML
// escaping, U+2028 and U+2029 written literally, integers in plain decimal,
// floating-point numbers in the ECMAScript format (like encoding/json), -0
// written as 0, NaN and ±Inf written as null. Other Go values follow
// encoding/json rules: struct tags (omitempty, omitzero, string, "-"),
// embedded structs, map keys sorted, nil slices, maps and pointers written as
// null, json.Marshaler and encoding.TextMarshaler honoured; channels,
// functions and complex numbers are errors. Types that cannot contain binary
// data are handed to encoding/json.
//
// On error, dst and atts are returned with their original lengths. A value
// nesting deeper than 10000 levels (such as a cyclic value) is an error.
//
// AppendValues is safe for concurrent use.
func AppendValues(dst []byte, atts [][]byte, values ...any) ([]byte, [][]byte, error) {
	e := encoder{buf: dst, atts: atts}
	e.buf = append(e.buf, '[')
	for i, v := range values {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(v); err != nil {
			e.release()
			return dst, atts, &valueError{index: i, err: err}
		}
	}
	e.buf = append(e.buf, ']')
	e.release()
	return e.buf, e.atts, nil
}

// AppendValue is AppendValues for a single value that is not wrapped in an
// array, for payloads such as the object of a CONNECT or CONNECT_ERROR packet.
func AppendValue(dst []byte, atts [][]byte, v any) ([]byte, [][]byte, error) {
	e := encoder{buf: dst, atts: atts}
	err := e.value(v)
	e.release()
	if err != nil {
		return dst, atts, &valueError{index: -1, err: err}
	}
	return e.buf, e.atts, nil
}

// valueError is an error of AppendValues or AppendValue.
type valueError struct {
	index int // argument index, -1 for AppendValue
	err   error
}

func (e *valueError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), "parser: ")
	if e.index < 0 {
		return "parser: encode value: " + msg
	}
	return "parser: encode value " + strconv.Itoa(e.index) + ": " + msg
}

func (e *valueError) Unwrap() error { return e.err }

// encoder holds the state of one AppendValues call.
type encoder struct {
	buf   []byte
	atts  [][]byte
	depth int
	force int      // > 0: walk types that encoding/json could handle (NaN fallback, tests)
	sc    *scratch // lazily taken from scratchPool
}

// scratch holds reusable buffers for the slower paths.
type scratch struct {
	keys []string
	refs []jsonscan.Placeholder
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (e *encoder) scratch() *scratch {
	if e.sc == nil {
		e.sc = scratchPool.Get().(*scratch)
	}
	return e.sc
}

func (e *encoder) release() {
	if sc := e.sc; sc != nil {
		e.sc = nil
		if cap(sc.keys) > 1024 || cap(sc.refs) > 1024 {
			return
		}
		clear(sc.keys[:cap(sc.keys)])
		sc.keys, sc.refs = sc.keys[:0], sc.refs[:0]
		scratchPool.Put(sc)
	}
}

// maxNesting bounds the nesting of the values AppendValues writes, as the
// scanner bounds what it reads.
const maxNesting = jsonscan.MaxDepth

var errTooDeep = fmt.Errorf("nesting exceeds %d levels (cyclic value?)", maxNesting)

func (e *encoder) enter() error {
	if e.depth++; e.depth > maxNesting {
		return errTooDeep
	}
	return nil
}

// value encodes v, using fast paths for the common dynamic types.
func (e *encoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.buf = appendString(e.buf, x)
	case float64:
		e.buf = appendFloat(e.buf, x, 64)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case map[string]any:
		return e.stringMap(x)
	case []any:
		return e.slice(x)
	case []byte:
		e.bytes(x)
	case Raw:
		return e.raw(&x)
	case *Raw:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.raw(x)
	case []Raw:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.raw(&x[i]); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case json.RawMessage:
		return e.rawMessage(x)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float32:
		e.buf = appendFloat(e.buf, float64(x), 32)
	default:
		return e.other(v)
	}
	return nil
}

// other encodes a value without a fast path: through encoding/json when its
// type cannot contain binary data, by reflection otherwise.
func (e *encoder) other(v any) error {
	t := reflect.TypeOf(v)
	if ti := typeInfoOf(t); !ti.walk && e.force == 0 {
		return e.std(v, ti)
	}
	return e.reflectValue(reflect.ValueOf(v))
}

func (e *encoder) bytes(b []byte) {
	if b == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = appendPlaceholder(e.buf, len(e.atts))
	e.atts = append(e.atts, b)
}

func (e *encoder) stringMap(m map[string]any) error {
	if m == nil {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	if err := e.enter(); err != nil {
		return err
	}
	sc := e.scratch()
	base := len(sc.keys)
	for k := range m {
		sc.keys = append(sc.keys, k)
	}
	keys := sc.keys[base:] // stays valid if nested maps grow sc.keys
	slices.Sort(keys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, k)
		e.buf = append(e.buf, ':')
		if err := e.value(m[k]); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	clear(keys)
	sc.keys = sc.keys[:base]
	e.depth--
	return nil
}

func (e *encoder) slice(s []any) error {
	if s == nil {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.buf = append(e.buf, '[')
	for i, v := range s {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(v); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	e.depth--
	return nil
}

// rawMessage writes m verbatim after checking that it is one JSON value; nil
// is written as null, as encoding/json does.
func (e *encoder) rawMessage(m json.RawMessage) error {
	if m == nil {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	var s jsonscan.Scanner
	start, end, err := s.Whole(m)
	if err != nil {
		return fmt.Errorf("json.RawMessage: %w", err)
	}
	e.buf = append(e.buf, m[start:end]...)
	return nil
}

// appendPlaceholder appends {"_placeholder":true,"num":n}, the exact form the
// reference encoder writes.
func appendPlaceholder(dst []byte, n int) []byte {
	dst = append(dst, `{"_placeholder":true,"num":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}

// appendFloat appends f formatted like JavaScript's Number#toString (the
// format encoding/json also uses), except that -0 becomes 0 and NaN and ±Inf
// become null, as JSON.stringify writes them. bits is 32 for float32 values.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0')
	}
	// Integers below 2^53 (2^24 for float32) are exact, and their shortest
	// representation is their decimal form: skip the float formatter.
	if limit := float64(1 << 53); bits == 32 && math.Abs(f) < 1<<24 || bits == 64 && math.Abs(f) < limit {
		if i := int64(f); float64(i) == f {
			return strconv.AppendInt(dst, i, 10)
		}
	}
	format := byte('f')
	if abs := math.Abs(f); bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
		bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// Go writes e-07 where JavaScript writes e-7.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendString appends s as a JSON string; see AppendJSONString.
func appendString(dst []byte, s string) []byte { return AppendJSONString(dst, s) }

// AppendJSONString appends s as a JSON string the way JavaScript's
// JSON.stringify writes it: only '"', '\\' and control characters are
// escaped (with \b, \f, \n, \r, \t where possible, \u00xx otherwise), so
// '<', '>', '&', U+2028 and U+2029 stay literal; invalid UTF-8 bytes, which
// JavaScript strings cannot hold, become \ufffd.
func AppendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		var b [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(b[:copy(b[:], s[i:])])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
