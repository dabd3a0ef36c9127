package parser

import "errors"

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
