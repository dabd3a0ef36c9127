package engine

import "time"

// The server pings every pingInterval and waits pingTimeout for the pong
// (Engine.IO v4). A client that has heard no ping for pingInterval +
// pingTimeout knows the server would have given up on it, or is gone: it
// closes with "ping timeout", as the JS client does. Only pings re-arm the
// timer, as in the JS client.

// resetHeartbeatLocked (re)arms the ping timeout. The armed timer counts in
// wg, so that no callback outlives the Conn; a generation number voids a
// callback that fired just before a reset.
func (c *Conn) resetHeartbeatLocked() {
	if c.closed {
		return
	}
	c.pingGen++
	gen := c.pingGen
	d := c.pingInterval + c.pingTimeout
	if c.pingTimer == nil || !c.pingTimer.Stop() {
		// No timer, or one that fired (its callback calls wg.Done);
		// otherwise the stopped timer's count carries over to the new one.
		c.wg.Add(1)
	}
	c.pingTimer = time.AfterFunc(d, func() { c.onPingTimeout(gen) })
}

func (c *Conn) onPingTimeout(gen uint64) {
	defer c.wg.Done()
	c.mu.Lock()
	expired := !c.closed && gen == c.pingGen
	c.mu.Unlock()
	if expired {
		c.closeWith(ReasonPingTimeout, nil)
	}
}
