package parser

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by Decode, Decoder.Add, SplitArray and
// NewRawArgs matches ErrInvalidPacket with errors.Is; some also match one of
// the more specific sentinels.
var (
	// ErrInvalidPacket reports a malformed or invalid packet or payload.
	ErrInvalidPacket = errors.New("parser: invalid packet")
	// ErrTooManyAttachments reports a binary packet announcing more
	// attachments than the configured maximum.
	ErrTooManyAttachments = errors.New("parser: too many attachments")
	// ErrUnexpectedBinary reports a binary message that arrived while the
	// decoder was not waiting for attachments.
	ErrUnexpectedBinary = errors.New("parser: unexpected binary message")
)

// packetError is a decoding error. It matches ErrInvalidPacket and, when set,
// kind; Unwrap exposes the underlying JSON syntax error, if any.
type packetError struct {
	kind error // nil, ErrTooManyAttachments or ErrUnexpectedBinary
	msg  string
	err  error
}

func (e *packetError) Error() string {
	prefix := ErrInvalidPacket.Error()
	if e.kind != nil {
		prefix = e.kind.Error()
	}
	if e.err != nil {
		return prefix + ": " + e.msg + ": " + e.err.Error()
	}
	return prefix + ": " + e.msg
}

func (e *packetError) Is(target error) bool {
	return target == ErrInvalidPacket || (e.kind != nil && target == e.kind)
}

func (e *packetError) Unwrap() error { return e.err }

func invalid(msg string) error { return &packetError{msg: msg} }

func invalidJSON(msg string, err error) error { return &packetError{msg: msg, err: err} }

// syntaxError is a JSON syntax error at a byte offset.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return e.msg + " at offset " + strconv.Itoa(e.off)
}

func errAt(msg string, off int) error { return &syntaxError{msg: msg, off: off} }

func errEOF(off int) error { return errAt("unexpected end of JSON input", off) }

// quoteChar formats a byte for an error message the way encoding/json does.
func quoteChar(c byte) string {
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
