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

// pingTick aligns the pings of all connections: a ping is due at the first
// multiple of pingTick (or of a tenth of PingTimeout, if smaller) past
// PingInterval.
//
// Left to itself, each connection's ping falls at its own instant, and the
// pings (and the pongs that answer them) of 10,000 connections come one by
// one: each wakes the process, whose threads then look for more work and go
// back to sleep, which cost several times the ping itself. Aligned, the
// pings due within a tick fire together, their pongs come back together,
// and one wakeup serves them all. A client allows PingInterval +
// PingTimeout for a ping, so a ping later by a tenth of PingTimeout at most
// is harmless.
const pingTick = 100 * time.Millisecond

// pingDelay returns how long from now the next ping is due: at least
// interval, up to the next multiple of tick.
func pingDelay(now time.Time, interval, tick time.Duration) time.Duration {
	if tick <= 0 {
		return interval
	}
	due := now.Add(interval)
	aligned := due.Truncate(tick)
	if aligned.Before(due) {
		aligned = aligned.Add(tick)
	}
	return aligned.Sub(now)
}

// nextPingLocked arms the timer of the next ping. The caller holds c.mu.
func (c *Conn) nextPingLocked() {
	cfg := &c.srv.cfg
	tick := min(pingTick, cfg.PingTimeout/10)
	c.armLocked(&c.pingTimer, pingDelay(time.Now(), cfg.PingInterval, tick), (*Conn).onPingInterval)
}

// onPingInterval queues a ping and starts the pong timeout.
func (c *Conn) onPingInterval(gen uint64) {
	c.mu.Lock()
	if !c.firedLocked(&c.pingTimer, gen) {
		c.mu.Unlock()
		return
	}
	if !c.pushLocked(pingPacket) {
		op := c.closeLocked(ReasonTransportError, ErrSlowConsumer)
		c.mu.Unlock()
		op.run()
		return
	}
	c.awaitingPong = true
	c.armLocked(&c.pingTimer, c.srv.cfg.PingTimeout, (*Conn).onPingTimeout)
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
func (c *Conn) onPingTimeout(gen uint64) {
	c.mu.Lock()
	if !c.firedLocked(&c.pingTimer, gen) {
		c.mu.Unlock()
		return
	}
	if c.dispatching {
		c.pongDeferred = true
		c.armLocked(&c.pingTimer, c.srv.cfg.PingTimeout, (*Conn).onPingTimeout)
		c.mu.Unlock()
		return
	}
	op := c.closeLocked(ReasonPingTimeout, nil)
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
		c.armLocked(&c.pingTimer, c.srv.cfg.PingTimeout, (*Conn).onPingTimeout)
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
