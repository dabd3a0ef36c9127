package parser

// The recursive walks that the iterative ones replaced, kept as the
// reference the fuzzers compare them with: same offsets, same errors, same
// placeholders.

import "math"

// value validates the JSON value starting at data[i] (which must not be
// whitespace) and returns the offset just past it.
func (s *scanner) refValue(i int) (int, error) {
	d := s.data
	if i >= len(d) {
		return i, errEOF(i)
	}
	switch c := d[i]; c {
	case '"':
		end, _, err := scanString(d, i)
		return end, err
	case '{':
		return s.refObject(i)
	case '[':
		return s.refArray(i)
	case 't':
		return scanLiteral(d, i, "true")
	case 'f':
		return scanLiteral(d, i, "false")
	case 'n':
		return scanLiteral(d, i, "null")
	default:
		if c == '-' || isDigit(c) {
			return scanNumber(d, i)
		}
		return i, errAt("invalid character "+quoteChar(c)+" looking for beginning of value", i)
	}
}

func (s *scanner) refArray(i int) (int, error) {
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
		if i, err = s.refValue(i); err != nil {
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

func (s *scanner) refObject(i int) (int, error) {
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
		if i, err = s.refValue(i); err != nil {
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

// resolvePlaceholders replaces, in a generic JSON value, each object whose
// "_placeholder" member is true by the attachment its "num" member names.
func refResolvePlaceholders(v any, atts [][]byte) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if p, ok := x["_placeholder"].(bool); ok && p {
			f, ok := x["num"].(float64)
			if !ok || !(f >= 0) || f != math.Trunc(f) {
				return nil, errBadPlaceholder(-1, len(atts))
			}
			if f >= float64(len(atts)) {
				return nil, errBadPlaceholder(int(min(f, 1<<30)), len(atts))
			}
			return atts[int(f)], nil
		}
		for k, el := range x {
			r, err := refResolvePlaceholders(el, atts)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for i, el := range x {
			r, err := refResolvePlaceholders(el, atts)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}
