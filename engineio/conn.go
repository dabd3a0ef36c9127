package engineio

import (
	"net/http"
	"sync"
	"time"
)

// Handler receives one connection's events.
//
// OnMessage calls for one Conn are never concurrent with each other and
// arrive in order: there is one reader at a time (the WebSocket read loop or
// a polling POST handler). OnClose is called exactly once, never
// concurrently with OnMessage, and OnMessage is never called after it.
// Handlers may call Send and Close on the Conn from inside either method.
type Handler interface {
	// OnMessage receives the payload of an Engine.IO "message" packet: text
	// without the leading '4', or the raw bytes of a binary message. The
	// handler owns data. Text is valid UTF-8: a WebSocket text frame that is
	// not closes the connection (1007), and invalid sequences in a polling
	// body arrive as U+FFFD.
	//
	// OnMessage may block to apply backpressure, for instance while the
	// work that earlier messages started is still pending. Meanwhile the
	// connection's reader is paused: nothing more is read from the client
	// (on WebSocket, TCP flow control then slows the sender; on polling,
	// the POST that carried the message is answered only when OnMessage
	// returns, and the client sends nothing until then). The heartbeat
	// does not time the connection out while OnMessage runs, since the
	// client's pong may be waiting behind the message; the caller must
	// bound how long it blocks. Everything else keeps working from other
	// goroutines: Send, SendVolatile, Close (OnClose then follows once
	// OnMessage returns), the writer and the pings.
	OnMessage(data []byte, binary bool)
	// OnClose reports why the connection closed: "transport close",
	// "transport error", "ping timeout", "parse error" or "forced close",
	// with the underlying error if there is one. It is called from the
	// goroutine that closed the connection (from Close itself, unless Close
	// is called inside OnMessage, in which case OnClose follows once
	// OnMessage returns), except that a close caused by Send overflowing the
	// queue calls OnClose from a new goroutine.
	OnClose(reason string, err error)
}

// nopHandler is used when accept returns nil.
type nopHandler struct{}

func (nopHandler) OnMessage([]byte, bool) {}
func (nopHandler) OnClose(string, error)  {}

// Conn is one Engine.IO session. Its methods are safe for concurrent use.
type Conn struct {
	srv *Server
	id  string
	req savedRequest

	// handler is set, under mu, once accept returns; readers start later.
	handler Handler

	// readMu serializes the readers (POST handlers and the WebSocket read
	// loop), and so OnMessage calls. It is taken before mu, never after.
	readMu sync.Mutex
	// onReader is set while the WebSocket reader calls OnMessage, and
	// deferred is what the Handler gave it to run next (RunOnReader); both
	// are the reader's own.
	onReader bool
	deferred Runner

	// hb is the connection's heartbeat deadline in the server's wheel,
	// guarded by the wheel's lock (pingwheel.go).
	hb hbLink

	mu sync.Mutex
	// Everything below is guarded by mu.
	reason   string
	closeErr error

	// done is closed when the connection closes; pollWake wakes the parked
	// polling GET (capacity 1). Both are made when first needed: a
	// WebSocket session usually never needs them.
	done     chan struct{}
	pollWake chan struct{}

	queue   []*Message    // packets not yet taken by a writer
	queued  int64         // payload bytes in queue (Config.MaxQueuedBytes)
	drained chan struct{} // closed when the queue is taken; paced senders wait (pace.go)
	ws      *wsConn       // active WebSocket transport, nil while polling
	probe   *wsConn       // WebSocket being upgraded to, if any

	closed     bool // closed: see reason, closeErr
	getActive  bool // a polling GET is being served
	getPending bool // … and is parked waiting for packets
	postActive bool // a polling POST is being served

	dispatching   bool // a Handler call (accept or OnMessage) is running
	readSincePing bool // a message was dispatched since the last ping (heartbeat.go)
	closeDeferred bool // OnClose is due when it returns
	flushOnClose  bool // the WebSocket writer flushes the queue before closing
	lingering     bool // closed polling session kept for one last GET (linger.go)
	awaitingPong  bool
	pongDeferred  bool // the pong timeout fell during a Handler call (heartbeat.go)
	lingerTimer   *time.Timer

	pingGen      uint32    // the heartbeat deadline's generation (pingwheel.go)
	upgradeTimer timerSlot // UpgradeTimeout of the probe WebSocket
	checkTimer   timerSlot // 100 ms noop check while upgrading
}

