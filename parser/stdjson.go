package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sync"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// stdEncoder is a pooled encoding/json encoder with HTML escaping off.
type stdEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var stdPool = sync.Pool{New: func() any {
	s := new(stdEncoder)
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	return s
}}

// std encodes v, whose type cannot contain binary data, with encoding/json,
// then adjusts the two spots where its output differs from JSON.stringify.
// NaN and ±Inf, which encoding/json refuses, make it fall back to the
// reflection walker, which writes null for them.
func (e *encoder) std(v any, ti *typeInfo) error {
	s := stdPool.Get().(*stdEncoder)
	s.buf.Reset()
	err := s.enc.Encode(v)
	if err == nil {
		out := s.buf.Bytes()
		if n := len(out); n > 0 && out[n-1] == '\n' {
			out = out[:n-1]
		}
		start := len(e.buf)
		e.buf = append(e.buf, out...)
		e.buf = fixStd(e.buf, start, ti.float)
	}
	if s.buf.Cap() <= 64<<10 {
		stdPool.Put(s)
	}
	if err != nil {
		var unsupported *json.UnsupportedValueError
		if errors.As(err, &unsupported) {
			e.force++
			err = e.reflectValue(reflect.ValueOf(v))
			e.force--
		}
	}
	return err
}

var (
	negZero       = []byte("-0")
	lineSepEscape = []byte(`\u202`)
)

// fixStd rewrites, in b[start:] (compact JSON written by encoding/json), the
// number -0 as 0 (when float is set, as only floats produce it) and the
// escapes \u2028 and \u2029 as the characters themselves, which is what
// JSON.stringify writes. The output never grows.
func fixStd(b []byte, start int, float bool) []byte {
	seg := b[start:]
	neg := float && bytes.Contains(seg, negZero)
	sep := bytes.Contains(seg, lineSepEscape)
	if !neg && !sep {
		return b
	}
	w := start
	for r := start; r < len(b); {
		c := b[r]
		switch {
		case c == '"':
			// Copy the string, rewriting the two escapes.
			b[w] = c
			w++
			r++
			for r < len(b) {
				c = b[r]
				if c == '"' {
					b[w] = c
					w++
					r++
					break
				}
				if c != '\\' {
					b[w] = c
					w++
					r++
					continue
				}
				if r+5 < len(b) && b[r+1] == 'u' && b[r+2] == '2' && b[r+3] == '0' && b[r+4] == '2' &&
					(b[r+5] == '8' || b[r+5] == '9') {
					b[w], b[w+1], b[w+2] = 0xe2, 0x80, 0xa8+(b[r+5]-'8')
					w += 3
					r += 6
					continue
				}
				// Any other escape: copy the backslash and the escaped byte.
				b[w], b[w+1] = c, b[r+1]
				w += 2
				r += 2
			}
		case c == '-' && neg && r+1 < len(b) && b[r+1] == '0' &&
			(r+2 == len(b) || !isNumberByte(b[r+2])):
			r++ // drop the sign of -0
		default:
			b[w] = c
			w++
			r++
		}
	}
	return b[:w]
}

func isNumberByte(c byte) bool {
	return jsonscan.IsDigit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}
