// Package client is a Socket.IO v4 client (protocol v5 over Engine.IO v4),
// for the ioswarm server and the Node.js one alike: Go services, bots, load
// tools and tests that talk to a Socket.IO server.
//
// # Overview
//
// [Dial] connects to one namespace, named by the URL's path as with the
// JS client's io(): "http://host:3000/admin" is namespace "/admin",
// "http://host:3000" is "/". It returns a [Socket] once the server accepted
// the connection, or the server's refusal as a [*ConnectError] (the message
// and data of its middleware).
//
//	s, err := client.Dial(ctx, "http://localhost:3000/chat", client.Options{
//		Auth: map[string]string{"token": token},
//	})
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	s.On("message", func(ev *client.Event) {
//		var text string
//		if err := ev.Decode(0, &text); err == nil {
//			log.Println(text)
//		}
//	})
//	err = s.Emit("message", "hello")
//
// Events the server sends right at connection (a welcome message) may
// arrive before Dial returns; to see them, make the socket with
// [NewSocket], add its listeners, then [Socket.Connect]. Connect also
// reconnects a socket that the server disconnected, as the JS client's
// socket.connect() does.
//
// A [Manager] is one Engine.IO connection shared by sockets of several
// namespaces (the JS client's Manager): [NewManager], then
// [Manager.Socket] per namespace, or Options.Manager with Dial.
//
// # Events and arguments
//
// Outgoing arguments are any JSON-encodable Go values; a []byte anywhere
// inside travels as a binary attachment. Incoming arguments are kept as
// they arrived ([Args], a list of [parser.Raw]): nothing is decoded until a
// handler asks with Decode, and an argument passed back to Emit or Ack is
// sent byte for byte. [Socket.On] adds a listener of one event (several
// may listen; the ListenerID removes one), [Socket.OnAny] and
// [Socket.OnAnyOutgoing] see every incoming and outgoing event.
//
// Acknowledgements work both ways: [Event.Ack] answers the server's
// emitWithAck, and [Socket.EmitWithAck] waits for the server's answer under
// a context (its deadline is the ack timeout; [Socket.Timeout] and
// Options.AckTimeout are sugar over it), while [Socket.EmitWithAckFunc]
// returns at once and hands the answer to an [AckFunc].
//
// # Reconnection and buffering
//
// After the connection is lost ("transport close", "transport error",
// "ping timeout", "parse error"), the manager reconnects as the JS client
// does: after ReconnectionDelay·2^attempt, moved by up to
// RandomizationFactor of itself and capped at ReconnectionDelayMax, at
// most ReconnectionAttempts times (0: forever), and every socket of the
// manager sends its CONNECT again, with its Auth. A socket disconnected by
// the server ("io server disconnect"), refused by it, or closed does not
// reconnect. Dial itself does not retry: the first connection attempt's
// error is returned. The manager reports its attempts to
// [Manager.OnReconnectAttempt], OnReconnect, OnReconnectError and
// OnReconnectFailed (the JS client's reconnect_* events).
//
// Emits made while the socket is disconnected are buffered, within
// Options.MaxBufferedEmits and MaxBufferedBytes (past them, ErrBufferFull),
// and sent in order once it is connected again; volatile emits
// ([Socket.Volatile]) are dropped instead. Acknowledgements of buffered
// events wait for the reconnection; those of events already sent when the
// connection was lost end with ErrDisconnected.
//
// # Connection state recovery
//
// When the server has connection state recovery on, its CONNECT reply
// carries a session id (pid), and the events it logged carry their offset
// as a last string argument (handlers see it too, as in the JS client).
// The socket keeps both and sends them with its next CONNECT; when the
// server restored the session, [Socket.Recovered] is true, [Socket.ID] is
// the same as before, and the events missed meanwhile arrive first.
//
// # Errors
//
// Errors that callers test are sentinels, matched with errors.Is:
// [ErrClosed] after Close, [ErrDisconnected] for a socket disconnected for
// good and for acknowledgements lost with a connection, [ErrTimeout] for an
// acknowledgement that did not come in time (a [*TimeoutError], which also
// matches context.DeadlineExceeded), [ErrDecode] for an argument that does
// not fit the value asked for (a [*DecodeError] naming the argument),
// [ErrBufferFull], [ErrReservedEvent], [ErrNoAck], [ErrInvalidAuth],
// [ErrNamespaceInUse]. Refusals are [*ConnectError] values (errors.As).
// Disconnection reasons are the Reason constants, the JS client's strings.
//
// # Concurrency
//
// Every method is safe for concurrent use. The handlers of one socket
// (events, catch-all listeners, ack funcs, connection, disconnection and
// connect-error handlers) run one at a time, in the order the packets
// arrived, on a goroutine that exists only while the socket has work: a
// handler may block — even waiting for an acknowledgement of its own
// socket — and only that socket waits; the connection's reader goes on
// (it answers the server's pings and resolves acknowledgements). What the
// server sends while a handler blocks is queued for the socket without
// bound. Emit never waits for the network: the Engine.IO connection has one
// writer, fed by a bounded queue.
//
// Close waits for the socket's handlers to finish and, with the manager's
// last socket, for the connection's goroutines: no goroutine of the
// package outlives it (a Close called from one of the socket's own
// handlers does not wait for that handler, which ends when it returns).
//
// # Compatibility
//
// The wire behaviour is the JS client's (socket.io-client 4.8): packets,
// CONNECT payload with pid and offset, backoff, disconnect reasons, error
// texts. Differences: Dial returns the first connection attempt's error
// instead of retrying; an AckFunc is always called once (the JS client
// drops callbacks without a timeout when the connection is lost); a second
// socket on the same namespace of a Manager is an error (the JS client
// returns the first); the retries option is not implemented.
package client
