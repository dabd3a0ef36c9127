package jsonscan

import (
	"errors"
	"math"
	"strconv"
)

// MaxNum is what a placeholder's num counts as when it is this large or
// larger: out of range for any packet, yet small enough to print and
// compare on every platform.
const MaxNum = 1 << 30

// Placeholder is a {"_placeholder":true,...} object found in a JSON text.
type Placeholder struct {
	Start, End int // the object's span: offset of its '{' and just past its '}'
	Num        int // the attachment it names, -1 when num is not a valid index
}

// Names reports whether p names one of n attachments.
func (p Placeholder) Names(n int) bool { return p.Num >= 0 && p.Num < n }

// Index is the attachment index a "num" member of value f names: f when it
// is a non-negative integer, MaxNum when that is larger than MaxNum, and -1
// otherwise. The parser applies it to values encoding/json decoded, so
// that a placeholder means the same in a text and in its decoded value.
func Index(f float64) int {
	switch {
	case !(f >= 0), f != math.Trunc(f): // negative, NaN or fractional
		return -1
	case f >= MaxNum:
		return MaxNum
	}
	return int(f)
}

// numIndex is Index for tok, the JSON text of a "num" member's value: -1
// unless it is a number.
func numIndex(tok []byte) int {
	if len(tok) == 0 || !(tok[0] == '-' || IsDigit(tok[0])) {
		return -1
	}
	// Nearly every num is a few plain digits: spare them ParseFloat.
	n, simple := 0, true
	for _, c := range tok {
		if !IsDigit(c) {
			simple = false
			break
		}
		if n < MaxNum {
			n = n*10 + int(c-'0')
		}
	}
	if simple {
		return min(n, MaxNum)
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return -1
	}
	// Out of range, ParseFloat gives ±Inf or 0, as JSON.parse does.
	return Index(f)
}

// memberKey says which member of an object a value is, where it matters to
// placeholders.
type memberKey uint8

const (
	keyOther memberKey = iota
	keyPlaceholder
	keyNum
)

// keyOf classifies the object key quoted, a valid JSON string token that
// holds escapes when escaped is set.
func keyOf(quoted []byte, escaped bool) memberKey {
	if !escaped {
		switch string(quoted) {
		case `"_placeholder"`:
			return keyPlaceholder
		case `"num"`:
			return keyNum
		}
		return keyOther
	}
	// An escaped key matches when its text does, as JSON.parse sees it.
	// Both names are short ASCII, so unescaping stops at the first byte
	// that cannot be part of either: no allocation, and no need to decode
	// surrogates or invalid UTF-8.
	var buf [len("_placeholder")]byte
	n := 0
	s := quoted[1 : len(quoted)-1]
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			if s[i+1] != 'u' {
				return keyOther // \" \\ \/ \b \f \n \r \t: in neither name
			}
			r := hexVal(s[i+2 : i+6])
			if r >= 0x80 {
				return keyOther
			}
			c = byte(r)
			i += 6
		} else {
			i++
		}
		if n == len(buf) {
			return keyOther
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "_placeholder":
		return keyPlaceholder
	case "num":
		return keyNum
	}
	return keyOther
}

// objFrame is what the scanner knows of an open object when it looks for
// placeholders.
type objFrame struct {
	start, mark   int // offset of the '{'; len(Placeholders) when it opened
	num           int
	isPlaceholder bool
}

// member records in f the value tok of its member named by key. A container
// value only needs its first byte: it is neither true nor a number.
func (f *objFrame) member(key memberKey, tok []byte) {
	// Later duplicates win, as with JSON.parse.
	if key == keyPlaceholder {
		f.isPlaceholder = string(tok) == "true"
	} else {
		f.num = numIndex(tok)
	}
}

// closeObject ends the object f at end (just past its '}'): a placeholder
// replaces the placeholders found inside it, which reconstructPacket never
// sees. Out of line, like openContainer, to keep object's frame small.
//
//go:noinline
func (s *Scanner) closeObject(f *objFrame, end int) {
	if f.isPlaceholder {
		s.Placeholders = append(s.Placeholders[:f.mark], Placeholder{Start: f.start, End: end, Num: f.num})
	}
}
