package engineio

import (
	"net/http"
	"time"
)

// lingerTimeout bounds how long a closed polling session waits for the GET
// that takes its last packets (Node's closeTimeout).
const lingerTimeout = 30 * time.Second

// A polling session closed by the server lingers, like Node's: it stays
// registered so that the client's next GETs receive what was queued (say,
// the DISCONNECT packets written just before the close) and then, in a
// response of its own, the close packet. The close packet must not share a
// payload with the packets before it: socket.io-client handles the Engine.IO
// close at once but Socket.IO packets on the next tick, so a DISCONNECT in
// the same payload would be reported after "transport close".

// lingerLocked decides, while closing, whether the session lingers, and
// arms the timer that ends it. The caller holds c.mu.
func (c *Conn) lingerLocked() bool {
	if c.reason != ReasonForcedClose || c.ws != nil || c.handler == nil {
		return false
	}
	c.lingering = true
	wg := &c.srv.wg
	wg.Add(1)
	c.lingerTimer = time.AfterFunc(lingerTimeout, func() {
		defer wg.Done()
		c.endLinger()
	})
	return true
}

// endLinger forgets a lingering session. Safe to call on any connection.
func (c *Conn) endLinger() {
	c.mu.Lock()
	if !c.lingering {
		c.mu.Unlock()
		return
	}
	c.lingering = false
	t := c.lingerTimer
	c.lingerTimer = nil
	c.mu.Unlock()
	stopTimer(c.srv, t)
	c.srv.unregister(c)
}

// serveLastPoll answers a GET of a lingering session: the queued packets
// if any, else the close packet, after which the session is forgotten. The
// caller holds c.mu; serveLastPoll releases it.
func (c *Conn) serveLastPoll(w http.ResponseWriter) {
	batch := c.takeLocked()
	if len(batch) > 0 {
		c.mu.Unlock()
		_ = c.writePoll(w, appendPayload(nil, batch))
		return
	}
	c.lingering = false
	t := c.lingerTimer
	c.lingerTimer = nil
	c.mu.Unlock()
	stopTimer(c.srv, t)
	_ = c.writePoll(w, closePacket.appendPolling(nil))
	c.srv.unregister(c)
}
