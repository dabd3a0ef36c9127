package redis

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// mpBuf is the io.Writer (and io.ByteWriter) the msgpack Encoder writes to.
type mpBuf struct{ b []byte }

func (w *mpBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (w *mpBuf) WriteByte(c byte) error { w.b = append(w.b, c); return nil }

func (w *mpBuf) WriteString(s string) (int, error) { w.b = append(w.b, s...); return len(s), nil }

// mpWriter writes msgpack as notepack.io 3.0.1 does: smallest integer
// encodings, float64 for anything else, str for strings and bin for binary.
// JSON values are transcoded in two passes: the first validates the text and
// counts the members of every array and object (msgpack announces them
// before the members) and finds the binary placeholders; the second writes.
// Both are linear in the size of the text, and key order is kept.
type mpWriter struct {
	buf mpBuf
	enc *msgpack.Encoder

	// State of one JSON transcoding.
	src  []byte
	atts [][]byte
	cs   []jsContainer
	k    int
	tmp  []byte // unescaped strings

	// The containers each pass is inside: nesting is client input, so the
	// passes keep it in these stacks rather than on the goroutine's (where
	// a recursive walk held some 2 MiB for a value nested 10,000 deep).
	// Pooled with the writer, they cost nothing once grown.
	scanStack  []jsOpen
	writeStack []jsWriting
}

// jsOpen is a container the first pass is inside.
type jsOpen struct {
	idx   int // its entry in cs
	count int // members so far
	num   int // object: value of the last "num" member as an attachment index
	obj   bool
	isPH  bool // object: the last "_placeholder" member is true
}

// jsWriting is a container the second pass is inside.
type jsWriting struct {
	left int // members still to write
	end  int // offset just past the closing bracket
	obj  bool
}

// jsContainer is what the first pass learns of an array or object.
type jsContainer struct {
	count int
	end   int // offset just past the closing bracket
	next  int // index of the first container after this one's contents
	ph    int // attachment index when the object is a placeholder, else -1
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
	w.src, w.atts = nil, nil
	if cap(w.cs) > 4096 {
		w.cs = nil
	}
	if cap(w.scanStack) > 1024 {
		w.scanStack = nil
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
	w.src, w.atts, w.cs, w.k = src, atts, w.cs[:0], 0
	i := skipWS(src, 0)
	end, err := w.scan(i)
	if err != nil {
		return err
	}
	if skipWS(src, end) != len(src) {
		return fmt.Errorf("redis: JSON: invalid character after top-level value at offset %d", end)
	}
	_, err = w.write(i)
	return err
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func syntaxErr(what string, i int) error {
	return fmt.Errorf("redis: JSON: %s at offset %d", what, i)
}

// scan is the first pass over the value at src[i]: it validates it and
// records its containers; it returns the offset just past the value. It
// walks without recursion, keeping the open containers in w.scanStack.
func (w *mpWriter) scan(i int) (int, error) {
	d := w.src
	stack := w.scanStack[:0]
	key := "" // the placeholder key of the member value at i, if any
	for {
		// A value starts at d[i].
		if i >= len(d) {
			return i, syntaxErr("unexpected end", i)
		}
		switch c := d[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return i, syntaxErr("nesting too deep", i)
			}
			if key != "" {
				stack[len(stack)-1].member(key, d[i:i+1]) // neither true nor a number
				key = ""
			}
			idx := len(w.cs)
			w.cs = append(w.cs, jsContainer{ph: -1})
			isObj := c == '{'
			closer := byte(']')
			if isObj {
				closer = '}'
			}
			i = skipWS(d, i+1)
			if i < len(d) && d[i] == closer {
				i++
				w.cs[idx] = jsContainer{end: i, next: len(w.cs), ph: -1}
				break
			}
			stack = append(stack, jsOpen{idx: idx, num: -1, obj: isObj})
			if isObj {
				var err error
				if i, key, err = memberKey(d, i); err != nil {
					return i, err
				}
			}
			continue
		default:
			start := i
			var err error
			switch {
			case c == '"':
				i, _, err = scanJSString(d, i)
			case c == 't':
				i, err = scanLit(d, i, "true")
			case c == 'f':
				i, err = scanLit(d, i, "false")
			case c == 'n':
				i, err = scanLit(d, i, "null")
			case c == '-' || c >= '0' && c <= '9':
				i, err = scanJSNumber(d, i)
			default:
				return i, syntaxErr("invalid character "+strconv.QuoteRune(rune(d[i])), i)
			}
			if err != nil {
				return i, err
			}
			if key != "" {
				stack[len(stack)-1].member(key, d[start:i])
				key = ""
			}
		}

		// A value ended at d[i]: close the containers it completes.
		for {
			if len(stack) == 0 {
				w.scanStack = stack[:0]
				return i, nil
			}
			top := &stack[len(stack)-1]
			top.count++
			i = skipWS(d, i)
			if i >= len(d) {
				return i, syntaxErr("unexpected end", i)
			}
			if d[i] == ',' {
				i = skipWS(d, i+1)
				if top.obj {
					var err error
					if i, key, err = memberKey(d, i); err != nil {
						return i, err
					}
				}
				break
			}
			closer := byte(']')
			if top.obj {
				closer = '}'
			}
			if d[i] != closer {
				return i, syntaxErr("',' or closing bracket expected", i)
			}
			i++
			ph := -1
			if top.obj && top.isPH && len(w.atts) > 0 {
				if top.num < 0 || top.num >= len(w.atts) {
					return i, errPlaceholder
				}
				ph = top.num
			}
			w.cs[top.idx] = jsContainer{count: top.count, end: i, next: len(w.cs), ph: ph}
			stack = stack[:len(stack)-1]
		}
	}
}

// member records the value tok of the member named key ("_placeholder" or
// "num"); later duplicates win, as with JSON.parse.
func (o *jsOpen) member(key string, tok []byte) {
	if key == "_placeholder" {
		o.isPH = string(tok) == "true"
	} else {
		o.num = placeholderIndex(tok)
	}
}

// memberKey scans an object key and its colon at d[i]; it returns the
// offset of the member value and the key when it matters to placeholders.
func memberKey(d []byte, i int) (int, string, error) {
	if i >= len(d) || d[i] != '"' {
		return i, "", syntaxErr("object key expected", i)
	}
	keyEnd, escaped, err := scanJSString(d, i)
	if err != nil {
		return i, "", err
	}
	name := placeholderKey(d[i:keyEnd], escaped)
	i = skipWS(d, keyEnd)
	if i >= len(d) || d[i] != ':' {
		return i, "", syntaxErr("':' expected", i)
	}
	return skipWS(d, i+1), name, nil
}

// placeholderKey returns the key when it may matter to placeholders.
func placeholderKey(quoted []byte, escaped bool) string {
	if escaped {
		s, err := unquote(nil, quoted)
		if err != nil {
			return ""
		}
		quoted = append(append([]byte{'"'}, s...), '"')
	}
	switch string(quoted) {
	case `"_placeholder"`:
		return "_placeholder"
	case `"num"`:
		return "num"
	}
	return ""
}

// placeholderIndex is the attachment index of a "num" member: a
// non-negative integral number, -1 otherwise.
func placeholderIndex(tok []byte) int {
	if len(tok) == 0 || !(tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9') {
		return -1
	}
	f, err := strconv.ParseFloat(unsafeString(tok), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return -1
	}
	if !(f >= 0) || f != math.Trunc(f) {
		return -1
	}
	if f >= 1<<30 {
		return 1 << 30
	}
	return int(f)
}

func scanLit(d []byte, i int, lit string) (int, error) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return i, syntaxErr("invalid literal", i)
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func scanJSNumber(d []byte, i int) (int, error) {
	start := i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i++; i < len(d) && isDigit(d[i]); i++ {
		}
	default:
		return i, syntaxErr("invalid number", start)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return i, syntaxErr("invalid number", start)
		}
		for ; i < len(d) && isDigit(d[i]); i++ {
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return i, syntaxErr("invalid number", start)
		}
		for ; i < len(d) && isDigit(d[i]); i++ {
		}
	}
	return i, nil
}

