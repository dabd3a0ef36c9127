package cluster

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
func (r *Reader) refToJSON(dst []byte, atts [][]byte, mode BinaryMode) ([]byte, [][]byte, error) {
	w := JSONWriter{R: r, mode: mode, Out: dst, Atts: atts}
	undef, err := w.refValue(0)
	if err == nil && undef {
		w.Out = append(w.Out, "null"...)
	}
	return w.Out, w.Atts, err
}

// refTranscoder is the recursive JSON → msgpack transcoder, with the
// scanning helpers it had before jsonscan, so that it is an independent
// reference. It writes through w.
type refTranscoder struct {
	w    *Writer
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
func (w *Writer) refJSON(src []byte, atts [][]byte) error {
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
		return ErrPlaceholder
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
		if depth >= MaxDepth {
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
			w.StrBytes(d[i+1 : end-1])
		} else {
			var err error
			w.Tmp, err = Unquote(w.Tmp[:0], d[i:end])
			if err != nil {
				return end, err
			}
			w.StrBytes(w.Tmp)
		}
		return end, nil
	case c == '{' || c == '[':
		ct := t.cs[t.k]
		t.k++
		if ct.ph >= 0 {
			w.Bin(t.atts[ct.ph])
			t.k = ct.next
			return ct.end, nil
		}
		if c == '[' {
			w.ArrayLen(ct.count)
		} else {
			w.MapLen(ct.count)
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
		w.Boolean(true)
		return i + 4, nil
	case c == 'f':
		w.Boolean(false)
		return i + 5, nil
	case c == 'n':
		w.Null()
		return i + 4, nil
	default:
		end, _ := refScanNumber(d, i)
		f, err := strconv.ParseFloat(UnsafeString(d[i:end]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return end, err
		}
		w.Number(f) // out of range: ±Infinity or 0, as Number() gives
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
		s, err := Unquote(nil, quoted)
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
func (r *Reader) refSkip(depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	c, err := r.Peek()
	if err != nil {
		return err
	}
	switch {
	case IsStrCode(c) || IsBinCode(c):
		_, err = r.BytesValue()
		return err
	case IsExtCode(c):
		_, n, err := r.Dec.DecodeExtHeader()
		if err != nil {
			return ErrTruncated
		}
		_, err = r.Take(n)
		return err
	case IsArrayCode(c):
		n, err := r.Dec.DecodeArrayLen()
		if err != nil {
			return ErrTruncated
		}
		for i := 0; i < n; i++ {
			if err := r.refSkip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case IsMapCode(c):
		n, err := r.Dec.DecodeMapLen()
		if err != nil {
			return ErrTruncated
		}
		for i := 0; i < 2*n; i++ {
			if err := r.refSkip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case c == msgpcode.Nil || c == msgpcode.True || c == msgpcode.False:
		_, err := r.Take(1)
		return err
	case IsIntCode(c) || c == msgpcode.Float || c == msgpcode.Double:
		_, err := r.Number(c)
		return err
	}
	return fmt.Errorf("redis: msgpack: invalid code 0x%02x", c)
}

// value writes one value; it writes nothing and reports true for
// undefined, which the caller writes as null in arrays and omits in maps.
func (w *JSONWriter) refValue(depth int) (undefined bool, err error) {
	r := w.R
	c, err := r.Peek()
	if err != nil {
		return false, err
	}
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
		if depth >= MaxDepth {
			return false, ErrTooDeep
		}
		n, err := r.Dec.DecodeArrayLen()
		if err != nil {
			return false, ErrTruncated
		}
		w.Out = append(w.Out, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				w.Out = append(w.Out, ',')
			}
			undef, err := w.refValue(depth + 1)
			if err != nil {
				return false, err
			}
			if undef {
				w.Out = append(w.Out, "null"...)
			}
		}
		w.Out = append(w.Out, ']')
	case IsMapCode(c):
		if depth >= MaxDepth {
			return false, ErrTooDeep
		}
		n, err := r.Dec.DecodeMapLen()
		if err != nil {
			return false, ErrTruncated
		}
		w.Out = append(w.Out, '{')
		first := true
		for i := 0; i < n; i++ {
			mark := len(w.Out)
			if !first {
				w.Out = append(w.Out, ',')
			}
			if err := w.refKey(depth + 1); err != nil {
				return false, err
			}
			w.Out = append(w.Out, ':')
			undef, err := w.refValue(depth + 1)
			if err != nil {
				return false, err
			}
			if undef { // JSON.stringify omits undefined members
				w.Out = w.Out[:mark]
				continue
			}
			first = false
		}
		w.Out = append(w.Out, '}')
	case IsExtCode(c):
		e, err := r.ExtValue(c)
		if err != nil {
			return false, err
		}
		switch e.Kind {
		case ExtUndefined:
			return true, nil
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
	return false, nil
}

// key writes a map key as the JSON string of the JavaScript property name
// notepack.io gives it: strings as they are, anything else converted the
// way JavaScript converts a value to a property key.
func (w *JSONWriter) refKey(depth int) error {
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
	if err := w.R.refKeyString(&sb, depth); err != nil {
		return err
	}
	w.Out = AppendJSStringText(w.Out, sb.String())
	return nil
}

// keyString writes String(value) of the next value: how JavaScript turns a
// decoded non-string key into a property name.
func (r *Reader) refKeyString(sb *strings.Builder, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	c, err := r.Peek()
	if err != nil {
		return err
	}
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
	case IsArrayCode(c): // Array#toString: elements joined by ",", null and undefined as ""
		n, err := r.Dec.DecodeArrayLen()
		if err != nil {
			return ErrTruncated
		}
		for i := 0; i < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			c, err := r.Peek()
			if err != nil {
				return err
			}
			if c == msgpcode.Nil {
				_, _ = r.Take(1)
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
	case IsMapCode(c):
		if err := r.refSkip(depth); err != nil {
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
