package parser

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// maxNesting bounds the nesting depth of arrays and objects, like
// encoding/json does, so that hostile input cannot exhaust the stack.
const maxNesting = 10000

// placeholder is the span of a {"_placeholder":true,...} object in a JSON
// text and the attachment index it names (-1 when num is missing or is not a
// non-negative integer).
type placeholder struct {
	start, end int
	num        int
}

// scanner is a single-pass JSON validator. With collect set it also records,
// in document order, every object whose own "_placeholder" member is true;
// placeholders nested inside such an object are dropped, as the reference
// implementation replaces the whole object without looking inside it.
type scanner struct {
	data    []byte
	depth   int
	collect bool
	refs    []placeholder
	nsp     string // Decoder only: the last namespace seen, reused to save an allocation
	// recurseTo, when not zero, replaces recursionLimit (tests compare the
	// recursive and the iterative walks with it).
	recurseTo int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// whole validates that data holds exactly one JSON value, optionally
// surrounded by whitespace, and returns the bounds of that value.
func (s *scanner) whole(data []byte) (start, end int, err error) {
	s.data = data
	s.depth = 0
	start = skipSpace(data, 0)
	end, err = s.value(start)
	if err != nil {
		return start, end, err
	}
	if j := skipSpace(data, end); j != len(data) {
		return start, end, errAt("invalid character "+quoteChar(data[j])+" after top-level value", j)
	}
	return start, end, nil
}

// recursionLimit is the nesting depth up to which the scanner recurses. A
// recursive descent is the fastest walk for the shallow values that make up
// nearly all traffic (an iterative walk of every value cost DecodeEvent
// 10%), but it holds about 200 bytes of goroutine stack per level: 16
// levels stay within a goroutine's first 8 KiB. Deeper levels are walked by
// deep, whose stacks are data.
const recursionLimit = 16

// value validates the JSON value starting at data[i] (which must not be
// whitespace) and returns the offset just past it. It recurses through
// array and object while the depth is under recursionLimit, and hands deeper
// containers to deep.
func (s *scanner) value(i int) (int, error) {
	d := s.data
	if i >= len(d) {
		return i, errEOF(i)
	}
	switch d[i] {
	case '{':
		if s.deeper() {
			return s.deep(i)
		}
		return s.object(i)
	case '[':
		if s.deeper() {
			return s.deep(i)
		}
		return s.array(i)
	}
	return scanScalar(d, i)
}

// deeper reports whether a container opening at the current depth is
// walked by deep.
func (s *scanner) deeper() bool {
	if s.recurseTo != 0 {
		return s.depth >= s.recurseTo
	}
	return s.depth >= recursionLimit
}

func (s *scanner) array(i int) (int, error) {
	if s.depth++; s.depth > maxNesting {
		return i, errAt("exceeded max nesting depth", i)
	}
	d := s.data
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		s.depth--
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(i); err != nil {
			return i, err
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return i, errEOF(i)
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case ']':
			s.depth--
			return i + 1, nil
		default:
			return i, errAt("invalid character "+quoteChar(d[i])+" after array element", i)
		}
	}
}

func (s *scanner) object(i int) (int, error) {
	if s.depth++; s.depth > maxNesting {
		return i, errAt("exceeded max nesting depth", i)
	}
	d := s.data
	start := i
	mark := len(s.refs)
	isPlaceholder, num := false, -1
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		s.depth--
		return i + 1, nil
	}
	for {
		if i >= len(d) {
			return i, errEOF(i)
		}
		if d[i] != '"' {
			return i, errAt("invalid character "+quoteChar(d[i])+" looking for beginning of object key string", i)
		}
		keyStart := i
		keyEnd, escaped, err := scanString(d, i)
		if err != nil {
			return keyEnd, err
		}
		i = skipSpace(d, keyEnd)
		if i >= len(d) {
			return i, errEOF(i)
		}
		if d[i] != ':' {
			return i, errAt("invalid character "+quoteChar(d[i])+" after object key", i)
		}
		i = skipSpace(d, i+1)
		valStart := i
		if i, err = s.value(i); err != nil {
			return i, err
		}
		if s.collect {
			// Later duplicates win, as with JSON.parse.
			switch keyName(d[keyStart:keyEnd], escaped) {
			case "_placeholder":
				isPlaceholder = string(d[valStart:i]) == "true"
			case "num":
				num = placeholderNum(d[valStart:i])
			}
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return i, errEOF(i)
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			s.depth--
			i++
			if isPlaceholder {
				s.refs = append(s.refs[:mark], placeholder{start: start, end: i, num: num})
			}
			return i, nil
		default:
			return i, errAt("invalid character "+quoteChar(d[i])+" after object key:value pair", i)
		}
	}
}

