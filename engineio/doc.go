// Package engineio implements the server side of Engine.IO protocol v4, the
// transport layer under Socket.IO v3/v4: HTTP long-polling, WebSocket, the
// upgrade from one to the other, and the heartbeat.
//
// # Overview
//
// A Server is an http.Handler. Mount it on the Engine.IO path (Socket.IO uses
// "/socket.io/"); every request routed to it is an Engine.IO request:
//
//	srv := engineio.NewServer(engineio.Config{}, func(c *engineio.Conn) engineio.Handler {
//		return &session{conn: c} // receives OnMessage and OnClose
//	})
//	defer srv.Close()
//	http.Handle("/engine.io/", srv)
//
// Each session is a Conn. The accept function returns the Handler that
// receives its messages; Conn.Send queues Messages for it. A Message is
// immutable and may be sent to any number of connections: a broadcast makes
// one and sends it to every recipient, and its WebSocket frame is built once.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. Send never blocks on the
// network: each connection has a bounded queue (Config.MaxQueuedMessages,
// Config.MaxQueuedBytes) drained by one writer at a time, which writes
// everything queued at once (one polling payload, or one socket write for all
// WebSocket frames). On polling it is the GET request waiting for data. On
// WebSocket it is one of the server's few writers, which take connections
// with something to write off a list and never wait for a client; or the
// caller of Send itself, when the connection is idle (what the socket takes
// at once); or, for a client that did not take a whole batch, a goroutine of
// the connection's own that waits for it. Enqueue, for broadcasts, always
// leaves the writing to the server's writers. On Linux a writer hands the
// kernel the sends of up to 64 connections with one io_uring submission
// where io_uring is allowed, and writes each connection otherwise.
// A connection whose queue overflows is closed with ErrSlowConsumer;
// SendVolatile drops instead of queueing when the transport is busy.
//
// Handler.OnMessage may block to apply backpressure: the connection's reader
// waits with it, so nothing more is read from that client, while Send,
// Close and the writer keep working. The heartbeat does not time out a
// connection while one of its Handler calls runs (the pong may be waiting
// unread behind the message); the caller bounds how long it blocks.
// Work that a message starts may run on the WebSocket's reader itself,
// after OnMessage (Conn.RunOnReader): the reader is replaced by a new one
// if that work takes more than 10 to 20 ms, or at once on ReleaseReaders.
//
// A WebSocket connection has at most one reader goroutine, and a writer
// goroutine of its own only while a client is slow to take what it is sent;
// a polling connection has none of its own. On Linux an idle WebSocket (nothing received for 250 ms)
// has no reader either: one goroutine per server watches all idle sockets
// with epoll and starts a reader when bytes arrive (idle.go). Heartbeats and timeouts are timers
// (time.AfterFunc), not goroutines. Handler calls for one connection are
// serialized: OnMessage calls never overlap, and OnClose comes exactly once,
// after the last OnMessage. Server.Close returns only when every goroutine,
// timer callback and held request of the server has finished.
//
// The lock order is written down in LOCKING.md at the repository root. In short: no state lock is
// held while calling a Handler or doing I/O; the only lock held around
// OnMessage is the per-connection reader lock, which only readers take.
//
// # Limits
//
// One client cannot make the server hold more than a bounded amount for it,
// nor pass invalid data on to others:
//
//   - Messages from the client: Config.MaxPayload bytes per polling body or
//     WebSocket message, counted after inflation for compressed messages.
//     Bodies are read as they arrive, never by the announced length, and
//     must arrive within PingInterval+PingTimeout.
//   - Messages to the client: a send queue bounded by Config.MaxQueuedMessages
//     and Config.MaxQueuedBytes (then ErrSlowConsumer), and each write to the
//     client (a WebSocket batch, a polling response) bounded by
//     Config.WriteTimeout.
//   - Requests: heads over Config.MaxHeaderBytes are refused with 431; a
//     session keeps a compact copy of its handshake request.
//   - Text: a WebSocket text frame that is not UTF-8 closes its connection
//     (1007); invalid sequences in a polling body, or in text given to
//     NewMessage, become U+FFFD as in Node's Buffer.toString.
//
// # Compatibility
//
// The wire behaviour follows the Node.js reference server (engine.io 6.x):
// the open packet's keys and their order, the HTTP error codes and bodies,
// the polling framing (packets joined by 0x1E, binary as "b"+base64), one
// packet per WebSocket frame, the upgrade handshake ("2probe", "3probe",
// noops to the pending poll, "5"), server-sent pings, CORS as the npm "cors"
// package applies it, and the session cookie. Only EIO=4 is supported: no
// EIO=3, no JSONP polling, no HTTP compression of polling responses, no
// WebTransport.
package engineio
