// Package server is a Socket.IO v4 server (protocol v5 over Engine.IO v4),
// compatible with the official JavaScript client and, through
// [github.com/ioswarm/ioswarm/adapter/redis], with Node.js servers running
// @socket.io/redis-adapter in one cluster.
//
// # Overview
//
// A [Server] is an http.Handler; mount it at its path ("/socket.io/" by
// default). Namespaces come from [Server.Of] (static) and [Server.OfRegexp]
// or [Server.OfFunc] (created on demand). Each namespace has middlewares
// ([Namespace.Use]) that may refuse a connection with a [ConnectError], and
// connection handlers ([Namespace.OnConnection]) that receive a [Socket].
//
//	srv := server.New(server.Config{})
//	srv.OnConnection(func(s *server.Socket) {
//		s.On("chat", func(s *server.Socket, ev *server.Event) {
//			var msg struct{ Text string }
//			if err := ev.Decode(0, &msg); err != nil {
//				return
//			}
//			s.Broadcast().Emit("chat", msg)
//			ev.Ack("ok")
//		})
//	})
//	http.Handle("/socket.io/", srv)
//
// # Events and arguments
//
// Incoming arguments are kept as they arrived ([Args], a list of
// [parser.Raw]): nothing is decoded until a handler asks with Decode, and an
// argument passed back to Emit or Ack is written byte for byte, binary
// attachments included. Outgoing arguments are any JSON-encodable Go values;
// a []byte anywhere inside travels as a binary attachment.
//
// Acknowledgements work both ways: [Event.Ack] answers the client, and
// every emitter — [Socket], [BroadcastOperator], [Namespace], [Server],
// [RemoteSocket] — asks for one with the same two methods: EmitWithAck
// waits, under a context, and returns the answer as [Args]; EmitWithAckFunc
// returns at once and hands the answer to an [AckFunc]. A broadcast's
// answer has one element per client.
//
// # Errors
//
// Errors that callers test are sentinels, matched with errors.Is:
// [ErrClosed] after [Server.Close] (from every layer), [ErrDisconnected]
// for a socket that is gone, [ErrTimeout] when answers did not come in time
// (a [TimeoutError], which also matches context.DeadlineExceeded: a
// context's deadline and the library's timeouts read the same),
// [ErrDecode] for an argument that does not fit the value asked for (a
// [DecodeError] naming the argument), [ErrReservedEvent]. Disconnection
// reasons are the Reason constants, Node's strings.
//
// # Broadcasting
//
// [BroadcastOperator] selects sockets (To/In, Except, Local, Volatile,
// Timeout) and emits to them, fetches them, makes them join or leave rooms
// or disconnects them, across the cluster. A broadcast is encoded once and
// the same bytes are queued on every recipient's connection.
//
// # Limits and backpressure
//
// What a client can make the server hold is bounded in count and bytes
// (see Config). A client that sends faster than its handlers run is not
// disconnected: once its queued events pass MaxPendingEvents or
// MaxPendingBytes, its connection stops being read until the handlers catch
// up, and TCP slows it down. An emit that leaves a recipient's send queue
// more than half full waits until the connection's writer has taken it (at
// most WriteTimeout; a recipient that has not read by then is disconnected
// as a slow consumer), so a handler emitting in a loop goes at the pace of
// its readers; volatile emits and deliveries from other nodes never wait.
// With CleanupEmptyChildNamespaces, a dynamic namespace is removed, with its
// adapter, once its last socket leaves.
//
// # Concurrency
//
// Every method is safe for concurrent use. The handlers of one socket
// (events, ack callbacks, disconnection) run one at a time, in order, on a
// goroutine that exists only while the socket has work — usually the
// connection's WebSocket reader itself, which runs the handler of the event
// it just read, so that an echo costs no goroutine switch. A handler may
// block — even waiting for the same client's acknowledgement — without
// stalling other sockets or the connection's heartbeat: a reader busy with
// a handler for more than 10 to 20 ms is replaced by a new one (at once
// when the handler waits for a client's acknowledgement), so the events of
// the connection's other namespaces wait at most that long. (While the
// client's events are within the budget above: an answer stuck behind a
// full budget is read only once handlers progress, so such a wait needs a
// timeout.)
// Broadcast ack callbacks ([AckFunc] of a broadcast) run on a goroutine of
// their own and may block. Server-side listeners ([ServerEventHandler]) and
// outgoing listeners ([OutgoingHandler]) run on goroutines the server
// shares — the adapter's, the sender's — and must not block.
//
// The lock order is written down in LOCKING.md at the repository root. No
// lock is held while calling user code, an adapter, or the network.
//
// # Shutting down
//
// [Server.Close] stops at once. [Server.Shutdown] drains: it refuses new
// sessions (503) and namespace connections, closes every client's
// transport (the official client sees "transport close" and reconnects,
// e.g. to another node), answers pending long-polling requests, and waits,
// within its context, for the sockets' disconnect handlers while the
// adapters still work — a "user went offline" broadcast sent from one
// reaches the other nodes — before closing as Close does. With an
// http.Server, call Shutdown first, then the http.Server's Shutdown.
//
// # Connection state recovery
//
// With Config.ConnectionStateRecovery set (Node's connectionStateRecovery;
// see RecoveryConfig), a socket that lost its transport leaves a session
// behind for MaxDisconnectionDuration, and every broadcast or emit without
// ack that is not volatile is logged by the namespace's adapter with an
// offset, which travels to the client as the event's last argument. A
// client that comes back in time with the session's pid and its last
// offset gets the same socket id, rooms and data ([Socket.Recovered] is
// true) and the packets it missed, in order and once, right after the
// CONNECT reply and before anything live: deliveries that reach the socket
// while it is restored are held and queued after them. Sessions and the log
// are bounded per namespace in count and bytes, as well as by the window.
// It works on one node (the in-memory adapter) and across a cluster (the
// Redis adapter keeps sessions and the log in Redis, so a client whose node
// stopped or died is recovered by any node; Join, Leave and SetData then
// return once the session is stored — an error matching ErrNotStored when
// it could not be — and a broadcast's Emit once it is logged).
//
// # Compatibility
//
// Defaults, event names, disconnect reasons and error texts are those of
// the Node.js server 4.8 (see Config). Not implemented: the msgpack
// parser, Engine.IO v3 clients.
package server