// ID returns the session id (20 characters of base64url).
func (c *Conn) ID() string { return c.id }

// Request returns a copy of the handshake request, a new one at each call:
// its method, headers (bounded by Config.MaxHeaderBytes), URL (and query),
// Host, RemoteAddr and TLS state. Nothing else of the original is kept: its
// body is empty, its context is context.Background(), and values attached
// to the original by net/http or middleware (path values, parsed forms) are
// absent. The session keeps these packed in one string (savedRequest).
func (c *Conn) Request() *http.Request { return c.req.request() }

// Transport returns the current transport, "polling" or "websocket". It
// changes from "polling" to "websocket" when an upgrade completes.
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transportLocked()
}

// transportLocked is the current transport: WebSocket once one is active
// (c.ws), polling before.
func (c *Conn) transportLocked() string {
	if c.ws != nil {
		return TransportWebSocket
	}
	return TransportPolling
}

// Done returns a channel that is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doneLocked()
}

// doneLocked returns done, making it (closed, if the connection is) on
// first use.
func (c *Conn) doneLocked() chan struct{} {
	if c.done == nil {
		c.done = make(chan struct{})
		if c.closed {
			close(c.done)
		}
	}
	return c.done
}

// Send queues message packets, in order and atomically: all or none, with
// no other Send interleaved between them. It never blocks on the network:
// when the connection is idle, Send writes on the calling goroutine what
// the socket takes at once (one system call, and no other goroutine to
// wake), and leaves the rest to a writer. It returns ErrClosed if the
// connection is closed. If the queue would exceed Config.MaxQueuedMessages
// or Config.MaxQueuedBytes, the connection is closed ("transport error",
// ErrSlowConsumer) and ErrSlowConsumer is returned.
func (c *Conn) Send(msgs ...*Message) error {
	_, err := c.send(false, false, msgs)
	return err
}

// Enqueue queues msgs as Send does, but never writes on the calling
// goroutine: the server's writers do. It is for a caller that sends the
// same packets to many connections in a row, a broadcast, which would
// otherwise pay a system call per connection before reaching the next one,
// and whose frames then gather into fewer, larger writes when it sends
// faster than the clients read.
func (c *Conn) Enqueue(msgs ...*Message) error {
	_, err := c.send(false, true, msgs)
	return err
}

// send queues msgs (Send, SendPaced, Enqueue, EnqueuePaced), writing them
// at once unless enqueue is set. With paced, it returns the channel of a
// congested queue (pace.go).
func (c *Conn) send(paced, enqueue bool, msgs []*Message) (drained <-chan struct{}, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	// An idle connection is written by its sender: claimed before the push,
	// so that the push wakes no writer. The sender is counted in the
	// server's WaitGroup while it owns the socket, since it may have to
	// start writeLoop after the server's Close has passed this connection.
	w := c.ws
	direct := !enqueue && w != nil && w.nowait && w.ready && w.owner == ownNone && len(c.queue) == 0
	if direct {
		w.owner = ownListed
		c.srv.wg.Add(1)
	}
	if !c.pushLocked(msgs...) {
		if direct {
			w.owner = ownNone
			c.srv.wg.Done()
		}
		c.mu.Unlock()
		c.CloseSlow()
		return nil, ErrSlowConsumer
	}
	if direct {
		batch := c.takeLocked()
		c.mu.Unlock()
		c.writeOwned(w, batch)
		c.srv.wg.Done()
		return nil, nil
	}
	if paced && c.congestedLocked() {
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		drained = c.drained
	}
	c.mu.Unlock()
	return drained, nil
}

