package server

import (
	"sync/atomic"

	"github.com/ioswarm/ioswarm/parser"
)

// Args are the arguments of an event or an acknowledgement as they arrived
// (parser.Args: the same type on the server and the client). Decode fills a
// Go value; passing an element back to an emit or an ack forwards it byte
// for byte.
type Args = parser.Args

// Event is an event received from a client.
type Event struct {
	// Name is the event name.
	Name string
	// Args are the event's arguments (the ack callback is not among them).
	Args Args

	// A client's event: its socket, the ack id the client asked for, and
	// what the event holds (counted by the client's inbox until its
	// handlers return).
	sock    *Socket
	ackID   uint64
	wantAck bool
	size    int64

	ack  func(args []any) error // an answer to another node (ServerSideEmit)
	sent atomic.Bool
}

// HasAck reports whether the client asked for an acknowledgement.
func (e *Event) HasAck() bool { return e.wantAck || e.ack != nil }

// Ack answers the client's acknowledgement with args (any values, []byte
// anywhere inside; Args elements are forwarded verbatim). Only the first
// call sends anything; later calls return nil and do nothing, as on Node.
// It returns ErrNoAck when the client asked for none.
func (e *Event) Ack(args ...any) error {
	if !e.HasAck() {
		return ErrNoAck
	}
	if !e.sent.CompareAndSwap(false, true) {
		return nil
	}
	if e.ack != nil {
		return e.ack(args)
	}
	return e.sock.sendPacket(parser.Ack, e.ackID, true, "", args, false)
}

// runTask runs a client's event on its socket's handler goroutine (the
// socket's serial queues the event itself: nothing else is allocated).
func (e *Event) runTask() {
	defer e.sock.client.release(e.size)
	e.sock.dispatch(e)
}

// Decode unmarshals argument i into v; see Args.Decode.
func (e *Event) Decode(i int, v any) error { return e.Args.Decode(i, v) }

// EventHandler handles one named event of a socket. Like every handler of
// a socket (catch-all listeners, packet middlewares, connection,
// disconnection and error handlers, ack funcs), it runs on the socket's
// handler goroutine, one at a time and in order, and may block: only this
// socket waits (its client is throttled once its queued events pass
// Config.MaxPendingEvents or MaxPendingBytes).
type EventHandler func(s *Socket, ev *Event)

// AnyHandler is a catch-all listener of incoming events (OnAny). It runs on
// the socket's handler goroutine, before the packet middlewares and the
// event's listeners, and may block (see EventHandler).
type AnyHandler func(s *Socket, ev *Event)

// OutgoingHandler is a catch-all listener of outgoing events
// (OnAnyOutgoing), given the event as it is sent: args are encoded already
// (Decode them as those of an incoming event). It runs on the goroutine
// that sends — the emitting one, for a broadcast the broadcaster's or the
// cluster adapter's receiving goroutine — before the packet is queued: it
// must not block, and it must not modify args (a broadcast's are shared by
// its recipients).
type OutgoingHandler func(s *Socket, event string, args Args)

// PacketMiddleware runs for every incoming event of a socket, before its
// listeners, on the socket's handler goroutine (it may block, see
// EventHandler); a non-nil error stops the event and is passed to the
// socket's error handlers (nothing is sent to the client, as on Node).
type PacketMiddleware func(s *Socket, ev *Event) error

// Middleware runs for every connection to a namespace before it is
// accepted, on the new socket's handler goroutine: it may block (a lookup,
// say) without holding up other connections, within Config.ConnectTimeout.
// A non-nil error refuses it: the client gets a connect_error with the
// error's text, and with Data when the error is a *ConnectError.
type Middleware func(s *Socket) error

// ConnectionHandler is called for every socket that joined a namespace, on
// the socket's handler goroutine, after the client got the CONNECT reply;
// it may block (see EventHandler).
type ConnectionHandler func(s *Socket)

// DisconnectHandler is called with the reason of a disconnection, as in
// Node (one of the Reason constants), on the socket's handler goroutine
// after the handlers queued before it; it may block (see EventHandler).
type DisconnectHandler func(s *Socket, reason string)

// ErrorHandler receives the errors of a socket's packet middlewares, on the
// socket's handler goroutine.
type ErrorHandler func(s *Socket, err error)

// ServerEventHandler handles an event sent by another node with
// ServerSideEmit. When the sender waits for an answer, ev.HasAck is true
// and the first argument of ev.Ack is sent back (Ack may be called later,
// from any goroutine).
//
// It runs on the goroutine the adapter delivers such events on. The Redis
// adapter has one per Factory, off its receiving goroutine, running the
// listeners of every namespace one at a time in arrival order: a listener
// may make cluster calls of its own, but one that blocks delays every other
// server-side event of the node — hand long work to a goroutine.
type ServerEventHandler func(ev *Event)
