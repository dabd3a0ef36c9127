package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/parser"
)

// Errors callers match with errors.Is.
var (
	// ErrClosed is returned by every operation after Server.Close, whether
	// the server or its adapter noticed (it is adapter.ErrClosed).
	ErrClosed = adapter.ErrClosed
	// ErrTimeout matches every error of a wait that ended before its
	// answers came (an acknowledgement, a cluster request): those are
	// *TimeoutError values, which also match context.DeadlineExceeded. Their
	// text is Node's ("operation has timed out", "timeout reached: only 1
	// responses received out of 2", ...). It is adapter.ErrTimeout.
	ErrTimeout = adapter.ErrTimeout
	// ErrDisconnected is returned by calls on a socket that is no longer
	// connected, and ends the acks it was waiting for.
	ErrDisconnected = errors.New("server: socket disconnected")
	// ErrNotStored matches the error of Join, Leave or SetData when the
	// socket's session could not be stored for connection state recovery
	// (Redis did not answer, say): the change is made on this node, but a
	// node that recovers the socket would not see it.
	ErrNotStored = errors.New("server: session not stored for recovery")
	// ErrReservedEvent matches the error of an emit with a reserved name.
	ErrReservedEvent = errors.New("server: reserved event name")
	// ErrNoAck is returned by Event.Ack when the client asked for no
	// acknowledgement.
	ErrNoAck = errors.New("server: no acknowledgement requested")
	// ErrDynamicFetch is returned by FetchSockets on a parent of dynamic
	// namespaces, as on Node.
	ErrDynamicFetch = errors.New("server: fetchSockets() is not supported on parent namespaces")
	// ErrSlowConsumer is returned by an emit that overflowed its client's
	// send queue (Config.MaxQueuedMessages, MaxQueuedBytes): the client is
	// disconnected. It is engineio.ErrSlowConsumer.
	ErrSlowConsumer = engineio.ErrSlowConsumer
	// ErrDecode matches every *DecodeError: an argument (or socket data)
	// that does not decode into the value asked for.
	ErrDecode = parser.ErrDecode
)

// TimeoutError is the error of a wait that ended before its answers came;
// see ErrTimeout.
type TimeoutError = adapter.TimeoutError

// errAckTimeout ends the wait for acknowledgements, with Node's text.
var errAckTimeout error = &TimeoutError{Message: "operation has timed out"}

// ctxErr is the error of a wait ended by ctx: a deadline reads as a
// timeout (errAckTimeout, which still matches context.DeadlineExceeded).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != context.DeadlineExceeded {
		return err
	}
	return errAckTimeout
}

// DecodeError is returned when argument Index (of an event or an
// acknowledgement; -1 for socket data) does not decode into the Go value
// asked for (parser.DecodeError, the same on the server and the client). It
// matches ErrDecode.
type DecodeError = parser.DecodeError

// Disconnection reasons passed to DisconnectHandler, Node's strings.
const (
	// The server disconnected the socket (Socket.Disconnect).
	ReasonServerNamespaceDisconnect = "server namespace disconnect"
	// The client disconnected the socket (socket.disconnect()).
	ReasonClientNamespaceDisconnect = "client namespace disconnect"
	// The server is closing (Server.Close).
	ReasonServerShuttingDown = "server shutting down"
	// The client stopped answering pings in time.
	ReasonPingTimeout = "ping timeout"
	// The connection was closed by the client or the network.
	ReasonTransportClose = "transport close"
	// The connection failed (a protocol violation, a slow consumer, ...).
	ReasonTransportError = "transport error"
	// The client sent a packet that does not parse.
	ReasonParseError = "parse error"
	// The connection was closed by the server, for every namespace on it
	// (Socket.Disconnect(true)).
	ReasonForcedServerClose = "forced server close"
	// The connection was closed by the server otherwise.
	ReasonForcedClose = "forced close"
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