// SendVolatile queues msgs only if the transport can write them right now —
// on WebSocket, the queue is empty and the writer is idle; on polling, a GET
// is waiting — and reports whether it did. Otherwise the messages are
// dropped. It never blocks on the network.
func (c *Conn) SendVolatile(msgs ...*Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	var writable bool
	if c.ws != nil {
		writable = len(c.queue) == 0 && c.ws.owner == ownNone
	} else {
		writable = c.getPending
	}
	return writable && c.pushLocked(msgs...)
}

// Close closes the connection from the server side: OnClose("forced close",
// nil). Messages already queued are still flushed to a WebSocket (within a
// short grace period) or to a waiting polling GET, followed there by a close
// packet. Close is idempotent and safe from any goroutine, including from
// inside a Handler callback.
func (c *Conn) Close() { c.closeWith(ReasonForcedClose, nil) }

// pushLocked appends msgs to the queue and wakes the writer. It reports
// false, queueing nothing, if that would overflow the queue, in messages
// or in bytes. An empty queue takes any one Send, however large, and
// packets without payload (ping, noop) are bounded by count only, so that
// a queue holding one oversized message does not fail the heartbeat.
func (c *Conn) pushLocked(msgs ...*Message) bool {
	if len(c.queue)+len(msgs) > c.srv.cfg.MaxQueuedMessages {
		return false
	}
	if len(msgs) == 0 {
		return true
	}
	var n int64
	for _, m := range msgs {
		n += int64(len(m.data))
	}
	if n > 0 && c.queued+n > c.srv.cfg.MaxQueuedBytes && len(c.queue) > 0 {
		return false
	}
	c.queued += n
	c.queue = appendQueue(c.queue, msgs)
	c.wakeLocked()
	return true
}

// wakeLocked wakes whichever writer is parked: the WebSocket writer or the
// polling GET.
func (c *Conn) wakeLocked() {
	if w := c.ws; w != nil {
		c.scheduleLocked(w)
		return
	}
	if c.getPending {
		notify(c.pollWake)
	}
}

// takeLocked hands the whole queue to a writer.
func (c *Conn) takeLocked() []*Message {
	q := c.queue
	c.queue = nil
	c.queued = 0
	c.releasePacedLocked()
	return q
}

// recycleLocked gives a written batch's array back to the pools
// (queuepool.go).
func (c *Conn) recycleLocked(batch []*Message) {
	if batch != nil {
		putQueue(batch)
	}
}

// notify does a non-blocking send on a capacity-1 signal channel.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// closeWith closes the connection; only the first call has an effect.
func (c *Conn) closeWith(reason string, err error) {
	c.mu.Lock()
	op := c.closeLocked(reason, err)
	c.mu.Unlock()
	op.run()
}

// closeOp is the part of a close done outside the lock.
type closeOp struct {
	c       *Conn
	reason  string
	err     error
	timers  [2]*time.Timer
	ws      *wsConn
	probe   *wsConn
	done    chan struct{} // Conn.done if made by now; a later one is made closed
	handler Handler       // nil if OnClose is deferred to the running dispatch
	async   bool
	linger  bool // keep the session registered for its last GET
}