// deep validates the value at data[i] like value, without recursion.
//
// Nesting is client input, and a recursive descent all the way down held
// about 200 bytes of goroutine stack per level, 2 to 4 MiB for an event of
// 20 kB nested 10,000 deep, which stays with the goroutine until the next
// collection. What an open container needs is kept here in two explicit
// stacks instead: one bit per level (object or array), and, when
// collecting, one objFrame per open object. Both start in small arrays on
// this frame and grow on the heap, in proportion to the input.
func (s *scanner) deep(i int) (int, error) {
	d := s.data
	var (
		kindBuf [4]uint64
		kinds   = kindBuf[:0] // bit n&63 of kinds[n>>6]: level n is an object
		n       int           // open containers
		objBuf  [4]objFrame
		objs    = objBuf[:0] // collect only: the open objects
		key     memberKey    // collect only: the key of the member value at i
	)
	for {
		// A value starts at d[i].
		if i >= len(d) {
			return i, errEOF(i)
		}
		c := d[i]
		if c == '{' || c == '[' {
			if s.depth++; s.depth > maxNesting {
				return i, errAt("exceeded max nesting depth", i)
			}
			if key != keyOther {
				// A container is neither true nor a number.
				objs[len(objs)-1].member(key, d[i:i+1])
				key = keyOther
			}
			start := i
			i = skipSpace(d, i+1)
			if c == '[' {
				if i < len(d) && d[i] == ']' {
					s.depth--
					i++
				} else {
					kinds = pushKind(kinds, n, false)
					n++
					continue
				}
			} else {
				if i < len(d) && d[i] == '}' {
					s.depth--
					i++
				} else {
					kinds = pushKind(kinds, n, true)
					n++
					if s.collect {
						objs = append(objs, objFrame{start: start, mark: len(s.refs), num: -1})
					}
					var err error
					if i, key, err = s.memberKey(i); err != nil {
						return i, err
					}
					continue
				}
			}
		} else {
			start := i
			var err error
			if i, err = scanScalar(d, i); err != nil {
				return i, err
			}
			if key != keyOther {
				objs[len(objs)-1].member(key, d[start:i])
				key = keyOther
			}
		}

		// A value ended at d[i]: close the containers it completes.
		for {
			if n == 0 {
				return i, nil
			}
			isObj := kinds[(n-1)>>6]&(1<<((n-1)&63)) != 0
			i = skipSpace(d, i)
			if i >= len(d) {
				return i, errEOF(i)
			}
			if d[i] == ',' {
				i = skipSpace(d, i+1)
				if isObj {
					var err error
					if i, key, err = s.memberKey(i); err != nil {
						return i, err
					}
				}
				break
			}
			if !isObj {
				if d[i] != ']' {
					return i, errAt("invalid character "+quoteChar(d[i])+" after array element", i)
				}
				n--
				s.depth--
				i++
				continue
			}
			if d[i] != '}' {
				return i, errAt("invalid character "+quoteChar(d[i])+" after object key:value pair", i)
			}
			n--
			s.depth--
			i++
			if s.collect {
				f := objs[len(objs)-1]
				objs = objs[:len(objs)-1]
				if f.isPlaceholder {
					s.refs = append(s.refs[:f.mark], placeholder{start: f.start, end: i, num: f.num})
				}
			}
		}
	}
}

// scanScalar validates the string, literal or number at d[i] and returns
// the offset just past it.
func scanScalar(d []byte, i int) (int, error) {
	var err error
	switch c := d[i]; c {
	case '"':
		i, _, err = scanString(d, i)
	case 't':
		i, err = scanLiteral(d, i, "true")
	case 'f':
		i, err = scanLiteral(d, i, "false")
	case 'n':
		i, err = scanLiteral(d, i, "null")
	default:
		if c != '-' && !isDigit(c) {
			return i, errAt("invalid character "+quoteChar(c)+" looking for beginning of value", i)
		}
		i, err = scanNumber(d, i)
	}
	return i, err
}

// pushKind records in the bit stack kinds whether level n is an object.
func pushKind(kinds []uint64, n int, obj bool) []uint64 {
	if n>>6 == len(kinds) {
		kinds = append(kinds, 0)
	}
	if bit := uint64(1) << (n & 63); obj {
		kinds[n>>6] |= bit
	} else {
		kinds[n>>6] &^= bit
	}
	return kinds
}

// objFrame is what the scanner knows of an open object when it collects
// placeholders.
type objFrame struct {
	start, mark   int // offset of the '{'; len(refs) when it opened
	num           int
	isPlaceholder bool
}

// memberKey says which member of an object a value is, where it matters to
// placeholders.
type memberKey uint8

const (
	keyOther memberKey = iota
	keyPlaceholder
	keyNum
)

// member records in f the value tok of its member named by key. A container
// value only needs its first byte: it is neither true nor a number.
func (f *objFrame) member(key memberKey, tok []byte) {
	// Later duplicates win, as with JSON.parse.
	if key == keyPlaceholder {
		f.isPlaceholder = string(tok) == "true"
	} else {
		f.num = placeholderNum(tok)
	}
}