// scanJSString validates the string at d[i] == '"' and returns the offset
// past its closing quote and whether it holds escapes.
func scanJSString(d []byte, i int) (int, bool, error) {
	start := i
	escaped := false
	for i++; i < len(d); {
		switch c := d[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return i, escaped, syntaxErr("unterminated string", start)
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					return i, escaped, syntaxErr("unterminated string", start)
				}
				for _, h := range d[i+2 : i+6] {
					if !isHex(h) {
						return i, escaped, syntaxErr("invalid \\u escape", i)
					}
				}
				i += 6
			default:
				return i, escaped, syntaxErr("invalid escape", i)
			}
		case c < 0x20:
			return i, escaped, syntaxErr("control character in string", i)
		default:
			i++
		}
	}
	return i, escaped, syntaxErr("unterminated string", start)
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unquote appends the UTF-8 text of the valid JSON string token quoted to
// dst. Lone surrogates and invalid UTF-8 bytes become U+FFFD, as
// Node's UTF-8 encoder writes them.
func unquote(dst, quoted []byte) ([]byte, error) {
	s := quoted[1 : len(quoted)-1]
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				dst = append(dst, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		if i+1 >= len(s) {
			return dst, errors.New("redis: JSON: bad escape")
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+6 > len(s) {
				return dst, errors.New("redis: JSON: bad escape")
			}
			r := hexVal(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := hexVal(s[i+2 : i+6]); r2 >= 0xdc00 && r2 < 0xe000 {
						dst = utf8.AppendRune(dst, utf16.DecodeRune(r, r2))
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst, nil
}

// write is the second pass: it writes the value at src[i], which scan
// validated, and returns the offset past it. Like scan, it keeps the open
// containers in a stack of its own, w.writeStack.
func (w *mpWriter) write(i int) (int, error) {
	d := w.src
	stack := w.writeStack[:0]
	for {
		// A value starts at d[i], after spaces.
		i = skipWS(d, i)
		switch c := d[i]; {
		case c == '"':
			var err error
			if i, err = w.jsString(i); err != nil {
				return i, err
			}
		case c == '{' || c == '[':
			ct := w.cs[w.k]
			w.k++
			if ct.ph >= 0 {
				w.bin(w.atts[ct.ph])
				w.k = ct.next
				i = ct.end
				break
			}
			if c == '[' {
				w.arrayLen(ct.count)
			} else {
				w.mapLen(ct.count)
			}
			if ct.count == 0 {
				i = ct.end
				break
			}
			stack = append(stack, jsWriting{left: ct.count, end: ct.end, obj: c == '{'})
			i = skipWS(d, i+1)
			if c == '{' {
				var err error
				if i, err = w.jsString(i); err != nil { // the key
					return i, err
				}
				i = skipWS(d, i) + 1 // ':'
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
			end, _ := scanJSNumber(d, i)
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
			i = skipWS(d, i) + 1 // ',' or the closing bracket
			if top.left--; top.left > 0 {
				if top.obj {
					var err error
					if i, err = w.jsString(i); err != nil { // the key
						return i, err
					}
					i = skipWS(d, i) + 1 // ':'
				}
				break
			}
			i = top.end
			stack = stack[:len(stack)-1]
		}
	}
}

// jsString writes the string at src[i], after spaces, and returns the
// offset past it.
func (w *mpWriter) jsString(i int) (int, error) {
	d := w.src
	i = skipWS(d, i)
	end, escaped, _ := scanJSString(d, i)
	if !escaped && utf8.Valid(d[i+1:end-1]) {
		w.strBytes(d[i+1 : end-1])
		return end, nil
	}
	var err error
	w.tmp, err = unquote(w.tmp[:0], d[i:end])
	if err != nil {
		return end, err
	}
	w.strBytes(w.tmp)
	return end, nil
}