// closeLocked marks the connection closed and returns what remains to be
// done outside the lock, or nil if it was already closed.
func (c *Conn) closeLocked(reason string, err error) *closeOp {
	if c.closed {
		return nil
	}
	c.closed = true
	c.reason, c.closeErr = reason, err
	c.releasePacedLocked()
	op := &closeOp{c: c, reason: reason, err: err, ws: c.ws, probe: c.probe, done: c.done}
	c.pingGen++
	c.srv.hb.disarm(c)
	op.timers = [2]*time.Timer{c.upgradeTimer.detach(), c.checkTimer.detach()}
	c.probe = nil
	c.flushOnClose = reason == ReasonForcedClose
	op.linger = c.lingerLocked()
	if w := c.ws; w != nil {
		c.scheduleLocked(w) // its writeLoop hangs up the socket
	}
	if c.dispatching {
		c.closeDeferred = true
	} else {
		op.handler = c.handler
	}
	return op
}

// goAsync makes run call OnClose from a new goroutine. The WaitGroup Add
// happens under mu, while the connection is being closed (see the
// repository's LOCKING.md).
func (op *closeOp) goAsync() {
	if op != nil && op.handler != nil {
		op.async = true
		op.c.srv.wg.Add(1)
	}
}

// run performs, in order: stop timers, close done (which releases a parked
// polling GET), unregister, close the sockets, call OnClose.
func (op *closeOp) run() {
	if op == nil {
		return
	}
	c := op.c
	for _, t := range op.timers {
		stopTimer(c.srv, t)
	}
	if op.done != nil {
		close(op.done)
	}
	if !op.linger {
		c.srv.unregister(c)
	}
	if op.probe != nil {
		op.probe.closeSocket()
	}
	if w := op.ws; w != nil {
		// The writer owns the socket: it flushes (forced close), sends a
		// close frame and closes it. The deadline unblocks a stuck write.
		grace := closeGrace
		if op.reason == ReasonForcedClose {
			grace = forcedCloseGrace
		}
		w.nc.closeDeadline(time.Now().Add(grace))
	}
	c.srv.log.Debug("engineio: session closed", "sid", c.id, "reason", op.reason, "err", op.err)
	switch h := op.handler; {
	case h == nil:
	case op.async:
		go func() {
			defer c.srv.wg.Done()
			h.OnClose(op.reason, op.err)
		}()
	default:
		h.OnClose(op.reason, op.err)
	}
}

// runAccept calls accept as a dispatch, so that a Close from inside it
// defers OnClose until the Handler is known.
func (c *Conn) runAccept(accept func(*Conn) Handler) {
	c.mu.Lock()
	c.dispatching = true
	c.mu.Unlock()
	var h Handler
	if accept != nil {
		h = accept(c)
	}
	if h == nil {
		h = nopHandler{}
	}
	c.mu.Lock()
	c.handler = h
	c.mu.Unlock()
	c.endDispatch()
}

// dispatch delivers one message to the Handler. The caller holds readMu.
// It reports whether the connection is still open.
func (c *Conn) dispatch(data []byte, binary bool) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.dispatching = true
	c.readSincePing = true
	h := c.handler
	c.mu.Unlock()
	h.OnMessage(data, binary)
	return c.endDispatch()
}

// endDispatch ends a Handler call and delivers a deferred OnClose.
func (c *Conn) endDispatch() bool {
	c.mu.Lock()
	c.dispatching = false
	c.restartPongTimeoutLocked()
	deferred := c.closeDeferred
	c.closeDeferred = false
	open := !c.closed
	h, reason, err := c.handler, c.reason, c.closeErr
	c.mu.Unlock()
	if deferred {
		h.OnClose(reason, err)
	}
	return open
}

// handlePacket processes one packet received on the active transport. The
// caller holds readMu. It reports whether the connection is still open.
func (c *Conn) handlePacket(p packet) bool {
	switch p.Type {
	case typeMessage:
		return c.dispatch(p.Data, p.Binary)
	case typePong:
		c.onPong()
	case typePing:
		// v4 clients never ping: "invalid heartbeat direction" (Node).
		c.closeWith(ReasonTransportError, errClientPing)
		return false
	case typeClose:
		c.closeWith(ReasonTransportClose, nil)
		return false
	}
	// open, upgrade and noop are ignored on the active transport.
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed
}
