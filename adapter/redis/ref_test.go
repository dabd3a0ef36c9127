package redis

// The recursive transcoders that the iterative ones replaced, kept as the
// reference FuzzTranscodeParity compares them with: same bytes, same errors
// (for JSON → msgpack, the same kind of error: the messages of syntax
// errors are now jsonscan's).

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// refToJSON is toJSON with the recursive walk.
func (r *mpReader) refToJSON(dst []byte, atts [][]byte, mode binaryMode) ([]byte, [][]byte, error) {
	w := jsonWriter{r: r, mode: mode, out: dst, atts: atts}
	undef, err := w.refValue(0)
	if err == nil && undef {
		w.out = append(w.out, "null"...)
	}
	return w.out, w.atts, err
}

// refTranscoder is the recursive JSON → msgpack transcoder, with the
// scanning helpers it had before jsonscan, so that it is an independent
// reference. It writes through w.
type refTranscoder struct {
	w    *mpWriter
	src  []byte
	atts [][]byte
	cs   []refContainer
	k    int
	bad  bool // an out-of-range placeholder counts so far
}

// refContainer is what the first pass learns of an array or object.
type refContainer struct {
	count int
	end   int // offset just past the closing bracket
	next  int // index of the first container after this one's contents
	ph    int // attachment index when the object is a placeholder, else -1
}

// refJSON transcodes one JSON value, whose binary placeholders refer to
// atts (placeholders mean nothing when atts is empty, as in the parser).
// A syntax error anywhere wins over a bad placeholder.
func (w *mpWriter) refJSON(src []byte, atts [][]byte) error {
	t := &refTranscoder{w: w, src: src, atts: atts}
	i := refSkipWS(src, 0)
	end, err := t.scan(i, 0)
	if err != nil {
		return err
	}
	if refSkipWS(src, end) != len(src) {
		return fmt.Errorf("redis: JSON: invalid character after top-level value at offset %d", end)
	}
	if t.bad {
		return errPlaceholder
	}
	_, err = t.write(i)
	return err
}

