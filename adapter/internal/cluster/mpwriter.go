package cluster

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ioswarm/ioswarm/internal/jsonscan"
)

// Buf is the io.Writer (and io.ByteWriter) the msgpack Encoder writes to.
type Buf struct{ B []byte }

func (w *Buf) Write(p []byte) (int, error) { w.B = append(w.B, p...); return len(p), nil }

func (w *Buf) WriteByte(c byte) error { w.B = append(w.B, c); return nil }

func (w *Buf) WriteString(s string) (int, error) { w.B = append(w.B, s...); return len(s), nil }

// Writer writes msgpack as notepack.io 3.0.1 does: smallest integer
// encodings, float64 for anything else, str for strings and bin for binary.
// JSON values are transcoded in two passes: the first is jsonscan's, which
// validates the text, counts the members of every array and object (msgpack
// announces them before the members) and finds the binary placeholders by
// the same rules as the parser that accepted the packet; the second writes.
// Both are linear in the size of the text, and key order is kept.
type Writer struct {
	Buf Buf
	Enc *msgpack.Encoder

	Scan jsonscan.Scanner // the first pass; pooled for its result slices
	Tmp  []byte           // unescaped strings

	// The containers the second pass is inside: nesting is client input,
	// so it keeps them in this stack rather than on the goroutine's (where
	// a recursive walk held some 2 MiB for a value nested 10,000 deep).
	// Pooled with the writer, it costs nothing once grown.
	writeStack []jsWriting
}

// jsWriting is a container the second pass is inside.
type jsWriting struct {
	left int // members still to write
	End  int // offset just past the closing bracket
	obj  bool
}

var writerPool = sync.Pool{New: func() any {
	w := new(Writer)
	w.Enc = msgpack.NewEncoder(&w.Buf)
	return w
}}

// GetWriter returns a writer whose output starts empty with room for size
// bytes. The output buffer is handed over by bytes, never pooled.
func GetWriter(size int) *Writer {
	w := writerPool.Get().(*Writer)
	w.Buf.B = make([]byte, 0, size)
	return w
}

// Bytes returns the output and releases the writer.
func (w *Writer) Bytes() []byte {
	out := w.Buf.B
	w.Buf.B = nil
	if cap(w.Scan.Containers) > 4096 {
		w.Scan.Containers = nil
	}
	if cap(w.Scan.Placeholders) > 1024 {
		w.Scan.Placeholders = nil
	}
	if cap(w.writeStack) > 1024 {
		w.writeStack = nil
	}
	if cap(w.Tmp) > 64<<10 {
		w.Tmp = nil
	}
	writerPool.Put(w)
	return out
}

// The encoder writes into a slice and cannot fail: its errors are dropped.

func (w *Writer) Str(s string)      { _ = w.Enc.EncodeString(s) }
func (w *Writer) StrBytes(b []byte) { _ = w.Enc.EncodeString(UnsafeString(b)) }
func (w *Writer) MapLen(n int)      { _ = w.Enc.EncodeMapLen(n) }
func (w *Writer) ArrayLen(n int)    { _ = w.Enc.EncodeArrayLen(n) }
func (w *Writer) Boolean(b bool)    { _ = w.Enc.EncodeBool(b) }
func (w *Writer) Null()             { _ = w.Enc.EncodeNil() }

func (w *Writer) Bin(b []byte) {
	_ = w.Enc.EncodeBytesLen(len(b))
	w.Buf.B = append(w.Buf.B, b...)
}

func (w *Writer) Strs(list []string) {
	w.ArrayLen(len(list))
	for _, s := range list {
		w.Str(s)
	}
}

// Number writes a JavaScript Number as notepack.io does: an integral finite
// value (-0 included) as the smallest int, anything else as float64.
func (w *Writer) Number(f float64) {
	const two64 = 18446744073709551616.0
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f):
		_ = w.Enc.EncodeFloat64(f)
	case f >= 0:
		if f < two64 {
			_ = w.Enc.EncodeUint(uint64(f))
		} else { // notepack keeps the low 64 bits
			_ = w.Enc.EncodeUint64(uint64(math.Mod(f, two64)))
		}
	case f >= -9223372036854775808.0:
		_ = w.Enc.EncodeInt(int64(f))
	default:
		m := math.Mod(f, two64)
		var bits uint64
		if m < -9223372036854775808.0 {
			bits = uint64(m + two64)
		} else {
			bits = uint64(int64(m))
		}
		_ = w.Enc.EncodeInt64(int64(bits))
	}
}

// UnsafeString views b as a string for the Encoder, which only reads it.
func UnsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

var ErrPlaceholder = errors.New("redis: JSON: placeholder out of range")

