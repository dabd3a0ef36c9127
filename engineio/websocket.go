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

// wsConn is one WebSocket. It has exactly one reader goroutine (readLoop)
// and, once it is the session's active transport, at most one writer
// goroutine (writeLoop), which owns closing the socket. The writer runs
// only while there is something to write: an idle connection holds no
// writer goroutine and no write buffer.
type wsConn struct {
	ws *websocket.Conn
	nc *bufConn

	// Guarded by Conn.mu.
	ready   bool // the session's active transport: a writer may run
	running bool // a writer goroutine is running

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
	return &wsConn{ws: ws, nc: hw.conn, idle: s.idlePoller(), hold: slotHold{slots: s.slots}}
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

// startWriterLocked starts the writer of w unless one runs. The caller
// holds c.mu (which orders the WaitGroup Add, see the repository's
// LOCKING.md).
func (c *Conn) startWriterLocked(w *wsConn) {
	if !w.ready || w.running {
		return
	}
	w.running = true
	c.srv.wg.Add(1)
	if w.writer == nil {
		w.writer = func() { c.writeLoop(w) }
	}
	go w.writer()
}

// writeLoop is the writer of the session's active WebSocket: it drains the
// queue, writing each batch with a single socket write, and ends when the
// queue is empty; on close it flushes if asked, then hangs up.
func (c *Conn) writeLoop(w *wsConn) {
	defer c.srv.wg.Done()
	var batch []*Message
	for {
		var closed, done bool
		w.hold.acquire()
		batch, closed, done = c.nextBatch(w, batch)
		if done {
			w.hold.release()
			return
		}
		if len(batch) > 0 {
			err := c.writeBatch(w, batch)
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
		w.running = false
		return nil, false, true
	}
	if c.closed && !c.flushOnClose {
		return nil, true, false
	}
	return c.takeLocked(), c.closed, false
}

// writeBatch writes every packet of batch, collected into one socket write.
func (c *Conn) writeBatch(w *wsConn, batch []*Message) error {
	w.nc.begin(&w.hold)
	var err error
	for _, m := range batch {
		if !c.srv.cfg.PerMessageDeflate {
			// Frames go straight into the batch buffer; gorilla writes
			// only control frames, each in one Write, so frames never
			// interleave.
			if _, err = w.nc.Write(m.wsFrame()); err != nil {
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
		open := c.handlePacket(p)
		c.readMu.Unlock()
		if !open {
			return
		}
	}
}