// scan is the first pass over the value at src[i]: it validates it and
// records its containers; it returns the offset just past the value.
func (t *refTranscoder) scan(i, depth int) (int, error) {
	d := t.src
	if i >= len(d) {
		return i, refSyntaxErr("unexpected end", i)
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := refScanString(d, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, refSyntaxErr("nesting too deep", i)
		}
		idx := len(t.cs)
		t.cs = append(t.cs, refContainer{ph: -1})
		isObj := c == '{'
		closer := byte(']')
		if isObj {
			closer = '}'
		}
		isPH, num := false, -1
		badBefore := t.bad
		i = refSkipWS(d, i+1)
		count := 0
		if i < len(d) && d[i] == closer {
			i++
		} else {
			for {
				var name string
				if isObj {
					if i >= len(d) || d[i] != '"' {
						return i, refSyntaxErr("object key expected", i)
					}
					keyEnd, escaped, err := refScanString(d, i)
					if err != nil {
						return i, err
					}
					name = refPlaceholderKey(d[i:keyEnd], escaped)
					i = refSkipWS(d, keyEnd)
					if i >= len(d) || d[i] != ':' {
						return i, refSyntaxErr("':' expected", i)
					}
					i = refSkipWS(d, i+1)
				}
				start := i
				end, err := t.scan(i, depth+1)
				if err != nil {
					return end, err
				}
				switch name { // later duplicates win, as with JSON.parse
				case "_placeholder":
					isPH = string(d[start:end]) == "true"
				case "num":
					num = refPlaceholderIndex(d[start:end])
				}
				count++
				i = refSkipWS(d, end)
				if i >= len(d) {
					return i, refSyntaxErr("unexpected end", i)
				}
				if d[i] == ',' {
					i = refSkipWS(d, i+1)
					continue
				}
				if d[i] != closer {
					return i, refSyntaxErr("',' or closing bracket expected", i)
				}
				i++
				break
			}
		}
		ph := -1
		if isObj && isPH && len(t.atts) > 0 {
			// Node's reconstructPacket does not look inside a placeholder.
			t.bad = badBefore
			if num < 0 || num >= len(t.atts) {
				t.bad = true
			} else {
				ph = num
			}
		}
		t.cs[idx] = refContainer{count: count, end: i, next: len(t.cs), ph: ph}
		return i, nil
	case c == 't':
		return refScanLit(d, i, "true")
	case c == 'f':
		return refScanLit(d, i, "false")
	case c == 'n':
		return refScanLit(d, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return refScanNumber(d, i)
	}
	return i, refSyntaxErr("invalid character "+strconv.QuoteRune(rune(d[i])), i)
}

// write is the second pass: it writes the value at src[i], which scan
// validated, and returns the offset past it.
func (t *refTranscoder) write(i int) (int, error) {
	d, w := t.src, t.w
	i = refSkipWS(d, i)
	switch c := d[i]; {
	case c == '"':
		end, escaped, _ := refScanString(d, i)
		if !escaped && utf8.Valid(d[i+1:end-1]) {
			w.strBytes(d[i+1 : end-1])
		} else {
			var err error
			w.tmp, err = unquote(w.tmp[:0], d[i:end])
			if err != nil {
				return end, err
			}
			w.strBytes(w.tmp)
		}
		return end, nil
	case c == '{' || c == '[':
		ct := t.cs[t.k]
		t.k++
		if ct.ph >= 0 {
			w.bin(t.atts[ct.ph])
			t.k = ct.next
			return ct.end, nil
		}
		if c == '[' {
			w.arrayLen(ct.count)
		} else {
			w.mapLen(ct.count)
		}
		i = refSkipWS(d, i+1)
		for n := 0; n < ct.count; n++ {
			var err error
			if c == '{' {
				if i, err = t.write(i); err != nil { // the key
					return i, err
				}
				i = refSkipWS(d, i) + 1 // ':'
			}
			if i, err = t.write(i); err != nil {
				return i, err
			}
			i = refSkipWS(d, i) + 1 // ',' or the closing bracket
		}
		return ct.end, nil
	case c == 't':
		w.boolean(true)
		return i + 4, nil
	case c == 'f':
		w.boolean(false)
		return i + 5, nil
	case c == 'n':
		w.null()
		return i + 4, nil
	default:
		end, _ := refScanNumber(d, i)
		f, err := strconv.ParseFloat(unsafeString(d[i:end]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return end, err
		}
		w.number(f) // out of range: ±Infinity or 0, as Number() gives
		return end, nil
	}
}

func refSkipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func refSyntaxErr(what string, i int) error {
	return fmt.Errorf("redis: JSON: %s at offset %d", what, i)
}

// refPlaceholderKey returns the key when it may matter to placeholders.
func refPlaceholderKey(quoted []byte, escaped bool) string {
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

// refPlaceholderIndex is the attachment index of a "num" member: a
// non-negative integral number, -1 otherwise.
func refPlaceholderIndex(tok []byte) int {
	if len(tok) == 0 || !(tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9') {
		return -1
	}
	f, err := strconv.ParseFloat(string(tok), 64)
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

func refScanLit(d []byte, i int, lit string) (int, error) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return i, refSyntaxErr("invalid literal", i)
	}
	return i + len(lit), nil
}

func refIsDigit(c byte) bool { return c >= '0' && c <= '9' }

func refScanNumber(d []byte, i int) (int, error) {
	start := i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i++; i < len(d) && refIsDigit(d[i]); i++ {
		}
	default:
		return i, refSyntaxErr("invalid number", start)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !refIsDigit(d[i]) {
			return i, refSyntaxErr("invalid number", start)
		}
		for ; i < len(d) && refIsDigit(d[i]); i++ {
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !refIsDigit(d[i]) {
			return i, refSyntaxErr("invalid number", start)
		}
		for ; i < len(d) && refIsDigit(d[i]); i++ {
		}
	}
	return i, nil
}

// refScanString validates the string at d[i] == '"' and returns the offset
// past its closing quote and whether it holds escapes.
func refScanString(d []byte, i int) (int, bool, error) {
	start := i
	escaped := false
	for i++; i < len(d); {
		switch c := d[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return i, escaped, refSyntaxErr("unterminated string", start)
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					return i, escaped, refSyntaxErr("unterminated string", start)
				}
				for _, h := range d[i+2 : i+6] {
					if !(refIsDigit(h) || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, escaped, refSyntaxErr("invalid \\u escape", i)
					}
				}
				i += 6
			default:
				return i, escaped, refSyntaxErr("invalid escape", i)
			}
		case c < 0x20:
			return i, escaped, refSyntaxErr("control character in string", i)
		default:
			i++
		}
	}
	return i, escaped, refSyntaxErr("unterminated string", start)
}

