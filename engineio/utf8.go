package engineio

import "unicode/utf8"

// Text that is not valid UTF-8 is never relayed. A WebSocket text frame
// that is not valid UTF-8 closes the connection with close code 1007, as
// Node's ws does ("invalid UTF-8 sequence"); a polling body is decoded as
// Node decodes it, Buffer.toString("utf8"), which replaces every invalid
// byte sequence; and NewMessage does the same to the text it is given, so
// that whatever the layer above builds, one client's bytes cannot reach
// another client as invalid text (which a browser's WebSocket would answer
// by failing the whole connection).

// replacementChar is U+FFFD in UTF-8.
const replacementChar = "\uFFFD"

// toValidUTF8 returns b if it is valid UTF-8, without allocating. Otherwise
// it returns a new slice in which each maximal subpart of an ill-formed
// sequence is replaced by one U+FFFD: the WHATWG UTF-8 decoder's rule,
// which V8 (and so Node's Buffer.toString) follows.
//
// It differs from utf8.DecodeRune and bytes.ToValidUTF8: a truncated
// sequence such as "\xe2\x82" is one U+FFFD (DecodeRune gives two), and an
// encoded surrogate "\xed\xa0\x80" is three (ToValidUTF8 merges adjacent
// errors into one).
func toValidUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/2)
	start := 0 // first byte of the current run of valid bytes
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		n := sequenceLen(b[i:])
		if n > 0 {
			i += n
			continue
		}
		out = append(out, b[start:i]...)
		out = append(out, replacementChar...)
		i += -n
		start = i
	}
	return append(out, b[start:]...)
}

// sequenceLen looks at the non-ASCII sequence at the start of b. If it is a
// well-formed UTF-8 sequence, it returns its length n > 0; otherwise it
// returns -k, where k ≥ 1 is the length of its maximal subpart: the bytes
// the WHATWG decoder consumes before it emits U+FFFD (the lead byte and the
// continuation bytes that were still acceptable).
func sequenceLen(b []byte) int {
	need := 0
	lo, hi := byte(0x80), byte(0xBF) // bounds of the next continuation byte
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0 // no overlong forms
		} else if c == 0xED {
			hi = 0x9F // no surrogates
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90 // no overlong forms
		} else if c == 0xF4 {
			hi = 0x8F // nothing above U+10FFFF
		}
	default:
		return -1 // a continuation byte, or a byte never used in UTF-8
	}
	i := 1
	for ; i <= need; i++ {
		if i >= len(b) || b[i] < lo || b[i] > hi {
			return -i
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}
