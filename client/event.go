package client

import (
	"fmt"
	"sync"

	"github.com/ioswarm/ioswarm/parser"
)

// Args are the arguments of an event or an acknowledgement as they arrived:
// JSON values whose binary placeholders point into the packet's
// attachments. Nothing is decoded until asked: Decode fills a Go value, and
// passing an Args element back to Emit or Ack forwards it byte for byte.
type Args []parser.Raw

// Len returns the number of arguments.
func (a Args) Len() int { return len(a) }

// Decode unmarshals argument i into v, like json.Unmarshal; binary values
// decode into []byte (and into any as []byte). It fails with a
// *DecodeError (errors.Is ErrDecode) when argument i is missing or has
// another shape than v.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= len(a) {
		return &DecodeError{Index: i, Reason: fmt.Sprintf("missing (%d arguments)", len(a))}
	}
	return decodeError(i, v, a[i].Decode(v))
}

// Values decodes every argument into a generic Go value (map[string]any,
// []any, float64, string, bool, nil, []byte).
func (a Args) Values() ([]any, error) {
	out := make([]any, len(a))
	for i, r := range a {
		v, err := r.Value()
		if err != nil {
			return nil, decodeError(i, &v, err)
		}
		out[i] = v
	}
	return out, nil
}

// Any returns the arguments as a []any of parser.Raw values, ready to be
// forwarded: s.Emit("x", ev.Args.Any()...) re-sends them verbatim.
func (a Args) Any() []any {
	out := make([]any, len(a))
	for i, r := range a {
		out[i] = r
	}
	return out
}

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
