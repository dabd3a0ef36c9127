package engineio

import "time"

// timerSlot holds one of a connection's timers. Timers are time.AfterFunc
// callbacks — no goroutine waits for them — and every armed timer is counted
// in Server.wg until its callback returns or Stop cancels it, so that
// Server.Close can wait for them. gen invalidates a callback that was
// already running when its timer was stopped or re-armed. Guarded by
// Conn.mu.
type timerSlot struct {
	t   *time.Timer
	gen uint64
}

// detach forgets the timer and invalidates its callback; the caller must
// pass the result to stopTimer.
func (ts *timerSlot) detach() *time.Timer {
	t := ts.t
	ts.t = nil
	ts.gen++
	return t
}

// stopTimer cancels a detached timer, releasing its WaitGroup count if its
// callback will not run.
func stopTimer(s *Server, t *time.Timer) {
	if t != nil && t.Stop() {
		s.wg.Done()
	}
}

// armLocked (re)starts the timer in ts to call f(c, gen) after d. The caller
// holds c.mu and c is open.
func (c *Conn) armLocked(ts *timerSlot, d time.Duration, f func(c *Conn, gen uint64)) {
	stopTimer(c.srv, ts.detach())
	gen := ts.gen
	wg := &c.srv.wg
	wg.Add(1)
	ts.t = time.AfterFunc(d, func() {
		defer wg.Done()
		f(c, gen)
	})
}

// firedLocked reports whether a callback with generation gen is still
// current, and marks its timer as fired. The caller holds c.mu.
func (c *Conn) firedLocked(ts *timerSlot, gen uint64) bool {
	if c.closed || ts.gen != gen {
		return false
	}
	ts.t = nil // fired: its count is released by the callback itself
	return true
}

// startHeartbeatLocked schedules the first ping. The caller holds c.mu.
func (c *Conn) startHeartbeatLocked() {
	c.nextPingLocked()
}

// nextPingLocked puts the next ping in the wheel. The caller holds c.mu.
func (c *Conn) nextPingLocked() {
	c.armPingLocked(c.srv.cfg.PingInterval, false)
}

// armPingLocked sets the connection's heartbeat deadline, d from now: its
// next ping, or (pong) the timeout of the pong it waits for. The caller
// holds c.mu and c is open.
func (c *Conn) armPingLocked(d time.Duration, pong bool) {
	c.pingGen++
	c.srv.hb.arm(c, c.pingGen, d, pong)
}

// pingFiredLocked reports whether a heartbeat deadline armed as gen is
// still current. The caller holds c.mu.
func (c *Conn) pingFiredLocked(gen uint32) bool {
	return !c.closed && c.pingGen == gen
}

// onPingInterval queues a ping and starts the pong timeout.
func (c *Conn) onPingInterval(gen uint32) {
	c.mu.Lock()
	if !c.pingFiredLocked(gen) {
		c.mu.Unlock()
		return
	}
	if !c.pushLocked(pingPacket) {
		op := c.closeLocked(ReasonTransportError, ErrSlowConsumer)
		op.goAsync() // not on the wheel's goroutine, which serves other connections
		c.mu.Unlock()
		op.run()
		return
	}
	c.awaitingPong = true
	c.readSincePing = false
	c.armPingLocked(c.srv.cfg.PingTimeout, true)
	c.mu.Unlock()
}

// onPingTimeout closes a connection whose pong did not arrive in time —
// unless a Handler call is running. A Handler may block to apply
// backpressure (Handler.OnMessage), and while it does the reader is paused:
// the pong may have arrived and be waiting, unread, behind the message being
// handled (on polling, the client cannot even send it until the POST
// carrying that message is answered). So the timeout is re-armed for
// another PingTimeout, and when the call returns the client gets a whole
// PingTimeout from then (endDispatch) to be read: the reader moves on and
// finds the pong, or, if the client is really gone, the timeout fires for
// good. The layer that blocks bounds how long it does.
//
// The same holds when no call runs at the instant of the timeout but the
// reader dispatched a message since the ping (or the last re-arm): it is
// working through a backlog, between two calls, or its Handler call has
// handed the rest to the reader itself (RunOnReader) or to a new reader,
// and the pong may be further down. A client that sends nothing more and
// does not answer is closed one PingTimeout later.
func (c *Conn) onPingTimeout(gen uint32) {
	c.mu.Lock()
	if !c.pingFiredLocked(gen) {
		c.mu.Unlock()
		return
	}
	if c.dispatching || c.readSincePing {
		c.readSincePing = false
		c.pongDeferred = true
		c.armPingLocked(c.srv.cfg.PingTimeout, true)
		c.mu.Unlock()
		return
	}
	op := c.closeLocked(ReasonPingTimeout, nil)
	op.goAsync() // not on the wheel's goroutine, which serves other connections
	c.mu.Unlock()
	op.run()
}

// restartPongTimeoutLocked gives the client a whole PingTimeout, from now,
// to answer a ping whose timeout fell during a Handler call. The caller
// holds c.mu, and the call has just ended.
func (c *Conn) restartPongTimeoutLocked() {
	if !c.pongDeferred {
		return
	}
	c.pongDeferred = false
	if !c.closed && c.awaitingPong {
		c.armPingLocked(c.srv.cfg.PingTimeout, true)
	}
}

// onPong cancels the pong timeout and schedules the next ping. A pong that
// answers no ping is ignored.
func (c *Conn) onPong() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.awaitingPong {
		return
	}
	c.awaitingPong = false
	c.pongDeferred = false
	c.nextPingLocked()
}
