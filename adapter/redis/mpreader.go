package redis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxDepth bounds the nesting of arrays and maps in transcoded values, like
// the parser's limit for JSON.
const maxDepth = 10000

var (
	errTruncated = errors.New("redis: msgpack: truncated value")
	errTooDeep   = fmt.Errorf("redis: msgpack: nesting exceeds %d levels", maxDepth)
)

// binaryMode says how the msgpack → JSON transcoder writes binary values.
type binaryMode int

const (
	// binPlaceholder writes a Socket.IO placeholder and collects the bytes
	// as an attachment (for packets and acknowledgements).
	binPlaceholder binaryMode = iota
	// binBufferJSON writes what JSON.stringify gives for a Node.js Buffer,
	// {"type":"Buffer","data":[…]} (for messages whose fields travel as
	// JSON on Node, such as serverSideEmit arguments).
	binBufferJSON
)

// mpReader reads msgpack values, as notepack.io encodes them, out of one
// message. It uses the msgpack Decoder for headers and numbers and slices
// strings and binary values out of the message itself, so that a length
// announced by a hostile header never allocates more than the message holds.
//
// Binary values alias the message: attachments returned by toJSON share its
// memory.
type mpReader struct {
	src []byte
	rd  bytes.Reader
	dec *msgpack.Decoder

	// What the walks over a value keep of the arrays and maps they are
	// inside: nesting is up to the peer, so they use these stacks rather
	// than the goroutine's (a recursive walk held some 2 MiB for a value
	// nested 10,000 deep). Pooled with the reader, they cost nothing once
	// grown. skip is never called while another skip runs; toJSON calls it.
	skipStack []int       // per level, the values still to skip
	jsonStack []jsonLevel // toJSON's levels
}

// jsonLevel is an array or map that toJSON is inside.
type jsonLevel struct {
	left  int  // elements or members still to write
	mark  int  // map: length of the output before the current member
	isMap bool //
	first bool // map: no member written yet
}

var readerPool = sync.Pool{New: func() any {
	r := new(mpReader)
	r.dec = msgpack.NewDecoder(nil)
	return r
}}

func getReader(src []byte) *mpReader {
	r := readerPool.Get().(*mpReader)
	r.reset(src)
	return r
}

func putReader(r *mpReader) {
	if cap(r.skipStack) > 1024 {
		r.skipStack = nil
	}
	if cap(r.jsonStack) > 1024 {
		r.jsonStack = nil
	}
	r.src = nil
	r.rd.Reset(nil)
	r.dec.ResetReader(nil)
	readerPool.Put(r)
}

func (r *mpReader) reset(src []byte) {
	r.src = src
	r.rd.Reset(src)
	r.dec.ResetReader(&r.rd) // *bytes.Reader is a ByteScanner: no buffering
}

// pos is the offset of the next byte to read.
func (r *mpReader) pos() int { return len(r.src) - r.rd.Len() }

// done reports whether the whole message was read.
func (r *mpReader) done() bool { return r.rd.Len() == 0 }

// take returns the next n bytes of the message (no copy) and skips them.
func (r *mpReader) take(n int) ([]byte, error) {
	if n < 0 || n > r.rd.Len() {
		return nil, errTruncated
	}
	p := r.pos()
	if _, err := r.rd.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return r.src[p : p+n : p+n], nil
}

func (r *mpReader) peek() (byte, error) {
	c, err := r.dec.PeekCode()
	if err != nil {
		return 0, errTruncated
	}
	return c, nil
}

func isStrCode(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}

func isBinCode(c byte) bool { return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32 }

