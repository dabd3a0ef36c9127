package cluster

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

// MaxDepth bounds the nesting of arrays and maps in transcoded values, like
// the parser's limit for JSON.
const MaxDepth = 10000

var (
	ErrTruncated = errors.New("redis: msgpack: truncated value")
	ErrTooDeep   = fmt.Errorf("redis: msgpack: nesting exceeds %d levels", MaxDepth)
)

// BinaryMode says how the msgpack → JSON transcoder writes binary values.
type BinaryMode int

const (
	// BinPlaceholder writes a Socket.IO placeholder and collects the bytes
	// as an attachment (for packets and acknowledgements).
	BinPlaceholder BinaryMode = iota
	// BinBufferJSON writes what JSON.stringify gives for a Node.js Buffer,
	// {"type":"Buffer","data":[…]} (for messages whose fields travel as
	// JSON on Node, such as serverSideEmit arguments).
	BinBufferJSON
)

// Reader reads msgpack values, as notepack.io encodes them, out of one
// message. It uses the msgpack Decoder for headers and numbers and slices
// strings and binary values out of the message itself, so that a length
// announced by a hostile header never allocates more than the message holds.
//
// Binary values alias the message: attachments returned by toJSON share its
// memory.
type Reader struct {
	Src []byte
	Rd  bytes.Reader
	Dec *msgpack.Decoder

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
	r := new(Reader)
	r.Dec = msgpack.NewDecoder(nil)
	return r
}}

func GetReader(src []byte) *Reader {
	r := readerPool.Get().(*Reader)
	r.reset(src)
	return r
}

func PutReader(r *Reader) {
	if cap(r.skipStack) > 1024 {
		r.skipStack = nil
	}
	if cap(r.jsonStack) > 1024 {
		r.jsonStack = nil
	}
	r.Src = nil
	r.Rd.Reset(nil)
	r.Dec.ResetReader(nil)
	readerPool.Put(r)
}

func (r *Reader) reset(src []byte) {
	r.Src = src
	r.Rd.Reset(src)
	r.Dec.ResetReader(&r.Rd) // *bytes.Reader is a ByteScanner: no buffering
}

// Pos is the offset of the next byte to read.
func (r *Reader) Pos() int { return len(r.Src) - r.Rd.Len() }

// Done reports whether the whole message was read.
func (r *Reader) Done() bool { return r.Rd.Len() == 0 }

// Take returns the next n bytes of the message (no copy) and skips them.
func (r *Reader) Take(n int) ([]byte, error) {
	if n < 0 || n > r.Rd.Len() {
		return nil, ErrTruncated
	}
	p := r.Pos()
	if _, err := r.Rd.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return r.Src[p : p+n : p+n], nil
}

func (r *Reader) Peek() (byte, error) {
	c, err := r.Dec.PeekCode()
	if err != nil {
		return 0, ErrTruncated
	}
	return c, nil
}

func IsStrCode(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}

func IsBinCode(c byte) bool { return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32 }

