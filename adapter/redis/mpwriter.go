package redis

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

// mpBuf is the io.Writer (and io.ByteWriter) the msgpack Encoder writes to.
type mpBuf struct{ b []byte }

func (w *mpBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (w *mpBuf) WriteByte(c byte) error { w.b = append(w.b, c); return nil }

func (w *mpBuf) WriteString(s string) (int, error) { w.b = append(w.b, s...); return len(s), nil }

// mpWriter writes msgpack as notepack.io 3.0.1 does: smallest integer
// encodings, float64 for anything else, str for strings and bin for binary.
// JSON values are transcoded in two passes: the first is jsonscan's, which
// validates the text, counts the members of every array and object (msgpack
// announces them before the members) and finds the binary placeholders by
// the same rules as the parser that accepted the packet; the second writes.
// Both are linear in the size of the text, and key order is kept.
type mpWriter struct {
	buf mpBuf
	enc *msgpack.Encoder

	scan jsonscan.Scanner // the first pass; pooled for its result slices
	tmp  []byte           // unescaped strings

	// The containers the second pass is inside: nesting is client input,
	// so it keeps them in this stack rather than on the goroutine's (where
	// a recursive walk held some 2 MiB for a value nested 10,000 deep).
	// Pooled with the writer, it costs nothing once grown.
	writeStack []jsWriting
}

// jsWriting is a container the second pass is inside.
type jsWriting struct {
	left int // members still to write
	end  int // offset just past the closing bracket
	obj  bool
}

var writerPool = sync.Pool{New: func() any {
	w := new(mpWriter)
	w.enc = msgpack.NewEncoder(&w.buf)
	return w
}}

// getWriter returns a writer whose output starts empty with room for size
// bytes. The output buffer is handed over by bytes, never pooled.
func getWriter(size int) *mpWriter {
	w := writerPool.Get().(*mpWriter)
	w.buf.b = make([]byte, 0, size)
	return w
}

// bytes returns the output and releases the writer.
func (w *mpWriter) bytes() []byte {
	out := w.buf.b
	w.buf.b = nil
	if cap(w.scan.Containers) > 4096 {
		w.scan.Containers = nil
	}
	if cap(w.scan.Placeholders) > 1024 {
		w.scan.Placeholders = nil
	}
	if cap(w.writeStack) > 1024 {
		w.writeStack = nil
	}
	if cap(w.tmp) > 64<<10 {
		w.tmp = nil
	}
	writerPool.Put(w)
	return out
}

// The encoder writes into a slice and cannot fail: its errors are dropped.

func (w *mpWriter) str(s string)      { _ = w.enc.EncodeString(s) }
func (w *mpWriter) strBytes(b []byte) { _ = w.enc.EncodeString(unsafeString(b)) }
func (w *mpWriter) mapLen(n int)      { _ = w.enc.EncodeMapLen(n) }
func (w *mpWriter) arrayLen(n int)    { _ = w.enc.EncodeArrayLen(n) }
func (w *mpWriter) boolean(b bool)    { _ = w.enc.EncodeBool(b) }
func (w *mpWriter) null()             { _ = w.enc.EncodeNil() }

func (w *mpWriter) bin(b []byte) {
	_ = w.enc.EncodeBytesLen(len(b))
	w.buf.b = append(w.buf.b, b...)
}

func (w *mpWriter) strs(list []string) {
	w.arrayLen(len(list))
	for _, s := range list {
		w.str(s)
	}
}

// number writes a JavaScript number as notepack.io does: an integral finite
// value (-0 included) as the smallest int, anything else as float64.
func (w *mpWriter) number(f float64) {
	const two64 = 18446744073709551616.0
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f):
		_ = w.enc.EncodeFloat64(f)
	case f >= 0:
		if f < two64 {
			_ = w.enc.EncodeUint(uint64(f))
		} else { // notepack keeps the low 64 bits
			_ = w.enc.EncodeUint64(uint64(math.Mod(f, two64)))
		}
	case f >= -9223372036854775808.0:
		_ = w.enc.EncodeInt(int64(f))
	default:
		m := math.Mod(f, two64)
		var bits uint64
		if m < -9223372036854775808.0 {
			bits = uint64(m + two64)
		} else {
			bits = uint64(int64(m))
		}
		_ = w.enc.EncodeInt64(int64(bits))
	}
}

// unsafeString views b as a string for the Encoder, which only reads it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

var errPlaceholder = errors.New("redis: JSON: placeholder out of range")

// json transcodes one JSON value, whose binary placeholders refer to atts
// (placeholders mean nothing when atts is empty, as in the parser).
func (w *mpWriter) json(src []byte, atts [][]byte) error {
	w.scan.FindPlaceholders = len(atts) > 0
	w.scan.RecordContainers = true
	start, _, err := w.scan.Whole(src)
	if err != nil {
		return fmt.Errorf("redis: JSON: %w", err)
	}
	for _, ref := range w.scan.Placeholders {
		if !ref.Names(len(atts)) {
			return errPlaceholder
		}
	}
	_, err = w.write(src, start, atts)
	return err
}

// scanJSString and isDigit are jsonscan's, under the names messages.go
// uses.
func scanJSString(d []byte, i int) (int, bool, error) { return jsonscan.ScanString(d, i) }

func isDigit(c byte) bool { return jsonscan.IsDigit(c) }

// unquote is jsonscan.Unquote, under the name messages.go uses.
func unquote(dst, quoted []byte) ([]byte, error) { return jsonscan.Unquote(dst, quoted) }

// write is the second pass: it writes the value at d[i], which the scanner
// validated, and returns the offset past it. It walks the containers the
// scanner recorded, in the same order, and writes each placeholder the
// scanner found (they are in document order) as its attachment.
func (w *mpWriter) write(d []byte, i int, atts [][]byte) (int, error) {
	cs, refs := w.scan.Containers, w.scan.Placeholders
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
				w.bin(atts[refs[0].Num])
				refs = refs[1:]
				k = ct.Next
				i = ct.End
				break
			}
			if c == '[' {
				w.arrayLen(ct.Count)
			} else {
				w.mapLen(ct.Count)
			}
			if ct.Count == 0 {
				i = ct.End
				break
			}
			stack = append(stack, jsWriting{left: ct.Count, end: ct.End, obj: c == '{'})
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
			w.boolean(true)
			i += 4
		case c == 'f':
			w.boolean(false)
			i += 5
		case c == 'n':
			w.null()
			i += 4
		default:
			end, _ := jsonscan.ScanNumber(d, i)
			f, err := strconv.ParseFloat(unsafeString(d[i:end]), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return end, err
			}
			w.number(f) // out of range: ±Infinity or 0, as Number() gives
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
			i = top.end
			stack = stack[:len(stack)-1]
		}
	}
}

// jsString writes the string at d[i], after spaces, and returns the offset
// past it.
func (w *mpWriter) jsString(d []byte, i int) (int, error) {
	i = jsonscan.SkipSpace(d, i)
	end, escaped, _ := jsonscan.ScanString(d, i)
	if !escaped && utf8.Valid(d[i+1:end-1]) {
		w.strBytes(d[i+1 : end-1])
		return end, nil
	}
	var err error
	w.tmp, err = jsonscan.Unquote(w.tmp[:0], d[i:end])
	if err != nil {
		return end, err
	}
	w.strBytes(w.tmp)
	return end, nil
}