// skip skips one value.
func (r *mpReader) refSkip(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch {
	case isStrCode(c) || isBinCode(c):
		_, err = r.bytesValue()
		return err
	case isExtCode(c):
		_, n, err := r.dec.DecodeExtHeader()
		if err != nil {
			return errTruncated
		}
		_, err = r.take(n)
		return err
	case isArrayCode(c):
		n, err := r.dec.DecodeArrayLen()
		if err != nil {
			return errTruncated
		}
		for i := 0; i < n; i++ {
			if err := r.refSkip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case isMapCode(c):
		n, err := r.dec.DecodeMapLen()
		if err != nil {
			return errTruncated
		}
		for i := 0; i < 2*n; i++ {
			if err := r.refSkip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case c == msgpcode.Nil || c == msgpcode.True || c == msgpcode.False:
		_, err := r.take(1)
		return err
	case isIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
		_, err := r.number(c)
		return err
	}
	return fmt.Errorf("redis: msgpack: invalid code 0x%02x", c)
}

// value writes one value; it writes nothing and reports true for
// undefined, which the caller writes as null in arrays and omits in maps.
func (w *jsonWriter) refValue(depth int) (undefined bool, err error) {
	r := w.r
	c, err := r.peek()
	if err != nil {
		return false, err
	}
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
		if depth >= maxDepth {
			return false, errTooDeep
		}
		n, err := r.dec.DecodeArrayLen()
		if err != nil {
			return false, errTruncated
		}
		w.out = append(w.out, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				w.out = append(w.out, ',')
			}
			undef, err := w.refValue(depth + 1)
			if err != nil {
				return false, err
			}
			if undef {
				w.out = append(w.out, "null"...)
			}
		}
		w.out = append(w.out, ']')
	case isMapCode(c):
		if depth >= maxDepth {
			return false, errTooDeep
		}
		n, err := r.dec.DecodeMapLen()
		if err != nil {
			return false, errTruncated
		}
		w.out = append(w.out, '{')
		first := true
		for i := 0; i < n; i++ {
			mark := len(w.out)
			if !first {
				w.out = append(w.out, ',')
			}
			if err := w.refKey(depth + 1); err != nil {
				return false, err
			}
			w.out = append(w.out, ':')
			undef, err := w.refValue(depth + 1)
			if err != nil {
				return false, err
			}
			if undef { // JSON.stringify omits undefined members
				w.out = w.out[:mark]
				continue
			}
			first = false
		}
		w.out = append(w.out, '}')
	case isExtCode(c):
		e, err := r.extValue(c)
		if err != nil {
			return false, err
		}
		switch e.kind {
		case extUndefined:
			return true, nil
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
	return false, nil
}

// key writes a map key as the JSON string of the JavaScript property name
// notepack.io gives it: strings as they are, anything else converted the
// way JavaScript converts a value to a property key.
func (w *jsonWriter) refKey(depth int) error {
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
	if err := w.r.refKeyString(&sb, depth); err != nil {
		return err
	}
	w.out = appendJSStringText(w.out, sb.String())
	return nil
}

// keyString writes String(value) of the next value: how JavaScript turns a
// decoded non-string key into a property name.
func (r *mpReader) refKeyString(sb *strings.Builder, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
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
	case isArrayCode(c): // Array#toString: elements joined by ",", null and undefined as ""
		n, err := r.dec.DecodeArrayLen()
		if err != nil {
			return errTruncated
		}
		for i := 0; i < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			c, err := r.peek()
			if err != nil {
				return err
			}
			if c == msgpcode.Nil {
				_, _ = r.take(1)
				continue
			}
			if c == msgpcode.FixExt1 {
				mark := sb.Len()
				if err := r.refKeyString(sb, depth+1); err != nil {
					return err
				}
				if s := sb.String(); s[mark:] == "undefined" {
					tmp := s[:mark]
					sb.Reset()
					sb.WriteString(tmp)
				}
				continue
			}
			if err := r.refKeyString(sb, depth+1); err != nil {
				return err
			}
		}
	case isMapCode(c):
		if err := r.refSkip(depth); err != nil {
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
