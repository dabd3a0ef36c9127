package engineio

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// compressThreshold is Node's perMessageDeflate threshold.
const compressThreshold = 1024

// wsConn is one WebSocket. It has one reader at a time (readPackets) and,
// once it is the session's active transport, one writer at a time (owner):
// the server's writers or a sender writing what the socket takes at once,
// else a goroutine of its own (writeLoop), which alone waits for the
// client and which closes the socket. A writer exists only while there is
// something to write: an idle connection holds no writer goroutine and no
// write buffer.
type wsConn struct {
	ws *websocket.Conn
	nc *bufConn

	// nowait: its writes can be made without waiting (a descriptor, no
	// TLS, no per-message deflate), so the server's writers may take it.
	nowait bool

	// Guarded by Conn.mu.
	ready bool  // the session's active transport: a writer may run
	owner owner // who writes to it (writers.go)
	// pending is the rest of a batch that the socket did not take at once,
	// from byte skip on, handed to writeLoop with the ownership.
	pending []*Message
	skip    int

	// closeCode, if not zero, is the status code of the close frame that
	// shutdown sends: set by the reader when the peer broke the protocol
	// (1007, 1009), before it closes the session.
	closeCode atomic.Uint32

	// hold is the writer's slot; writer runs writeLoop (made once: a go
	// statement with arguments allocates).
	hold   slotHold
	writer func()

	// idle is the server's idle poller (nil where there is none), park
	// this socket's registration with it, under idle.mu (park.ready is set
	// by the reader before it first arms).
	idle *idlePoll
	park parkable

	closeOnce sync.Once
}

