package jsonscan

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// SyntaxError is a JSON syntax error at a byte offset. Its messages are
// encoding/json's, so that errors read the same whichever validated the
// text.
type SyntaxError struct {
	Msg    string
	Offset int
}

func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

func errAt(msg string, off int) error { return &SyntaxError{Msg: msg, Offset: off} }

func errEOF(off int) error { return errAt("unexpected end of JSON input", off) }

// QuoteChar formats a byte for an error message the way encoding/json does.
func QuoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	if c >= 0x80 {
		const hex = "0123456789abcdef"
		return `'\x` + string([]byte{hex[c>>4], hex[c&0xf]}) + "'"
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// IsSpace reports whether c is JSON whitespace.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return c >= '0' && c <= '9' }

// SkipSpace returns the offset of the first byte at or after b[i] that is
// not JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	return i
}

// ScanString validates the string token starting at d[i] == '"' and returns
// the offset just past its closing quote and whether it contains escapes.
// Bytes of 0x80 and above pass unchecked: JSON text may carry invalid UTF-8,
// and each consumer replaces it as Node would when it decodes the string.
func ScanString(d []byte, i int) (end int, escaped bool, err error) {
	for i++; i < len(d); {
		c := d[i]
		if plainStringByte[c] {
			i++
			// Past the first bytes (a short string is done by then),
			// eight at a time, up to the first that is not plain.
			if i&7 == 0 {
				for i+8 <= len(d) {
					n := plainPrefix(binary.LittleEndian.Uint64(d[i:]))
					i += n
					if n < 8 {
						break
					}
				}
			}
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
						return k, escaped, errAt("invalid character "+QuoteChar(d[k])+" in \\u hexadecimal character escape", k)
					}
				}
				i += 6
			default:
				return i + 1, escaped, errAt("invalid character "+QuoteChar(d[i+1])+" in string escape code", i+1)
			}
		default:
			return i, escaped, errAt("invalid character "+QuoteChar(c)+" in string literal", i)
		}
	}
	return i, escaped, errEOF(i)
}

// plainStringByte marks the bytes a JSON string may hold unescaped, apart
// from the closing quote and the backslash: a table lookup is what keeps
// the loop over long strings fast.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainPrefix returns how many of the eight bytes of x (little-endian: the
// first in the low byte) are plain string bytes (plainStringByte) before
// the first that is not: below 0x20, a quote or a backslash. Bytes of 0x80
// and above are plain. A borrow in the subtractions only flags bytes above
// one that is flagged already, so the lowest flagged byte is exact.
func plainPrefix(x uint64) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	control := (x - 0x20*ones) &^ x
	quote := x ^ '"'*ones
	backslash := x ^ '\\'*ones
	special := (control | (quote-ones)&^quote | (backslash-ones)&^backslash) & highs
	return bits.TrailingZeros64(special) / 8
}

func isHex(c byte) bool {
	return IsDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hexVal is the value of four hex digits that ScanString accepted.
func hexVal(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// Unquote appends the text of quoted, a JSON string token that ScanString
// accepted, to dst as UTF-8. Lone surrogates and invalid UTF-8 bytes become
// U+FFFD, as they do in encoding/json and, for the transcoder that writes
// msgpack for Node peers, as Node's UTF-8 encoder writes them. An error is
// only possible for a token that ScanString would reject.
func Unquote(dst, quoted []byte) ([]byte, error) {
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
			return dst, errAt("truncated escape", len(quoted)-1)
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
				return dst, errAt("truncated escape", len(quoted)-1)
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

// ScanNumber validates the number token starting at d[i] and returns the
// offset just past it.
func ScanNumber(d []byte, i int) (int, error) {
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
		for i++; i < len(d) && IsDigit(d[i]); i++ {
		}
	default:
		return i, errAt("invalid character "+QuoteChar(c)+" in numeric literal", i)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return i, errEOF(i)
		}
		if !IsDigit(d[i]) {
			return i, errAt("invalid character "+QuoteChar(d[i])+" after decimal point in numeric literal", i)
		}
		for i++; i < len(d) && IsDigit(d[i]); i++ {
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
		if !IsDigit(d[i]) {
			return i, errAt("invalid character "+QuoteChar(d[i])+" in exponent of numeric literal", i)
		}
		for i++; i < len(d) && IsDigit(d[i]); i++ {
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
			return i + k, errAt("invalid character "+QuoteChar(d[i+k])+" in literal "+lit+" (expecting "+QuoteChar(lit[k])+")", i+k)
		}
	}
	return i + len(lit), nil
}

// scanScalar validates the string, literal or number at d[i] and returns
// the offset just past it.
func scanScalar(d []byte, i int) (int, error) {
	var err error
	switch c := d[i]; c {
	case '"':
		i, _, err = ScanString(d, i)
	case 't':
		i, err = scanLiteral(d, i, "true")
	case 'f':
		i, err = scanLiteral(d, i, "false")
	case 'n':
		i, err = scanLiteral(d, i, "null")
	default:
		if c != '-' && !IsDigit(c) {
			return i, errAt("invalid character "+QuoteChar(c)+" looking for beginning of value", i)
		}
		i, err = ScanNumber(d, i)
	}
	return i, err
}