// JSON transcodes one JSON value, whose binary placeholders refer to atts
// (placeholders mean nothing when atts is empty, as in the parser).
func (w *Writer) JSON(src []byte, atts [][]byte) error {
	w.Scan.FindPlaceholders = len(atts) > 0
	w.Scan.RecordContainers = true
	start, _, err := w.Scan.Whole(src)
	if err != nil {
		return fmt.Errorf("redis: JSON: %w", err)
	}
	for _, ref := range w.Scan.Placeholders {
		if !ref.Names(len(atts)) {
			return ErrPlaceholder
		}
	}
	_, err = w.Write(src, start, atts)
	return err
}

// scanJSString and isDigit are jsonscan's, under the names messages.go
// uses.
func scanJSString(d []byte, i int) (int, bool, error) { return jsonscan.ScanString(d, i) }

func isDigit(c byte) bool { return jsonscan.IsDigit(c) }

// Unquote is jsonscan.Unquote, under the name messages.go uses.
func Unquote(dst, quoted []byte) ([]byte, error) { return jsonscan.Unquote(dst, quoted) }

// Write is the second pass: it writes the value at d[i], which the scanner
// validated, and returns the offset past it. It walks the containers the
// scanner recorded, in the same order, and writes each placeholder the
// scanner found (they are in document order) as its attachment.
func (w *Writer) Write(d []byte, i int, atts [][]byte) (int, error) {
	cs, refs := w.Scan.Containers, w.Scan.Placeholders
	k := 0 // the next container in cs
	stack := w.writeStack[:0]
	for {
		// A value starts at d[i], after spaces.
		i = jsonscan.SkipSpace(d, i)
		switch c := d[i]; {
		case c == '"':
			var err error
			if i, err = w.jsString(d, i); err != nil {
				return i, err
			}
		case c == '{' || c == '[':
			ct := cs[k]
			k++
			if len(refs) > 0 && refs[0].Start == i {
				w.Bin(atts[refs[0].Num])
				refs = refs[1:]
				k = ct.Next
				i = ct.End
				break
			}
			if c == '[' {
				w.ArrayLen(ct.Count)
			} else {
				w.MapLen(ct.Count)
			}
			if ct.Count == 0 {
				i = ct.End
				break
			}
			stack = append(stack, jsWriting{left: ct.Count, End: ct.End, obj: c == '{'})
			i = jsonscan.SkipSpace(d, i+1)
			if c == '{' {
				var err error
				if i, err = w.jsString(d, i); err != nil { // the key
					return i, err
				}
				i = jsonscan.SkipSpace(d, i) + 1 // ':'
			}
			continue
		case c == 't':
			w.Boolean(true)
			i += 4
		case c == 'f':
			w.Boolean(false)
			i += 5
		case c == 'n':
			w.Null()
			i += 4
		default:
			end, _ := jsonscan.ScanNumber(d, i)
			f, err := strconv.ParseFloat(UnsafeString(d[i:end]), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return end, err
			}
			w.Number(f) // out of range: ±Infinity or 0, as Number() gives
			i = end
		}

		// A value ended at d[i]: close the containers it completes.
		for {
			if len(stack) == 0 {
				w.writeStack = stack[:0]
				return i, nil
			}
			top := &stack[len(stack)-1]
			i = jsonscan.SkipSpace(d, i) + 1 // ',' or the closing bracket
			if top.left--; top.left > 0 {
				if top.obj {
					var err error
					if i, err = w.jsString(d, i); err != nil { // the key
						return i, err
					}
					i = jsonscan.SkipSpace(d, i) + 1 // ':'
				}
				break
			}
			i = top.End
			stack = stack[:len(stack)-1]
		}
	}
}

// jsString writes the string at d[i], after spaces, and returns the offset
// past it.
func (w *Writer) jsString(d []byte, i int) (int, error) {
	i = jsonscan.SkipSpace(d, i)
	end, escaped, _ := jsonscan.ScanString(d, i)
	if !escaped && utf8.Valid(d[i+1:end-1]) {
		w.StrBytes(d[i+1 : end-1])
		return end, nil
	}
	var err error
	w.Tmp, err = jsonscan.Unquote(w.Tmp[:0], d[i:end])
	if err != nil {
		return end, err
	}
	w.StrBytes(w.Tmp)
	return end, nil
}

// JSONToMsgpack transcodes one JSON value, whose binary placeholders
// refer to atts, to msgpack.
func JSONToMsgpack(js []byte, atts [][]byte) ([]byte, error) {
	w := GetWriter(len(js) + AttachmentsLen(atts))
	err := w.JSON(js, atts)
	return w.Bytes(), err
}