// upgradeConn performs the WebSocket handshake. On failure the Upgrader
// has already answered and it returns nil.
func (s *Server) upgradeConn(w http.ResponseWriter, r *http.Request, hdr http.Header) *wsConn {
	hw := &hijackWriter{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(hw, r, hdr)
	if err != nil {
		s.log.Debug("engineio: websocket handshake failed", "err", err)
		return nil
	}
	ws.SetReadLimit(s.cfg.MaxPayload)
	hw.conn.timeout = s.cfg.WriteTimeout // before any writer runs
	return &wsConn{
		ws: ws, nc: hw.conn, idle: s.idlePoller(), hold: slotHold{slots: s.slots},
		nowait: hw.conn.gate.raw != nil && !s.cfg.PerMessageDeflate,
	}
}

// closeSocket closes the TCP connection without a close frame.
func (w *wsConn) closeSocket() {
	w.closeOnce.Do(func() {
		if w.idle != nil {
			w.idle.forget(w)
		}
		_ = w.nc.Conn.Close()
	})
}

// shutdown sends a close frame (best effort, bounded) and closes the
// socket, as Node's ws does on a server-side close: empty, or with the
// status code the reader recorded in closeCode.
func (w *wsConn) shutdown() {
	msg := []byte{}
	if code := w.closeCode.Load(); code != 0 {
		msg = websocket.FormatCloseMessage(int(code), "")
	}
	_ = w.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	w.closeSocket()
}

// owner says who may write to a WebSocket. Exactly one writer at a time
// takes the queue and writes it, so frames are never reordered; ownership
// changes hands only under Conn.mu.
type owner uint8

const (
	ownNone      owner = iota // nobody: nothing to write, or not ready
	ownListed                 // on the writers' list, or being written by a writer or a sender
	ownGoroutine              // the connection's own goroutine (writeLoop)
)

// scheduleLocked hands the queue of w to a writer unless one owns it: the
// server's writers, or, when they cannot take it or the connection is
// closing, its own goroutine. The caller holds c.mu.
func (c *Conn) scheduleLocked(w *wsConn) {
	if !w.ready || w.owner != ownNone {
		return
	}
	if w.nowait && !c.closed {
		w.owner = ownListed
		if c.srv.writers.push(c) {
			return
		}
		w.owner = ownNone
	}
	c.startWriterLocked(w)
}

// startWriterLocked makes writeLoop the owner of w, which nobody else owns,
// and starts it. The caller holds c.mu (which orders the WaitGroup Add, see
// the repository's LOCKING.md).
func (c *Conn) startWriterLocked(w *wsConn) {
	if !w.ready {
		return
	}
	w.owner = ownGoroutine
	c.srv.wg.Add(1)
	if w.writer == nil {
		w.writer = func() { c.writeLoop(w) }
	}
	go w.writer()
}

// writeListed writes the queue of a connection taken off the writers'
// list.
func (c *Conn) writeListed() {
	c.mu.Lock()
	w := c.ws
	if w == nil || w.owner != ownListed {
		c.mu.Unlock()
		return
	}
	if c.closed {
		c.startWriterLocked(w) // it flushes if asked and hangs up
		c.mu.Unlock()
		return
	}
	if len(c.queue) == 0 {
		w.owner = ownNone
		c.mu.Unlock()
		return
	}
	batch := c.takeLocked()
	c.mu.Unlock()
	c.writeOwned(w, batch)
}

// writeOwned writes batch, taken from the queue by the caller, which owns w
// as ownListed, without waiting for the client; then passes ownership on:
// to writeLoop with the rest if the socket did not take it all or when the
// connection is closing, back to the writers' list if more was queued
// meanwhile, else to nobody.
func (c *Conn) writeOwned(w *wsConn, batch []*Message) {
	n, all, err := w.nc.writeNow(batch)
	c.afterWrite(w, batch, n, all, err)
}

// afterWrite passes ownership on once batch was written without waiting:
// n bytes of its frames, all of them or not, or err. See writeOwned.
func (c *Conn) afterWrite(w *wsConn, batch []*Message, n int, all bool, err error) {
	c.mu.Lock()
	switch {
	case err != nil:
		c.recycleLocked(batch)
		w.owner = ownNone
		op := c.closeLocked(ReasonTransportError, err) // its writeLoop hangs up
		if op == nil {
			c.startWriterLocked(w) // closed meanwhile: hang up
		}
		// OnClose from a new goroutine: the owner may be a Send caller,
		// holding locks of its own (as for ErrSlowConsumer).
		op.goAsync()
		c.mu.Unlock()
		op.run()
		return
	case !all:
		w.pending, w.skip = batch, n
		c.startWriterLocked(w)
	case c.closed:
		c.recycleLocked(batch)
		c.startWriterLocked(w)
	case len(c.queue) > 0:
		c.recycleLocked(batch)
		if !c.srv.writers.push(c) {
			c.startWriterLocked(w)
		}
	default:
		c.recycleLocked(batch)
		w.owner = ownNone
	}
	c.mu.Unlock()
}

// writeLoop is the connection's own writer: it writes the rest of a batch
// that the socket did not take at once, then drains the queue, writing each
// batch with a single socket write and waiting for the client as needed,
// and ends when the queue is empty; on close it flushes if asked, then
// hangs up.
func (c *Conn) writeLoop(w *wsConn) {
	defer c.srv.wg.Done()
	var batch []*Message
	// pending was set with the ownership, under c.mu, before this goroutine
	// started; only the owner touches it.
	if w.pending != nil {
		// Into the loop's batch, so that nextBatch recycles its array.
		skip := w.skip
		batch, w.pending, w.skip = w.pending, nil, 0
		if err := c.writeBatch(w, batch, skip); err != nil {
			c.closeWith(ReasonTransportError, err)
			w.shutdown()
			return
		}
	}
	for {
		var closed, done bool
		w.hold.acquire()
		batch, closed, done = c.nextBatch(w, batch)
		if done {
			return // nextBatch gave the slot back
		}
		if len(batch) > 0 {
			err := c.writeBatch(w, batch, 0)
			w.hold.release()
			if err != nil {
				c.closeWith(ReasonTransportError, err)
				w.shutdown()
				return
			}
		} else {
			w.hold.release()
		}
		if closed {
			w.shutdown()
			return
		}
	}
}

// nextBatch recycles the previous batch and takes the next one. It returns
// done, marking the writer stopped, when there is nothing to write; when
// the connection is closed it returns closed, with a last batch only if the
// close asked for a flush.
func (c *Conn) nextBatch(w *wsConn, prev []*Message) (batch []*Message, closed, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev != nil {
		c.recycleLocked(prev)
	}
	if len(c.queue) == 0 && !c.closed {
		// The slot goes back before the socket does: the next owner (a new
		// writeLoop) uses the same hold. (Never blocks: we hold a token.)
		w.hold.release()
		w.owner = ownNone
		return nil, false, true
	}
	if c.closed && !c.flushOnClose {
		return nil, true, false
	}
	return c.takeLocked(), c.closed, false
}

// writeBatch writes every packet of batch, from byte skip of its frames
// on (the rest of a batch begun by writeNow; never with per-message
// deflate), collected into one socket write.
func (c *Conn) writeBatch(w *wsConn, batch []*Message, skip int) error {
	w.nc.begin(&w.hold)
	var err error
	for _, m := range batch {
		if !c.srv.cfg.PerMessageDeflate {
			// Frames go straight into the batch buffer; gorilla writes
			// only control frames, each in one Write, so frames never
			// interleave.
			f := m.wsFrame()
			if skip >= len(f) {
				skip -= len(f)
				continue
			}
			f, skip = f[skip:], 0
			if _, err = w.nc.Write(f); err != nil {
				break
			}
			continue
		}
		var pm *websocket.PreparedMessage
		if pm, err = m.prepared(); err != nil {
			break
		}
		w.ws.EnableWriteCompression(len(m.data) >= compressThreshold)
		if err = w.ws.WritePreparedMessage(pm); err != nil {
			break
		}
	}
	if ferr := w.nc.flush(); err == nil {
		err = ferr
	}
	return err
}

// readLoop is the reader goroutine of a WebSocket-first session.
func (c *Conn) readLoop(w *wsConn) {
	defer c.srv.wg.Done()
	c.readPackets(w)
}

// readPackets reads the session's packets from its active WebSocket until
// the connection closes.
func (c *Conn) readPackets(w *wsConn) {
	for {
		// Only a socket with a descriptor can be parked (not TLS): others
		// read as before, without the timed wait.
		if w.idle != nil && w.nc.gate.raw != nil && !c.readIdle(w) {
			return // parked: the idle poller resumes reading
		}
		mt, data, err := w.readMessage(c.srv.cfg.MaxPayload)
		if err != nil {
			reason, cause := readCloseReason(err)
			c.closeWith(reason, cause)
			return
		}
		var p packet
		if mt == websocket.BinaryMessage {
			p = packet{Type: typeMessage, Binary: true, Data: data}
		} else if p, err = decodePacket(data); err != nil {
			c.closeWith(ReasonParseError, err)
			return
		}
		c.readMu.Lock()
		c.onReader = true
		open := c.handlePacket(p)
		c.onReader = false
		r := c.deferred
		c.deferred = nil
		c.readMu.Unlock()
		if r != nil && !c.srv.lend.run(c, w, r) {
			return // another reader took over while r ran
		}
		if !open {
			return
		}
	}
}
