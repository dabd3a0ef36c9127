package engine

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// packet is one queued outgoing packet.
type packet struct {
	typ    byte
	binary bool
	data   []byte
}

// Conn is an open Engine.IO session. Its methods are safe for concurrent use.
type Conn struct {
	opts      Options
	ep        *endpoint
	client    *http.Client
	ownClient *http.Transport // the default client's transport, closed with the Conn
	dialer    *websocket.Dialer

	// Set by Dial before any goroutine starts, read-only afterwards.
	id           string
	pingInterval time.Duration
	pingTimeout  time.Duration
	maxPayload   int

	ctx    context.Context // ends requests and dials at teardown
	cancel context.CancelFunc
	stop   chan struct{} // closed when the close is decided
	done   chan struct{} // closed when every goroutine has exited
	wake   chan struct{} // wakes the writer (capacity 1)
	// writerDone and pollerDone are closed when the writer, and the polling
	// loop, exit.
	writerDone chan struct{}
	pollerDone chan struct{}
	wg         sync.WaitGroup

	sendMu sync.Mutex // see doc.go

	mu sync.Mutex
	// Everything below is guarded by mu.
	closed      bool
	reason      string
	err         error
	flush       bool // the writer sends what is queued and a close packet
	transport   string
	queue       []packet
	queued      int // data bytes in queue
	ws          *websocket.Conn
	probe       *websocket.Conn
	pausePoll   bool // the polling loop exits after its current GET
	dispatching bool // OnMessage is running
	pingTimer   *time.Timer
	pingGen     uint64
}