func isMapCode(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func isArrayCode(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func isExtCode(c byte) bool {
	return c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16 || c >= msgpcode.Ext8 && c <= msgpcode.Ext32
}

func isIntCode(c byte) bool {
	return msgpcode.IsFixedNum(c) || c >= msgpcode.Uint8 && c <= msgpcode.Int64
}

// bytesValue reads a str or bin value (the caller peeked the code).
func (r *mpReader) bytesValue() ([]byte, error) {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return nil, errTruncated
	}
	return r.take(n)
}

// str reads a value that must be a string.
func (r *mpReader) str() (string, bool, error) {
	c, err := r.peek()
	if err != nil {
		return "", false, err
	}
	if !isStrCode(c) {
		return "", false, r.skip(0)
	}
	b, err := r.bytesValue()
	return string(b), true, err
}

// number reads an int or float value as the float64 JavaScript sees (the
// caller peeked the code).
func (r *mpReader) number(c byte) (float64, error) {
	switch {
	case c == msgpcode.Uint64:
		u, err := r.dec.DecodeUint64()
		if err != nil {
			return 0, errTruncated
		}
		return float64(u), nil
	case isIntCode(c):
		i, err := r.dec.DecodeInt64()
		if err != nil {
			return 0, errTruncated
		}
		return float64(i), nil
	default:
		f, err := r.dec.DecodeFloat64()
		if err != nil {
			return 0, errTruncated
		}
		return f, nil
	}
}

// intValue reads a value that should be an integer (type, clientCount).
func (r *mpReader) intValue() (int64, bool, error) {
	c, err := r.peek()
	if err != nil {
		return 0, false, err
	}
	if !isIntCode(c) && c != msgpcode.Float && c != msgpcode.Double {
		return 0, false, r.skip(0)
	}
	f, err := r.number(c)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxSafeInt {
		return 0, false, err
	}
	return int64(f), true, nil
}

// boolValue reads a value and reports whether it is true (the only value
// the adapter flags test).
func (r *mpReader) boolValue() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if c == msgpcode.True || c == msgpcode.False {
		return r.dec.DecodeBool()
	}
	return false, r.skip(0)
}

// ext is an extension value as notepack.io decodes it.
type ext struct {
	kind   extKind
	typ    int8
	data   []byte  // extBinary, extPair
	dateMs float64 // extDate
}

type extKind int

const (
	extPair      extKind = iota // [type, Buffer]
	extDate                     // a Date
	extUndefined                // undefined (notepack 2.x fixext1 type 0)
	extBinary                   // an ArrayBuffer (notepack 2.x ext type 0)
)

// extValue reads an extension the way notepack.io 3.0.1 decodes it.
func (r *mpReader) extValue(code byte) (ext, error) {
	typ, n, err := r.dec.DecodeExtHeader()
	if err != nil {
		return ext{}, errTruncated
	}
	data, err := r.take(n)
	if err != nil {
		return ext{}, err
	}
	be32 := func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	switch code {
	case msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		if typ == 0 {
			return ext{kind: extBinary, data: data}, nil
		}
		if typ == -1 && code == msgpcode.Ext8 {
			if n != 12 {
				return ext{}, errors.New("redis: msgpack: timestamp 96 of the wrong length")
			}
			ns := float64(be32(data))
			hi := float64(int32(be32(data[4:])))
			lo := float64(be32(data[8:]))
			return ext{kind: extDate, dateMs: float64(float64(hi*0x100000000+lo)*1e3) + ns/1e6}, nil
		}
	case msgpcode.FixExt1:
		if typ == 0 {
			return ext{kind: extUndefined}, nil
		}
	case msgpcode.FixExt4:
		if typ == -1 {
			return ext{kind: extDate, dateMs: float64(be32(data)) * 1e3}, nil
		}
	case msgpcode.FixExt8:
		hi, lo := be32(data), be32(data[4:])
		switch typ {
		case 0: // notepack 2.x Date: signed milliseconds
			return ext{kind: extDate, dateMs: float64(int32(hi))*0x100000000 + float64(lo)}, nil
		case -1:
			s := float64(hi&3)*0x100000000 + float64(lo)
			return ext{kind: extDate, dateMs: float64(s*1e3) + float64(hi>>2)/1e6}, nil
		}
	}
	return ext{kind: extPair, typ: typ, data: data}, nil
}

