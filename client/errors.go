package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/ioswarm/ioswarm/parser"
)

// Errors callers match with errors.Is.
var (
	// ErrClosed is returned by calls on a socket after its Close (or its
	// Manager's), and ends the acknowledgements it was waiting for.
	ErrClosed = errors.New("client: socket closed")
	// ErrDisconnected is returned by calls on a socket that is disconnected
	// for good (the server disconnected it, refused it, or reconnection gave
	// up), and ends the acknowledgements whose event may have been lost
	// with the connection.
	ErrDisconnected = errors.New("client: socket disconnected")
	// ErrTimeout matches every *TimeoutError: an acknowledgement did not
	// come in time.
	ErrTimeout = errors.New("client: timed out waiting for an answer")
	// ErrBufferFull is returned by an emit made while the socket is
	// reconnecting, when the emits already buffered reach
	// Options.MaxBufferedEmits or MaxBufferedBytes, or while connected when
	// the connection's send queue is full (the server does not keep up).
	ErrBufferFull = errors.New("client: send buffer full")
	// ErrReservedEvent matches the error of an emit with a reserved name.
	ErrReservedEvent = errors.New("client: reserved event name")
	// ErrNoAck is returned by Event.Ack when the server asked for no
	// acknowledgement.
	ErrNoAck = errors.New("client: no acknowledgement requested")
	// ErrDecode matches every *DecodeError.
	ErrDecode = parser.ErrDecode
	// ErrInvalidAuth is returned for an Options.Auth (or Manager.Socket
	// auth) that does not encode as a JSON object.
	ErrInvalidAuth = errors.New("client: auth must encode as a JSON object without binary data")
	// ErrNamespaceInUse is returned by Manager.Socket for a namespace that
	// already has an open socket on that manager.
	ErrNamespaceInUse = errors.New("client: namespace already has a socket on this manager")
)

// TimeoutError is the error of a wait for an acknowledgement that ended
// before the answer came. Its text is the JS client's, "operation has timed
// out". It matches ErrTimeout and context.DeadlineExceeded: a deadline of
// the caller's context and a Timeout of the emitter read the same.
type TimeoutError struct{ Message string }

func (e *TimeoutError) Error() string { return e.Message }

// Is reports whether target is ErrTimeout or context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

var errAckTimeout error = &TimeoutError{Message: "operation has timed out"}

// ctxErr is the error of a wait ended by ctx: a deadline reads as a
// timeout (errAckTimeout, which still matches context.DeadlineExceeded).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != context.DeadlineExceeded {
		return err
	}
	return errAckTimeout
}

// ConnectError is the server's refusal of a namespace connection (the
// connect_error of the JS client): Message is the error's text, such as a
// middleware's, and Data the data attached to it, decoded as JSON into a
// generic value (map[string]any, []any, float64, string, bool), nil when
// none came.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return "client: connect error: " + e.Message }

// DecodeError is returned when argument Index (of an event or an
// acknowledgement; -1 for socket data) does not decode into the Go value
// asked for (parser.DecodeError, the same on the server and the client). It
// matches ErrDecode.
type DecodeError = parser.DecodeError

// ReservedEventError is returned by an emit with one of the names the
// protocol reserves. Its text is the JS client's, e.g. `"connect" is a
// reserved event name`.
type ReservedEventError struct{ Name string }

func (e *ReservedEventError) Error() string {
	return fmt.Sprintf("%q is a reserved event name", e.Name)
}

// Is reports whether target is ErrReservedEvent.
func (e *ReservedEventError) Is(target error) bool { return target == ErrReservedEvent }

// checkEmitName refuses the names the JS client refuses to emit.
func checkEmitName(event string) error {
	switch event {
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return &ReservedEventError{Name: event}
	}
	return nil
}

// Disconnection reasons passed to OnDisconnect handlers: the JS client's
// strings.
const (
	// The server disconnected the socket (socket.disconnect() on the
	// server). The socket does not reconnect.
	ReasonIOServerDisconnect = "io server disconnect"
	// The socket was closed by Close. It does not reconnect.
	ReasonIOClientDisconnect = "io client disconnect"
	// The server stopped sending pings in time.
	ReasonPingTimeout = "ping timeout"
	// The connection was closed (by the server or the network).
	ReasonTransportClose = "transport close"
	// The connection failed.
	ReasonTransportError = "transport error"
	// The server sent a packet that does not parse.
	ReasonParseError = "parse error"
	// The connection was closed on this side by Manager.CloseTransport;
	// the socket reconnects.
	ReasonForcedClose = "forced close"
)
