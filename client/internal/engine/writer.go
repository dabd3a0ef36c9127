package engine

import (
	"context"
	"fmt"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// writeLoop is the Conn's only writer: it drains the queue over the current
// transport until the close, then, for a forced close, flushes what is left
// and a close packet.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer close(c.writerDone)
	var buf []byte
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.flushClose()
			return
		}
		for {
			var err error
			var more bool
			if buf, more, err = c.writeBatch(c.ctx, buf, false); err != nil {
				c.closeWith(ReasonTransportError, err)
				return // the close is decided; writerDone lets teardown go on
			}
			if !more {
				break
			}
		}
	}
}

// writeBatch takes what the transport can carry in one go from the queue
// and writes it; when closing, a close packet follows the queue. It
// reports whether packets (or the close packet) are left.
func (c *Conn) writeBatch(ctx context.Context, buf []byte, closing bool) ([]byte, bool, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	if c.closed && !closing {
		c.mu.Unlock()
		return buf, false, nil
	}
	queue := c.queue
	// The close packet goes alone, once the queue is sent, as the JS
	// client sends it after a drain: Node handles a close at once but the
	// Socket.IO packets before it on the next tick, so in one polling
	// request with them it would overtake them (a DISCONNECT would be seen
	// as a transport close).
	closeNow := closing && len(queue) == 0
	if closeNow {
		queue = []packet{{typ: eio.Close}}
	}
	ws := c.ws
	if ws == nil {
		// Polling: what fits in maxPayload.
		var n int
		buf, n = appendBatch(buf[:0], queue, c.maxPayload)
		queue = queue[:n]
	}
	c.takeLocked(len(queue))
	more := len(c.queue) > 0 || (closing && !closeNow)
	c.mu.Unlock()
	if len(queue) == 0 {
		return buf, more, nil
	}
	var err error
	if ws != nil {
		err = c.writeFrames(ctx, ws, queue)
	} else {
		err = c.post(ctx, buf)
		if cap(buf) > 64<<10 {
			buf = nil // don't keep a large buffer
		}
	}
	if err != nil {
		return buf, more, fmt.Errorf("engine: write: %w", err)
	}
	return buf, more, nil
}

// takeLocked removes the first n packets of the queue (a close packet
// appended past its end counts for nothing).
func (c *Conn) takeLocked(n int) {
	n = min(n, len(c.queue))
	for _, p := range c.queue[:n] {
		c.queued -= len(p.data)
	}
	if n == len(c.queue) {
		c.queue = nil
		return
	}
	c.queue = c.queue[n:]
}

// flushClose sends what is queued and a close packet, within closeGrace, if
// the close is the client's (Close); the JS client does the same.
func (c *Conn) flushClose() {
	c.mu.Lock()
	flush := c.flush
	c.mu.Unlock()
	if !flush {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	var buf []byte
	for ctx.Err() == nil {
		var err error
		var more bool
		if buf, more, err = c.writeBatch(ctx, buf, true); err != nil || !more {
			break
		}
	}
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		// A normal closure, as a browser's WebSocket.close() sends.
		dl, _ := ctx.Deadline()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), dl)
	}
}