// skip skips one value, which is at the given depth: no value may be
// deeper than maxDepth. It walks without recursion, keeping in r.skipStack
// the number of values still to skip in each array and map it is inside.
func (r *mpReader) skip(depth int) error {
	stack := r.skipStack[:0]
	defer func() { r.skipStack = stack[:0] }()
	for {
		if depth+len(stack) > maxDepth {
			return errTooDeep
		}
		c, err := r.peek()
		if err != nil {
			return err
		}
		switch {
		case isStrCode(c) || isBinCode(c):
			_, err = r.bytesValue()
		case isExtCode(c):
			var n int
			if _, n, err = r.dec.DecodeExtHeader(); err != nil {
				return errTruncated
			}
			_, err = r.take(n)
		case isArrayCode(c):
			n, err := r.dec.DecodeArrayLen()
			if err != nil {
				return errTruncated
			}
			if n > 0 {
				stack = append(stack, n)
				continue
			}
		case isMapCode(c):
			n, err := r.dec.DecodeMapLen()
			if err != nil {
				return errTruncated
			}
			if n > 0 {
				stack = append(stack, 2*n)
				continue
			}
		case c == msgpcode.Nil || c == msgpcode.True || c == msgpcode.False:
			_, err = r.take(1)
		case isIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
			_, err = r.number(c)
		default:
			return fmt.Errorf("redis: msgpack: invalid code 0x%02x", c)
		}
		if err != nil {
			return err
		}
		// A value was skipped: close the arrays and maps it completes.
		for {
			if len(stack) == 0 {
				return nil
			}
			if stack[len(stack)-1]--; stack[len(stack)-1] > 0 {
				break
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// span returns the raw bytes of the next value and skips it.
func (r *mpReader) span() ([]byte, error) {
	start := r.pos()
	if err := r.skip(0); err != nil {
		return nil, err
	}
	end := r.pos()
	return r.src[start:end:end], nil
}

// mapKeys walks the map at the reader: fn is called for every string key
// (aliasing the message) with the reader positioned on its value, which fn
// must consume. Entries
// with other keys are skipped. ok is false when the value is not a map (it
// is then skipped).
func (r *mpReader) mapKeys(fn func(key []byte) error) (ok bool, err error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if !isMapCode(c) {
		return false, r.skip(0)
	}
	n, err := r.dec.DecodeMapLen()
	if err != nil {
		return false, errTruncated
	}
	for i := 0; i < n; i++ {
		c, err := r.peek()
		if err != nil {
			return false, err
		}
		if !isStrCode(c) {
			if err := r.skip(1); err != nil {
				return false, err
			}
			if err := r.skip(1); err != nil {
				return false, err
			}
			continue
		}
		k, err := r.bytesValue()
		if err != nil {
			return false, err
		}
		if err := fn(k); err != nil {
			return false, err
		}
	}
	return true, nil
}

// stringList reads an array of rooms: strings, and numbers as JavaScript
// writes them (Node allows numeric rooms). Other elements are dropped.
func (r *mpReader) stringList() ([]string, error) {
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	if !isArrayCode(c) {
		return nil, r.skip(0)
	}
	n, err := r.dec.DecodeArrayLen()
	if err != nil {
		return nil, errTruncated
	}
	out := make([]string, 0, min(n, r.rd.Len()))
	for i := 0; i < n; i++ {
		c, err := r.peek()
		if err != nil {
			return nil, err
		}
		switch {
		case isStrCode(c):
			b, err := r.bytesValue()
			if err != nil {
				return nil, err
			}
			out = append(out, string(b))
		case isIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
			f, err := r.number(c)
			if err != nil {
				return nil, err
			}
			out = append(out, jsNumberKey(f))
		default:
			if err := r.skip(1); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// jsonWriter transcodes msgpack values into JSON.
type jsonWriter struct {
	r    *mpReader
	mode binaryMode
	out  []byte
	atts [][]byte
}

// toJSON transcodes the next value of r into JSON, appending to dst and,
// in binPlaceholder mode, to atts.
func (r *mpReader) toJSON(dst []byte, atts [][]byte, mode binaryMode) ([]byte, [][]byte, error) {
	w := jsonWriter{r: r, mode: mode, out: dst, atts: atts}
	undef, err := w.value(0)
	if err == nil && undef {
		w.out = append(w.out, "null"...)
	}
	return w.out, w.atts, err
}

// value writes one value; it writes nothing and reports true for
// undefined, which the caller writes as null in arrays and omits in maps.
// It walks without recursion, keeping the arrays and maps it is inside in
// r.jsonStack; depth is that of the value.
func (w *jsonWriter) value(depth int) (undefined bool, err error) {
	r := w.r
	stack := r.jsonStack[:0]
	defer func() { r.jsonStack = stack[:0] }()
	for {
		// A value starts (in a map, after its key).
		c, err := r.peek()
		if err != nil {
			return false, err
		}
		undef := false
		switch {
		case isStrCode(c):
			b, err := r.bytesValue()
			if err != nil {
				return false, err
			}
			w.out = appendJSString(w.out, b)
		case isIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
			f, err := r.number(c)
			if err != nil {
				return false, err
			}
			w.out = appendJSNumber(w.out, f)
		case c == msgpcode.Nil:
			_, _ = r.take(1)
			w.out = append(w.out, "null"...)
		case c == msgpcode.True:
			_, _ = r.take(1)
			w.out = append(w.out, "true"...)
		case c == msgpcode.False:
			_, _ = r.take(1)
			w.out = append(w.out, "false"...)
		case isBinCode(c):
			b, err := r.bytesValue()
			if err != nil {
				return false, err
			}
			w.binary(b)
		case isArrayCode(c):
			if depth+len(stack) >= maxDepth {
				return false, errTooDeep
			}
			n, err := r.dec.DecodeArrayLen()
			if err != nil {
				return false, errTruncated
			}
			if n == 0 {
				w.out = append(w.out, "[]"...)
				break
			}
			w.out = append(w.out, '[')
			stack = append(stack, jsonLevel{left: n})
			continue
		case isMapCode(c):
			if depth+len(stack) >= maxDepth {
				return false, errTooDeep
			}
			n, err := r.dec.DecodeMapLen()
			if err != nil {
				return false, errTruncated
			}
			if n == 0 {
				w.out = append(w.out, "{}"...)
				break
			}
			w.out = append(w.out, '{')
			stack = append(stack, jsonLevel{left: n, mark: len(w.out), isMap: true, first: true})
			if err := w.key(depth + len(stack)); err != nil {
				return false, err
			}
			w.out = append(w.out, ':')
			continue
		case isExtCode(c):
			e, err := r.extValue(c)
			if err != nil {
				return false, err
			}
			switch e.kind {
			case extUndefined:
				undef = true
			case extDate:
				w.out = appendJSDate(w.out, e.dateMs)
			case extBinary:
				w.binary(e.data)
			default:
				w.out = append(w.out, '[')
				w.out = appendJSNumber(w.out, float64(e.typ))
				w.out = append(w.out, ',')
				w.binary(e.data)
				w.out = append(w.out, ']')
			}
		default:
			return false, fmt.Errorf("redis: msgpack: invalid code 0x%02x", c)
		}

		// A value was written (or was undefined): close the arrays and
		// maps it completes, and start the next element or member.
		for {
			if len(stack) == 0 {
				return undef, nil
			}
			l := &stack[len(stack)-1]
			if !l.isMap {
				if undef {
					w.out = append(w.out, "null"...)
				}
				if l.left--; l.left > 0 {
					w.out = append(w.out, ',')
					break
				}
				w.out = append(w.out, ']')
			} else {
				if undef { // JSON.stringify omits undefined members
					w.out = w.out[:l.mark]
				} else {
					l.first = false
				}
				if l.left--; l.left > 0 {
					l.mark = len(w.out)
					if !l.first {
						w.out = append(w.out, ',')
					}
					if err := w.key(depth + len(stack)); err != nil {
						return false, err
					}
					w.out = append(w.out, ':')
					break
				}
				w.out = append(w.out, '}')
			}
			stack = stack[:len(stack)-1]
			undef = false
		}
	}
}

func (w *jsonWriter) binary(b []byte) {
	if w.mode == binBufferJSON {
		w.out = append(w.out, `{"type":"Buffer","data":[`...)
		for i, c := range b {
			if i > 0 {
				w.out = append(w.out, ',')
			}
			w.out = appendPadded(w.out, int(c), 1)
		}
		w.out = append(w.out, "]}"...)
		return
	}
	w.out = append(w.out, `{"_placeholder":true,"num":`...)
	w.out = appendPadded(w.out, len(w.atts), 1)
	w.out = append(w.out, '}')
	w.atts = append(w.atts, b)
}

// key writes a map key as the JSON string of the JavaScript property name
// notepack.io gives it: strings as they are, anything else converted the
// way JavaScript converts a value to a property key.
func (w *jsonWriter) key(depth int) error {
	c, err := w.r.peek()
	if err != nil {
		return err
	}
	if isStrCode(c) {
		b, err := w.r.bytesValue()
		if err != nil {
			return err
		}
		w.out = appendJSString(w.out, b)
		return nil
	}
	var sb strings.Builder
	if err := w.r.keyString(&sb, depth); err != nil {
		return err
	}
	w.out = appendJSStringText(w.out, sb.String())
	return nil
}

// keyString writes String(value) of the next value: how JavaScript turns a
// decoded non-string key into a property name. Arrays, which nest, are
// walked without recursion: the small stack holds, per level, the elements
// still to write.
func (r *mpReader) keyString(sb *strings.Builder, depth int) error {
	var buf [8]int
	stack := buf[:0]
	for {
		elem := len(stack) > 0
		var c byte
		var err error
		if elem {
			if c, err = r.peek(); err != nil {
				return err
			}
		}
		if elem && c == msgpcode.Nil { // Array#toString writes null as ""
			_, _ = r.take(1)
		} else {
			d := depth + len(stack)
			if d > maxDepth {
				return errTooDeep
			}
			if c, err = r.peek(); err != nil {
				return err
			}
			if isArrayCode(c) { // Array#toString: elements joined by ","
				n, err := r.dec.DecodeArrayLen()
				if err != nil {
					return errTruncated
				}
				if n > 0 {
					stack = append(stack, n)
					continue
				}
			} else {
				mark := sb.Len()
				if err := r.keyAtom(sb, c, d); err != nil {
					return err
				}
				if elem && c == msgpcode.FixExt1 { // and undefined as ""
					if s := sb.String(); s[mark:] == "undefined" {
						tmp := s[:mark]
						sb.Reset()
						sb.WriteString(tmp)
					}
				}
			}
		}
		// A value was written: close the arrays it completes.
		for {
			if len(stack) == 0 {
				return nil
			}
			if stack[len(stack)-1]--; stack[len(stack)-1] > 0 {
				sb.WriteByte(',')
				break
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// keyAtom is keyString for a value that is not an array, at the given
// depth.
func (r *mpReader) keyAtom(sb *strings.Builder, c byte, depth int) error {
	switch {
	case isStrCode(c) || isBinCode(c): // Buffer#toString is UTF-8
		b, err := r.bytesValue()
		if err != nil {
			return err
		}
		sb.Write(b)
	case isIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
		f, err := r.number(c)
		if err != nil {
			return err
		}
		sb.WriteString(jsNumberKey(f))
	case c == msgpcode.Nil:
		_, _ = r.take(1)
		sb.WriteString("null")
	case c == msgpcode.True:
		_, _ = r.take(1)
		sb.WriteString("true")
	case c == msgpcode.False:
		_, _ = r.take(1)
		sb.WriteString("false")
	case isMapCode(c):
		if err := r.skip(depth); err != nil {
			return err
		}
		sb.WriteString("[object Object]")
	case isExtCode(c):
		e, err := r.extValue(c)
		if err != nil {
			return err
		}
		switch e.kind {
		case extUndefined:
			sb.WriteString("undefined")
		case extDate:
			sb.WriteString(jsDateString(e.dateMs))
		case extBinary:
			sb.WriteString("[object ArrayBuffer]")
		default:
			sb.WriteString(jsNumberKey(float64(e.typ)))
			sb.WriteByte(',')
			sb.Write(e.data)
		}
	default:
		return fmt.Errorf("redis: msgpack: invalid code 0x%02x", c)
	}
	return nil
}