// memberKey scans an object key and its colon at d[i] and returns the offset
// of the member value and, when collecting, which key it is.
func (s *scanner) memberKey(i int) (int, memberKey, error) {
	d := s.data
	if i >= len(d) {
		return i, keyOther, errEOF(i)
	}
	if d[i] != '"' {
		return i, keyOther, errAt("invalid character "+quoteChar(d[i])+" looking for beginning of object key string", i)
	}
	keyStart := i
	keyEnd, escaped, err := scanString(d, i)
	if err != nil {
		return keyEnd, keyOther, err
	}
	i = skipSpace(d, keyEnd)
	if i >= len(d) {
		return i, keyOther, errEOF(i)
	}
	if d[i] != ':' {
		return i, keyOther, errAt("invalid character "+quoteChar(d[i])+" after object key", i)
	}
	key := keyOther
	if s.collect {
		switch keyName(d[keyStart:keyEnd], escaped) {
		case "_placeholder":
			key = keyPlaceholder
		case "num":
			key = keyNum
		}
	}
	return skipSpace(d, i+1), key, nil
}

// keyName returns the object key in quoted (a complete JSON string token)
// when it may be "_placeholder" or "num", and "" otherwise.
func keyName(quoted []byte, escaped bool) string {
	if !escaped {
		switch string(quoted) {
		case `"_placeholder"`:
			return "_placeholder"
		case `"num"`:
			return "num"
		}
		return ""
	}
	var k string
	if json.Unmarshal(quoted, &k) != nil {
		return ""
	}
	return k
}

// placeholderNum converts the JSON value tok of a "num" member to an
// attachment index: -1 unless it is a number with a non-negative integral
// value (JSON.parse would accept 1.0 or 1e0 as index 1). Huge values are
// clamped so that they fail the range check.
func placeholderNum(tok []byte) int {
	const huge = 1 << 30
	if len(tok) == 0 || !(tok[0] == '-' || isDigit(tok[0])) {
		return -1
	}
	n, simple := 0, true
	for _, c := range tok {
		if !isDigit(c) {
			simple = false
			break
		}
		if n < huge {
			n = n*10 + int(c-'0')
		}
	}
	if simple {
		return min(n, huge)
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return -1 // not a number at all; out-of-range values keep ParseFloat's ±Inf or 0
	}
	switch {
	case !(f >= 0): // negative or NaN
		return -1
	case f >= huge:
		return huge
	case f != math.Trunc(f):
		return -1
	}
	return int(f)
}

// scanString validates the string token starting at d[i] == '"' and returns
// the offset just past its closing quote and whether it contains escapes.
func scanString(d []byte, i int) (int, bool, error) {
	escaped := false
	for i++; i < len(d); {
		c := d[i]
		if plainStringByte[c] {
			i++
			continue
		}
		switch c {
		case '"':
			return i + 1, escaped, nil
		case '\\':
			escaped = true
			if i+1 >= len(d) {
				return i + 1, escaped, errEOF(i + 1)
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(d) {
						return k, escaped, errEOF(k)
					}
					if !isHex(d[k]) {
						return k, escaped, errAt("invalid character "+quoteChar(d[k])+" in \\u hexadecimal character escape", k)
					}
				}
				i += 6
			default:
				return i + 1, escaped, errAt("invalid character "+quoteChar(d[i+1])+" in string escape code", i+1)
			}
		default:
			return i, escaped, errAt("invalid character "+quoteChar(c)+" in string literal", i)
		}
	}
	return i, escaped, errEOF(i)
}

// plainStringByte marks the bytes a JSON string may hold unescaped, apart
// from the closing quote and the backslash.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber validates the number token starting at d[i] and returns the
// offset just past it.
func scanNumber(d []byte, i int) (int, error) {
	if d[i] == '-' {
		i++
	}
	if i >= len(d) {
		return i, errEOF(i)
	}
	switch c := d[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i++; i < len(d) && isDigit(d[i]); i++ {
		}
	default:
		return i, errAt("invalid character "+quoteChar(c)+" in numeric literal", i)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return i, errEOF(i)
		}
		if !isDigit(d[i]) {
			return i, errAt("invalid character "+quoteChar(d[i])+" after decimal point in numeric literal", i)
		}
		for i++; i < len(d) && isDigit(d[i]); i++ {
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return i, errEOF(i)
		}
		if !isDigit(d[i]) {
			return i, errAt("invalid character "+quoteChar(d[i])+" in exponent of numeric literal", i)
		}
		for i++; i < len(d) && isDigit(d[i]); i++ {
		}
	}
	return i, nil
}

func scanLiteral(d []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(d) {
			return i + k, errEOF(i + k)
		}
		if d[i+k] != lit[k] {
			return i + k, errAt("invalid character "+quoteChar(d[i+k])+" in literal "+lit+" (expecting "+quoteChar(lit[k])+")", i+k)
		}
	}
	return i + len(lit), nil
}
