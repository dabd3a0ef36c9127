package client

import (
	"sync"

	"github.com/ioswarm/ioswarm/parser"
)

// Args are the arguments of an event or an acknowledgement as they arrived
// (parser.Args: the same type on the server and the client). Decode fills a
// Go value; passing an element back to an emit or an ack forwards it byte
// for byte.
type Args = parser.Args

// Event is an event received from the server.
type Event struct {
	// Name is the event name.
	Name string
	// Args are the event's arguments. With connection state recovery on,
	// the server appends the event's offset as a last string argument to
	// the events it logged, as the JS client sees them too.
	Args Args

	ack  func(args []any) error
	mu   sync.Mutex
	sent bool
}

// Len returns the number of arguments.
func (e *Event) Len() int { return len(e.Args) }

// Decode unmarshals argument i into v; see Args.Decode.
func (e *Event) Decode(i int, v any) error { return e.Args.Decode(i, v) }

// HasAck reports whether the server asked for an acknowledgement.
func (e *Event) HasAck() bool { return e.ack != nil }

// Ack answers the server's acknowledgement with args (any values, []byte
// anywhere inside; Args elements are forwarded verbatim). Only the first
// call sends anything; later calls return nil and do nothing. It returns
// ErrNoAck when the server asked for none, and ErrDisconnected (or
// ErrClosed) when the connection the event came on is gone: an
// acknowledgement is not buffered, as in the JS client.
func (e *Event) Ack(args ...any) error {
	if e.ack == nil {
		return ErrNoAck
	}
	e.mu.Lock()
	if e.sent {
		e.mu.Unlock()
		return nil
	}
	e.sent = true
	e.mu.Unlock()
	return e.ack(args)
}

// EventHandler handles one named event. Like every handler of a socket
// (catch-all listeners, connection, disconnection and error handlers, ack
// funcs), it runs on the socket's handler goroutine, one at a time and in
// the order the packets arrived, and may block: only this socket waits.
type EventHandler func(ev *Event)

// AnyHandler is a catch-all listener of incoming events (OnAny), called
// before the event's own listeners, on the socket's handler goroutine.
type AnyHandler func(ev *Event)

// OutgoingHandler is a catch-all listener of outgoing events
// (OnAnyOutgoing), given each event as it is sent — an event buffered while
// reconnecting, when the buffer is flushed. args are encoded already
// (Decode them as those of an incoming event). It runs on the socket's
// handler goroutine.
type OutgoingHandler func(event string, args Args)

// AckFunc receives the server's acknowledgement of an emit, or the error
// that ended the wait: a *TimeoutError (errors.Is ErrTimeout and
// context.DeadlineExceeded), ErrDisconnected when the connection was lost
// after the event was sent, or ErrClosed. It is called exactly once, on the
// socket's handler goroutine, and may block.
type AckFunc func(args Args, err error)

// ConnectHandler is called each time the socket is connected to its
// namespace (after Dial, and after every reconnection), on the socket's
// handler goroutine.
type ConnectHandler func()

// DisconnectHandler is called with the reason of a disconnection (one of
// the Reason constants), on the socket's handler goroutine.
type DisconnectHandler func(reason string)

// ConnectErrorHandler is called when a connection attempt fails: a
// *ConnectError when the server refused the namespace (the socket does not
// reconnect), or the error of an Engine.IO connection attempt while
// reconnecting. It runs on the socket's handler goroutine.
type ConnectErrorHandler func(err error)
