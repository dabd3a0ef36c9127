package engine

import (
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/internal/eio"
)

// upgradeLoop moves a polling session to WebSocket, as the JS client does:
// open a WebSocket with the sid, send "2probe", expect "3probe", pause
// polling (the GET in flight returns: the server answers it with a noop;
// the POST in flight completes: sendMu), send "5", switch. The server
// answers no poll after "5" and writes nothing to the WebSocket before it,
// so every incoming packet is read once, in order. A failed probe leaves the
// session on polling. Once switched, this goroutine is the reader.
func (c *Conn) upgradeLoop() {
	defer c.wg.Done()
	ws, err := c.dialWebSocket(c.ctx, c.id)
	if err != nil {
		return // stay on polling
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = ws.NetConn().Close()
		return
	}
	c.probe = ws // teardown closes it
	c.mu.Unlock()

	if err := c.runProbe(ws); err != nil {
		c.dropProbe(ws)
		return
	}
	c.mu.Lock()
	c.pausePoll = true
	c.mu.Unlock()
	select {
	case <-c.pollerDone:
	case <-c.stop:
		c.dropProbe(ws)
		return
	}
	if !c.switchTo(ws) {
		c.dropProbe(ws)
		return
	}
	c.readFrames(ws)
}

// runProbe sends "2probe" and waits for "3probe", for at most
// pingInterval+pingTimeout (a probe that takes longer is not worth it; the
// server gives up after its upgradeTimeout anyway).
func (c *Conn) runProbe(ws *websocket.Conn) error {
	dl := time.Now().Add(c.pingInterval + c.pingTimeout)
	_ = ws.SetWriteDeadline(dl)
	if err := ws.WriteMessage(websocket.TextMessage, []byte{eio.Ping, 'p', 'r', 'o', 'b', 'e'}); err != nil {
		return fmt.Errorf("%w: %w", errProbe, err)
	}
	_ = ws.SetReadDeadline(dl)
	mt, data, err := ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("%w: %w", errProbe, err)
	}
	if mt != websocket.TextMessage || string(data) != "3probe" {
		return fmt.Errorf("%w: answer %q", errProbe, data)
	}
	return ws.SetReadDeadline(time.Time{})
}

// switchTo sends "5" on ws and makes it the transport, under sendMu: the
// POST in flight, if any, completes first, and every later batch goes to ws.
// If the polling loop ended because the connection closed, nothing is sent.
func (c *Conn) switchTo(ws *websocket.Conn) bool {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return false
	}
	_ = ws.SetWriteDeadline(time.Now().Add(c.pingInterval + c.pingTimeout))
	if err := ws.WriteMessage(websocket.TextMessage, []byte{eio.Upgrade}); err != nil {
		// Polling is paused and the server may or may not have switched:
		// the session cannot go on.
		c.closeWith(ReasonTransportError, fmt.Errorf("engine: upgrade: %w", err))
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.probe = nil
	c.ws = ws
	c.transport = TransportWebSocket
	if len(c.queue) > 0 {
		notify(c.wake)
	}
	return true
}

// dropProbe abandons the probe WebSocket.
func (c *Conn) dropProbe(ws *websocket.Conn) {
	c.mu.Lock()
	if c.probe == ws {
		c.probe = nil
	}
	c.mu.Unlock()
	_ = ws.NetConn().Close()
}
