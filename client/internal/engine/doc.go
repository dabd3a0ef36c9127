// Package engine is the Engine.IO v4 client transport of the Go client: the
// handshake, HTTP long-polling, WebSocket, the upgrade from the first to the
// second, and the heartbeat. It carries "message" packets and knows nothing of
// Socket.IO. Node's engine.io-client is the behavioural reference: its
// transports, its upgrade sequence and its close reasons.
//
// # Goroutines
//
// A Conn runs at most these goroutines, all counted in Conn.wg:
//
//   - the reader: the polling loop (one GET at a time), then, after an
//     upgrade, the WebSocket read loop (the upgrade goroutine becomes it).
//     Never two at once: the WebSocket is read only once the polling loop
//     has exited. OnMessage runs on it.
//   - the writer: drains the send queue over the current transport (one POST
//     at a time, or one frame per packet).
//   - the upgrade goroutine (polling sessions that may upgrade).
//   - the heartbeat timer's callback, while the timer is armed.
//
// plus the teardown goroutine, which waits for the close to be decided,
// carries it out, waits for the others and closes Done.
//
// # Locks
//
// Listed outermost first; a goroutine holding one may only take those below.
//
//  1. Conn.sendMu — serializes writes to the transport: the writer holds it
//     while it takes a batch from the queue and writes it (a POST, or
//     WebSocket frames), the upgrade goroutine while it sends "5" and makes
//     the WebSocket the transport. So a batch taken for polling is always
//     posted before "5", and every later batch goes to the WebSocket. It is
//     held during I/O, which is always bounded: a POST by the Conn's context
//     (cancelled on close) or by closeGrace, a WebSocket write by a deadline.
//  2. Conn.mu — all mutable state: closed flag and reason, transport, queue,
//     active and probe WebSocket, the pause flag, the dispatching flag, the
//     heartbeat timer. Held briefly, never during I/O or OnMessage. Under it
//     only non-blocking things: signal sends on capacity-1 channels,
//     time.AfterFunc / Timer.Stop, WaitGroup.Add.
//
// Every wg.Add happens under Conn.mu while the Conn is not closed (or in Dial
// before any goroutine runs), and teardown calls wg.Wait only after closed is
// set under Conn.mu: every Add is ordered before the Wait.
//
// The close is decided once under Conn.mu (closeWith) and carried out by the
// teardown goroutine, outside any lock.
package engine
