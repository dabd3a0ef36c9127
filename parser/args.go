package parser

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Args are the arguments of an event or an acknowledgement as they arrived:
// JSON values whose binary placeholders point into the packet's
// attachments. Nothing is decoded until asked: Decode fills a Go value, and
// passing an Args element back to an emit or an ack forwards it byte for
// byte (object keys keep the sender's order). The server and the client
// both hand their events' arguments out as Args (server.Args and
// client.Args are this type).
type Args []Raw

// Len returns the number of arguments.
func (a Args) Len() int { return len(a) }

// Decode unmarshals argument i into v, like json.Unmarshal; binary values
// decode into []byte (and into any as []byte). It fails with a
// *DecodeError (errors.Is ErrDecode) saying what did not fit, when argument
// i is missing or has another shape than v.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= len(a) {
		return &DecodeError{Index: i, Reason: fmt.Sprintf("missing (%d arguments)", len(a))}
	}
	return WrapDecodeError(i, v, a[i].Decode(v))
}

// Values decodes every argument into a generic Go value (map[string]any,
// []any, float64, string, bool, nil, []byte).
func (a Args) Values() ([]any, error) {
	out := make([]any, len(a))
	for i, r := range a {
		v, err := r.Value()
		if err != nil {
			return nil, WrapDecodeError(i, &v, err)
		}
		out[i] = v
	}
	return out, nil
}

// Any returns the arguments as a []any of *Raw values pointing into a,
// ready to be forwarded: s.Emit("x", ev.Args.Any()...) re-sends them
// verbatim. (Pointers, so that the slice is the only allocation.)
func (a Args) Any() []any {
	out := make([]any, len(a))
	for i := range a {
		out[i] = &a[i]
	}
	return out
}

// ErrDecode matches every *DecodeError: an argument (or socket data) did
// not decode into the Go value asked for.
var ErrDecode = errors.New("parser: cannot decode argument")

// DecodeError is returned when argument Index (of an event or an
// acknowledgement; -1 for socket data) does not decode into the Go value
// asked for. It matches ErrDecode.
type DecodeError struct {
	Index int
	// Reason says what went wrong, in the terms of the argument:
	// "missing (2 arguments)", "cannot decode JSON string into Go value of
	// type int", ...
	Reason string
	err    error
}

func (e *DecodeError) Error() string {
	if e.Index < 0 {
		return "parser: socket data: " + e.Reason
	}
	return fmt.Sprintf("parser: argument %d: %s", e.Index, e.Reason)
}

// Is reports whether target is ErrDecode.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the decoder's error (a *json.UnmarshalTypeError, say).
func (e *DecodeError) Unwrap() error { return e.err }

// WrapDecodeError describes err, the error of decoding argument i (-1:
// socket data) into v, as a *DecodeError; nil when err is nil.
func WrapDecodeError(i int, v any, err error) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var ie *json.InvalidUnmarshalError
	reason := err.Error()
	switch {
	case errors.As(err, &te):
		reason = "cannot decode JSON " + te.Value + " into Go value of type " + te.Type.String()
		if te.Field != "" {
			reason += " (field " + te.Field + ")"
		}
	case errors.As(err, &ie):
		reason = fmt.Sprintf("cannot decode into %T (want a non-nil pointer)", v)
	default:
		// Errors of the decoder carry their package's prefix: keep what it
		// says about the value only.
		for _, p := range []string{"parser: raw value: ", "json: "} {
			reason = strings.TrimPrefix(reason, p)
		}
	}
	return &DecodeError{Index: i, Reason: reason, err: err}
}
