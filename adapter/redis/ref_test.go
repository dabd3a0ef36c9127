package redis

// The recursive transcoders that the iterative ones replaced, kept as the
// reference FuzzTranscodeParity compares them with: same bytes, same errors.

import (
	"errors"
	"fmt"
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

// json transcodes one JSON value, whose binary placeholders refer to atts
// (placeholders mean nothing when atts is empty, as in the parser).
func (w *mpWriter) refJSON(src []byte, atts [][]byte) error {
	w.src, w.atts, w.cs, w.k = src, atts, w.cs[:0], 0
	i := skipWS(src, 0)
	end, err := w.refScan(i, 0)
	if err != nil {
		return err
	}
	if skipWS(src, end) != len(src) {
		return fmt.Errorf("redis: JSON: invalid character after top-level value at offset %d", end)
	}
	_, err = w.refWrite(i)
	return err
}

// scan is the first pass over the value at src[i]: it validates it and
// records its containers; it returns the offset just past the value.
func (w *mpWriter) refScan(i, depth int) (int, error) {
	d := w.src
	if i >= len(d) {
		return i, syntaxErr("unexpected end", i)
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := scanJSString(d, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, syntaxErr("nesting too deep", i)
		}
		idx := len(w.cs)
		w.cs = append(w.cs, jsContainer{ph: -1})
		isObj := c == '{'
		closer := byte(']')
		if isObj {
			closer = '}'
		}
		isPH, num := false, -1
		i = skipWS(d, i+1)
		count := 0
		if i < len(d) && d[i] == closer {
			i++
		} else {
			for {
				var name string
				if isObj {
					if i >= len(d) || d[i] != '"' {
						return i, syntaxErr("object key expected", i)
					}
					keyEnd, escaped, err := scanJSString(d, i)
					if err != nil {
						return i, err
					}
					name = placeholderKey(d[i:keyEnd], escaped)
					i = skipWS(d, keyEnd)
					if i >= len(d) || d[i] != ':' {
						return i, syntaxErr("':' expected", i)
					}
					i = skipWS(d, i+1)
				}
				start := i
				end, err := w.refScan(i, depth+1)
				if err != nil {
					return end, err
				}
				switch name { // later duplicates win, as with JSON.parse
				case "_placeholder":
					isPH = string(d[start:end]) == "true"
				case "num":
					num = placeholderIndex(d[start:end])
				}
				count++
				i = skipWS(d, end)
				if i >= len(d) {
					return i, syntaxErr("unexpected end", i)
				}
				if d[i] == ',' {
					i = skipWS(d, i+1)
					continue
				}
				if d[i] != closer {
					return i, syntaxErr("',' or closing bracket expected", i)
				}
				i++
				break
			}
		}
		ph := -1
		if isObj && isPH && len(w.atts) > 0 {
			if num < 0 || num >= len(w.atts) {
				return i, errPlaceholder
			}
			ph = num
		}
		w.cs[idx] = jsContainer{count: count, end: i, next: len(w.cs), ph: ph}
		return i, nil
	case c == 't':
		return scanLit(d, i, "true")
	case c == 'f':
		return scanLit(d, i, "false")
	case c == 'n':
		return scanLit(d, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return scanJSNumber(d, i)
	}
	return i, syntaxErr("invalid character "+strconv.QuoteRune(rune(d[i])), i)
}

// write is the second pass: it writes the value at src[i], which scan
// validated, and returns the offset past it.
func (w *mpWriter) refWrite(i int) (int, error) {
	d := w.src
	i = skipWS(d, i)
	switch c := d[i]; {
	case c == '"':
		end, escaped, _ := scanJSString(d, i)
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
		ct := w.cs[w.k]
		w.k++
		if ct.ph >= 0 {
			w.bin(w.atts[ct.ph])
			w.k = ct.next
			return ct.end, nil
		}
		if c == '[' {
			w.arrayLen(ct.count)
		} else {
			w.mapLen(ct.count)
		}
		i = skipWS(d, i+1)
		for n := 0; n < ct.count; n++ {
			var err error
			if c == '{' {
				if i, err = w.refWrite(i); err != nil { // the key
					return i, err
				}
				i = skipWS(d, i) + 1 // ':'
			}
			if i, err = w.refWrite(i); err != nil {
				return i, err
			}
			i = skipWS(d, i) + 1 // ',' or the closing bracket
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
		end, _ := scanJSNumber(d, i)
		f, err := strconv.ParseFloat(unsafeString(d[i:end]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return end, err
		}
		w.number(f) // out of range: ±Infinity or 0, as Number() gives
		return end, nil
	}
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
