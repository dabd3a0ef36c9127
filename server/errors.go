package server

import (
	"errors"
	"fmt"
)

// Errors callers match with errors.Is.
var (
	// ErrAckTimeout is returned when an acknowledgement did not arrive in
	// time. Its text is the Node.js server's.
	ErrAckTimeout = errors.New("operation has timed out")
	// ErrDisconnected is returned by calls on a socket that is no longer
	// connected, and ends the acks it was waiting for.
	ErrDisconnected = errors.New("server: socket disconnected")
	// ErrReservedEvent matches the error of an emit with a reserved name.
	ErrReservedEvent = errors.New("server: reserved event name")
	// ErrClosed is returned after the server was closed.
	ErrClosed = errors.New("server: closed")
	// ErrNoAck is returned by Event.Ack when the client asked for no
	// acknowledgement.
	ErrNoAck = errors.New("server: no acknowledgement requested")
	// ErrDynamicFetch is returned by FetchSockets on a parent of dynamic
	// namespaces, as on Node.
	ErrDynamicFetch = errors.New("server: fetchSockets() is not supported on parent namespaces")
)

// ReservedEventError is returned by an emit with one of the names the
// protocol reserves. Its text is the Node.js server's, e.g. `"connect" is a
// reserved event name`.
type ReservedEventError struct{ Name string }

func (e *ReservedEventError) Error() string {
	return fmt.Sprintf("%q is a reserved event name", e.Name)
}

// Is reports whether target is ErrReservedEvent.
func (e *ReservedEventError) Is(target error) bool { return target == ErrReservedEvent }

// ConnectError refuses a namespace connection from a middleware. The client
// receives a connect_error with Message and, when not nil, Data.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// reservedEmit lists the names a socket or a broadcast may not emit.
var reservedEmit = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// reservedServerSide lists the names serverSideEmit refuses.
var reservedServerSide = map[string]bool{"connect": true, "connection": true, "new_namespace": true}

func checkEmitName(event string) error {
	if reservedEmit[event] {
		return &ReservedEventError{Name: event}
	}
	return nil
}