func IsMapCode(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func IsArrayCode(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func IsExtCode(c byte) bool {
	return c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16 || c >= msgpcode.Ext8 && c <= msgpcode.Ext32
}

func IsIntCode(c byte) bool {
	return msgpcode.IsFixedNum(c) || c >= msgpcode.Uint8 && c <= msgpcode.Int64
}

// BytesValue reads a str or bin value (the caller peeked the code).
func (r *Reader) BytesValue() ([]byte, error) {
	n, err := r.Dec.DecodeBytesLen()
	if err != nil {
		return nil, ErrTruncated
	}
	return r.Take(n)
}

// Str reads a value that must be a string.
func (r *Reader) Str() (string, bool, error) {
	c, err := r.Peek()
	if err != nil {
		return "", false, err
	}
	if !IsStrCode(c) {
		return "", false, r.Skip(0)
	}
	b, err := r.BytesValue()
	return string(b), true, err
}

// Number reads an int or float value as the float64 JavaScript sees (the
// caller peeked the code).
func (r *Reader) Number(c byte) (float64, error) {
	switch {
	case c == msgpcode.Uint64:
		u, err := r.Dec.DecodeUint64()
		if err != nil {
			return 0, ErrTruncated
		}
		return float64(u), nil
	case IsIntCode(c):
		i, err := r.Dec.DecodeInt64()
		if err != nil {
			return 0, ErrTruncated
		}
		return float64(i), nil
	default:
		f, err := r.Dec.DecodeFloat64()
		if err != nil {
			return 0, ErrTruncated
		}
		return f, nil
	}
}

// IntValue reads a value that should be an integer (type, clientCount).
func (r *Reader) IntValue() (int64, bool, error) {
	c, err := r.Peek()
	if err != nil {
		return 0, false, err
	}
	if !IsIntCode(c) && c != msgpcode.Float && c != msgpcode.Double {
		return 0, false, r.Skip(0)
	}
	f, err := r.Number(c)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxSafeInt {
		return 0, false, err
	}
	return int64(f), true, nil
}

// BoolValue reads a value and reports whether it is true (the only value
// the adapter flags test).
func (r *Reader) BoolValue() (bool, error) {
	c, err := r.Peek()
	if err != nil {
		return false, err
	}
	if c == msgpcode.True || c == msgpcode.False {
		return r.Dec.DecodeBool()
	}
	return false, r.Skip(0)
}

// Ext is an extension value as notepack.io decodes it.
type Ext struct {
	Kind   extKind
	Typ    int8
	Data   []byte  // extBinary, extPair
	DateMs float64 // extDate
}

type extKind int

const (
	extPair      extKind = iota // [type, Buffer]
	ExtDate                     // a Date
	ExtUndefined                // undefined (notepack 2.x fixext1 type 0)
	ExtBinary                   // an ArrayBuffer (notepack 2.x ext type 0)
)

// ExtValue reads an extension the way notepack.io 3.0.1 decodes it.
func (r *Reader) ExtValue(code byte) (Ext, error) {
	typ, n, err := r.Dec.DecodeExtHeader()
	if err != nil {
		return Ext{}, ErrTruncated
	}
	data, err := r.Take(n)
	if err != nil {
		return Ext{}, err
	}
	be32 := func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	switch code {
	case msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		if typ == 0 {
			return Ext{Kind: ExtBinary, Data: data}, nil
		}
		if typ == -1 && code == msgpcode.Ext8 {
			if n != 12 {
				return Ext{}, errors.New("redis: msgpack: timestamp 96 of the wrong length")
			}
			ns := float64(be32(data))
			hi := float64(int32(be32(data[4:])))
			lo := float64(be32(data[8:]))
			return Ext{Kind: ExtDate, DateMs: float64(float64(hi*0x100000000+lo)*1e3) + ns/1e6}, nil
		}
	case msgpcode.FixExt1:
		if typ == 0 {
			return Ext{Kind: ExtUndefined}, nil
		}
	case msgpcode.FixExt4:
		if typ == -1 {
			return Ext{Kind: ExtDate, DateMs: float64(be32(data)) * 1e3}, nil
		}
	case msgpcode.FixExt8:
		hi, lo := be32(data), be32(data[4:])
		switch typ {
		case 0: // notepack 2.x Date: signed milliseconds
			return Ext{Kind: ExtDate, DateMs: float64(int32(hi))*0x100000000 + float64(lo)}, nil
		case -1:
			s := float64(hi&3)*0x100000000 + float64(lo)
			return Ext{Kind: ExtDate, DateMs: float64(s*1e3) + float64(hi>>2)/1e6}, nil
		}
	}
	return Ext{Kind: extPair, Typ: typ, Data: data}, nil
}

// Skip skips one value, which is at the given depth: no value may be
// deeper than maxDepth. It walks without recursion, keeping in r.skipStack
// the number of values still to Skip in each array and map it is inside.
func (r *Reader) Skip(depth int) error {
	stack := r.skipStack[:0]
	defer func() { r.skipStack = stack[:0] }()
	for {
		if depth+len(stack) > MaxDepth {
			return ErrTooDeep
		}
		c, err := r.Peek()
		if err != nil {
			return err
		}
		switch {
		case IsStrCode(c) || IsBinCode(c):
			_, err = r.BytesValue()
		case IsExtCode(c):
			var n int
			if _, n, err = r.Dec.DecodeExtHeader(); err != nil {
				return ErrTruncated
			}
			_, err = r.Take(n)
		case IsArrayCode(c):
			n, err := r.Dec.DecodeArrayLen()
			if err != nil {
				return ErrTruncated
			}
			if n > 0 {
				stack = append(stack, n)
				continue
			}
		case IsMapCode(c):
			n, err := r.Dec.DecodeMapLen()
			if err != nil {
				return ErrTruncated
			}
			if n > 0 {
				stack = append(stack, 2*n)
				continue
			}
		case c == msgpcode.Nil || c == msgpcode.True || c == msgpcode.False:
			_, err = r.Take(1)
		case IsIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
			_, err = r.Number(c)
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

// Span returns the raw bytes of the next value and skips it.
func (r *Reader) Span() ([]byte, error) {
	start := r.Pos()
	if err := r.Skip(0); err != nil {
		return nil, err
	}
	end := r.Pos()
	return r.Src[start:end:end], nil
}

// MapKeys walks the map at the reader: fn is called for every string key
// (aliasing the message) with the reader positioned on its value, which fn
// must consume. Entries
// with other keys are skipped. ok is false when the value is not a map (it
// is then skipped).
func (r *Reader) MapKeys(fn func(key []byte) error) (ok bool, err error) {
	c, err := r.Peek()
	if err != nil {
		return false, err
	}
	if !IsMapCode(c) {
		return false, r.Skip(0)
	}
	n, err := r.Dec.DecodeMapLen()
	if err != nil {
		return false, ErrTruncated
	}
	for i := 0; i < n; i++ {
		c, err := r.Peek()
		if err != nil {
			return false, err
		}
		if !IsStrCode(c) {
			if err := r.Skip(1); err != nil {
				return false, err
			}
			if err := r.Skip(1); err != nil {
				return false, err
			}
			continue
		}
		k, err := r.BytesValue()
		if err != nil {
			return false, err
		}
		if err := fn(k); err != nil {
			return false, err
		}
	}
	return true, nil
}

// StringList reads an array of rooms: strings, and numbers as JavaScript
// writes them (Node allows numeric rooms). Other elements are dropped.
func (r *Reader) StringList() ([]string, error) {
	c, err := r.Peek()
	if err != nil {
		return nil, err
	}
	if !IsArrayCode(c) {
		return nil, r.Skip(0)
	}
	n, err := r.Dec.DecodeArrayLen()
	if err != nil {
		return nil, ErrTruncated
	}
	out := make([]string, 0, min(n, r.Rd.Len()))
	for i := 0; i < n; i++ {
		c, err := r.Peek()
		if err != nil {
			return nil, err
		}
		switch {
		case IsStrCode(c):
			b, err := r.BytesValue()
			if err != nil {
				return nil, err
			}
			out = append(out, string(b))
		case IsIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
			f, err := r.Number(c)
			if err != nil {
				return nil, err
			}
			out = append(out, JSNumberKey(f))
		default:
			if err := r.Skip(1); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// JSONWriter transcodes msgpack values into JSON.
type JSONWriter struct {
	R    *Reader
	mode BinaryMode
	Out  []byte
	Atts [][]byte
}

// ToJSON transcodes the next value of r into JSON, appending to dst and,
// in binPlaceholder mode, to atts.
func (r *Reader) ToJSON(dst []byte, atts [][]byte, mode BinaryMode) ([]byte, [][]byte, error) {
	w := JSONWriter{R: r, mode: mode, Out: dst, Atts: atts}
	undef, err := w.Value(0)
	if err == nil && undef {
		w.Out = append(w.Out, "null"...)
	}
	return w.Out, w.Atts, err
}

// Value writes one Value; it writes nothing and reports true for
// undefined, which the caller writes as null in arrays and omits in maps.
// It walks without recursion, keeping the arrays and maps it is inside in
// r.jsonStack; depth is that of the Value.
func (w *JSONWriter) Value(depth int) (undefined bool, err error) {
	r := w.R
	stack := r.jsonStack[:0]
	defer func() { r.jsonStack = stack[:0] }()
	for {
		// A value starts (in a map, after its key).
		c, err := r.Peek()
		if err != nil {
			return false, err
		}
		undef := false
		switch {
		case IsStrCode(c):
			b, err := r.BytesValue()
			if err != nil {
				return false, err
			}
			w.Out = AppendJSString(w.Out, b)
		case IsIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
			f, err := r.Number(c)
			if err != nil {
				return false, err
			}
			w.Out = AppendJSNumber(w.Out, f)
		case c == msgpcode.Nil:
			_, _ = r.Take(1)
			w.Out = append(w.Out, "null"...)
		case c == msgpcode.True:
			_, _ = r.Take(1)
			w.Out = append(w.Out, "true"...)
		case c == msgpcode.False:
			_, _ = r.Take(1)
			w.Out = append(w.Out, "false"...)
		case IsBinCode(c):
			b, err := r.BytesValue()
			if err != nil {
				return false, err
			}
			w.Binary(b)
		case IsArrayCode(c):
			if depth+len(stack) >= MaxDepth {
				return false, ErrTooDeep
			}
			n, err := r.Dec.DecodeArrayLen()
			if err != nil {
				return false, ErrTruncated
			}
			if n == 0 {
				w.Out = append(w.Out, "[]"...)
				break
			}
			w.Out = append(w.Out, '[')
			stack = append(stack, jsonLevel{left: n})
			continue
		case IsMapCode(c):
			if depth+len(stack) >= MaxDepth {
				return false, ErrTooDeep
			}
			n, err := r.Dec.DecodeMapLen()
			if err != nil {
				return false, ErrTruncated
			}
			if n == 0 {
				w.Out = append(w.Out, "{}"...)
				break
			}
			w.Out = append(w.Out, '{')
			stack = append(stack, jsonLevel{left: n, mark: len(w.Out), isMap: true, first: true})
			if err := w.Key(depth + len(stack)); err != nil {
				return false, err
			}
			w.Out = append(w.Out, ':')
			continue
		case IsExtCode(c):
			e, err := r.ExtValue(c)
			if err != nil {
				return false, err
			}
			switch e.Kind {
			case ExtUndefined:
				undef = true
			case ExtDate:
				w.Out = AppendJSDate(w.Out, e.DateMs)
			case ExtBinary:
				w.Binary(e.Data)
			default:
				w.Out = append(w.Out, '[')
				w.Out = AppendJSNumber(w.Out, float64(e.Typ))
				w.Out = append(w.Out, ',')
				w.Binary(e.Data)
				w.Out = append(w.Out, ']')
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
					w.Out = append(w.Out, "null"...)
				}
				if l.left--; l.left > 0 {
					w.Out = append(w.Out, ',')
					break
				}
				w.Out = append(w.Out, ']')
			} else {
				if undef { // JSON.stringify omits undefined members
					w.Out = w.Out[:l.mark]
				} else {
					l.first = false
				}
				if l.left--; l.left > 0 {
					l.mark = len(w.Out)
					if !l.first {
						w.Out = append(w.Out, ',')
					}
					if err := w.Key(depth + len(stack)); err != nil {
						return false, err
					}
					w.Out = append(w.Out, ':')
					break
				}
				w.Out = append(w.Out, '}')
			}
			stack = stack[:len(stack)-1]
			undef = false
		}
	}
}

func (w *JSONWriter) Binary(b []byte) {
	if w.mode == BinBufferJSON {
		w.Out = append(w.Out, `{"type":"Buffer","data":[`...)
		for i, c := range b {
			if i > 0 {
				w.Out = append(w.Out, ',')
			}
			w.Out = appendPadded(w.Out, int(c), 1)
		}
		w.Out = append(w.Out, "]}"...)
		return
	}
	w.Out = append(w.Out, `{"_placeholder":true,"num":`...)
	w.Out = appendPadded(w.Out, len(w.Atts), 1)
	w.Out = append(w.Out, '}')
	w.Atts = append(w.Atts, b)
}

// Key writes a map Key as the JSON string of the JavaScript property name
// notepack.io gives it: strings as they are, anything else converted the
// way JavaScript converts a value to a property Key.
func (w *JSONWriter) Key(depth int) error {
	c, err := w.R.Peek()
	if err != nil {
		return err
	}
	if IsStrCode(c) {
		b, err := w.R.BytesValue()
		if err != nil {
			return err
		}
		w.Out = AppendJSString(w.Out, b)
		return nil
	}
	var sb strings.Builder
	if err := w.R.KeyString(&sb, depth); err != nil {
		return err
	}
	w.Out = AppendJSStringText(w.Out, sb.String())
	return nil
}

// KeyString writes String(value) of the next value: how JavaScript turns a
// decoded non-string key into a property name. Arrays, which nest, are
// walked without recursion: the small stack holds, per level, the elements
// still to write.
func (r *Reader) KeyString(sb *strings.Builder, depth int) error {
	var buf [8]int
	stack := buf[:0]
	for {
		elem := len(stack) > 0
		var c byte
		var err error
		if elem {
			if c, err = r.Peek(); err != nil {
				return err
			}
		}
		if elem && c == msgpcode.Nil { // Array#toString writes null as ""
			_, _ = r.Take(1)
		} else {
			d := depth + len(stack)
			if d > MaxDepth {
				return ErrTooDeep
			}
			if c, err = r.Peek(); err != nil {
				return err
			}
			if IsArrayCode(c) { // Array#toString: elements joined by ","
				n, err := r.Dec.DecodeArrayLen()
				if err != nil {
					return ErrTruncated
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
func (r *Reader) keyAtom(sb *strings.Builder, c byte, depth int) error {
	switch {
	case IsStrCode(c) || IsBinCode(c): // Buffer#toString is UTF-8
		b, err := r.BytesValue()
		if err != nil {
			return err
		}
		sb.Write(b)
	case IsIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
		f, err := r.Number(c)
		if err != nil {
			return err
		}
		sb.WriteString(JSNumberKey(f))
	case c == msgpcode.Nil:
		_, _ = r.Take(1)
		sb.WriteString("null")
	case c == msgpcode.True:
		_, _ = r.Take(1)
		sb.WriteString("true")
	case c == msgpcode.False:
		_, _ = r.Take(1)
		sb.WriteString("false")
	case IsMapCode(c):
		if err := r.Skip(depth); err != nil {
			return err
		}
		sb.WriteString("[object Object]")
	case IsExtCode(c):
		e, err := r.ExtValue(c)
		if err != nil {
			return err
		}
		switch e.Kind {
		case ExtUndefined:
			sb.WriteString("undefined")
		case ExtDate:
			sb.WriteString(JSDateString(e.DateMs))
		case ExtBinary:
			sb.WriteString("[object ArrayBuffer]")
		default:
			sb.WriteString(JSNumberKey(float64(e.Typ)))
			sb.WriteByte(',')
			sb.Write(e.Data)
		}
	default:
		return fmt.Errorf("redis: msgpack: invalid code 0x%02x", c)
	}
	return nil
}

// MsgpackToJSON transcodes one whole msgpack value (trailing bytes are an
// error) to JSON, binary as mode says.
func MsgpackToJSON(msg []byte, mode BinaryMode) ([]byte, [][]byte, error) {
	r := GetReader(msg)
	defer PutReader(r)
	js, atts, err := r.ToJSON(nil, nil, mode)
	if err == nil && !r.Done() {
		err = fmt.Errorf("%w: %d bytes after the value", ErrTrailing, r.Rd.Len())
	}
	return js, atts, err
}