func newConn(ep *endpoint, opts Options) *Conn {
	c := &Conn{
		opts:       opts,
		ep:         ep,
		client:     opts.HTTPClient,
		dialer:     opts.Dialer,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		pollerDone: make(chan struct{}),
	}
	if c.client == nil {
		// A transport of our own, so that closing the Conn can close its
		// idle connections and leave no goroutine behind. No Timeout: a
		// GET is a long poll; the heartbeat bounds it.
		c.ownClient = http.DefaultTransport.(*http.Transport).Clone()
		c.client = &http.Client{Transport: c.ownClient}
	}
	if c.dialer == nil {
		c.dialer = defaultDialer(c.client)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// start runs the goroutines of a session opened on ws (WebSocket) or on
// polling (ws nil; first and firstErr are what followed the open packet).
func (c *Conn) start(ws *websocket.Conn, first []eio.Packet, firstErr error, upgrade bool) {
	c.mu.Lock()
	c.resetHeartbeatLocked()
	c.wg.Add(2)
	if ws != nil {
		c.transport = TransportWebSocket
		c.ws = ws
		close(c.pollerDone)
		go c.wsReadLoop(ws)
	} else {
		c.transport = TransportPolling
		go c.pollLoop(first, firstErr)
		if upgrade {
			c.wg.Add(1)
			go c.upgradeLoop()
		}
	}
	go c.writeLoop()
	c.mu.Unlock()
	go c.teardown()
}

// ID returns the session id.
func (c *Conn) ID() string { return c.id }

// Transport returns the current transport, "polling" or "websocket".
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

// PingInterval returns the server's ping interval.
func (c *Conn) PingInterval() time.Duration { return c.pingInterval }

// PingTimeout returns the server's ping timeout.
func (c *Conn) PingTimeout() time.Duration { return c.pingTimeout }

// MaxPayload returns the largest polling body the server accepts, in bytes.
func (c *Conn) MaxPayload() int { return c.maxPayload }

// Done returns a channel that is closed when the connection is over, for any
// reason, and every goroutine of the Conn has exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Reason returns why the connection closed: "forced close", "transport
// close", "transport error", "ping timeout" or "parse error"; "" while open.
func (c *Conn) Reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Err returns the error behind the close, if any (nil for "forced close"
// and for a close packet from the server).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send queues message packets, in order and together: no other Send's
// messages come between them. It never blocks on the network. It takes
// ownership of each Data: the caller must not modify it afterwards. It
// returns ErrClosed once the connection is closed, and ErrQueueFull
// (queueing nothing) if the queue would exceed MaxQueuedMessages or
// MaxQueuedBytes.
func (c *Conn) Send(msgs ...Message) error {
	n := 0
	for _, m := range msgs {
		n += len(m.Data)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if len(c.queue)+len(msgs) > MaxQueuedMessages || c.queued+n > MaxQueuedBytes {
		return ErrQueueFull
	}
	for _, m := range msgs {
		c.queue = append(c.queue, packet{typ: eio.Message, binary: m.Binary, data: m.Data})
	}
	c.queued += n
	notify(c.wake)
	return nil
}

// pushControlLocked queues a control packet (a pong), outside the bounds: it
// is tiny and the server needs it.
func (c *Conn) pushControlLocked(typ byte) {
	if c.closed {
		return
	}
	c.queue = append(c.queue, packet{typ: typ})
	notify(c.wake)
}

// Close closes the connection: it sends what is queued and a close packet,
// best effort (at most about a second), closes the transport and waits for
// every goroutine of the Conn. It is idempotent, and returns nil. Called from
// OnMessage (or while an OnMessage call runs), it does not wait for the
// reader, which exits once OnMessage returns; Done says when.
func (c *Conn) Close() error {
	c.closeWith(ReasonForcedClose, nil)
	c.mu.Lock()
	dispatching := c.dispatching
	c.mu.Unlock()
	if !dispatching {
		<-c.done
	}
	return nil
}

// closeWith decides the close, once; teardown carries it out.
func (c *Conn) closeWith(reason string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.reason = reason
	c.err = err
	c.flush = reason == ReasonForcedClose
	if c.pingTimer != nil && c.pingTimer.Stop() {
		c.wg.Done() // its callback will not run
	}
	c.pingTimer = nil
	close(c.stop)
}

// teardown waits for the close to be decided, then ends every goroutine of
// the Conn: after the writer's flush (a forced close), it cancels the
// requests and dials and closes the WebSockets, waits, and closes done.
func (c *Conn) teardown() {
	<-c.stop
	c.mu.Lock()
	flush := c.flush
	c.mu.Unlock()
	if flush {
		<-c.writerDone // bounded: closeGrace, or a write deadline
	}
	c.cancel()
	c.mu.Lock()
	ws, probe := c.ws, c.probe
	c.mu.Unlock()
	for _, s := range []*websocket.Conn{ws, probe} {
		if s != nil {
			_ = s.NetConn().Close()
		}
	}
	c.wg.Wait()
	c.closeIdle()
	close(c.done)
}

func (c *Conn) closeIdle() {
	if c.ownClient != nil {
		c.ownClient.CloseIdleConnections()
	}
}

// handlePacket processes one incoming packet on the reader goroutine. It
// returns false once the connection is closed.
func (c *Conn) handlePacket(p eio.Packet) bool {
	switch p.Type {
	case eio.Message:
		return c.dispatch(p.Data, p.Binary)
	case eio.Ping:
		c.mu.Lock()
		c.resetHeartbeatLocked()
		c.pushControlLocked(eio.Pong)
		closed := c.closed
		c.mu.Unlock()
		return !closed
	case eio.Close:
		c.closeWith(ReasonTransportClose, nil)
		return false
	default:
		// open (again), pong, upgrade, noop: nothing to do. A noop is how
		// the server releases a poll during an upgrade.
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		return !closed
	}
}

// dispatch calls OnMessage unless the connection is closed.
func (c *Conn) dispatch(data []byte, binary bool) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.dispatching = true
	c.mu.Unlock()
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(data, binary)
	}
	c.mu.Lock()
	c.dispatching = false
	closed := c.closed
	c.mu.Unlock()
	return !closed
}

// notify sends a signal on a capacity-1 channel without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
