package engineio

import (
	"sync"
	"time"
)

// pingWheel holds the heartbeat deadline of every connection — its next
// ping, or the timeout of the pong it waits for — in buckets one tick
// wide, and fires each bucket with one time.Timer. A timer and its closure
// per connection cost about 100 bytes of heap, held by every idle
// connection; a bucket's timer is shared by all the deadlines of its tick.
//
// The tick is pingTick, or a tenth of PingTimeout if smaller: a deadline
// d from now falls at the end of the tick it ends in, so it fires at least
// d and less than d plus a tick from now. The deadlines of connections
// armed at different instants within one tick fire together: pings (and
// the pongs that answer them) come in batches, and one wakeup serves them
// all. Left to itself, each connection's ping would fall at its own
// instant, and those of 10,000 connections would come one by one: each
// wakes the process, whose threads then look for more work and go back to
// sleep, which cost several times the ping itself. A client allows
// PingInterval + PingTimeout for a ping, so a ping or a timeout later by a
// tenth of PingTimeout at most is harmless.
//
// A connection is in at most one bucket, linked through its hb field. A
// bucket's callback takes its connections out, then calls each with the
// generation it was armed with; the connection ignores a call whose
// generation is not current (it was re-armed or closed meanwhile). An
// empty bucket's timer is stopped at once: a server without connections
// has none. Every bucket timer is counted in Server.wg until its callback
// returns or Stop cancels it.
//
// mu is a leaf lock, taken under Conn.mu (LOCKING.md).
type pingWheel struct {
	srv  *Server
	tick time.Duration
	base time.Time // tick 0: deadlines are measured on the monotonic clock

	mu      sync.Mutex
	buckets map[int64]*hbBucket
	closed  bool
}

// hbBucket is the deadlines of one tick: a list of connections.
type hbBucket struct {
	tick int64
	head *Conn
	t    *time.Timer
}

// hbLink is a connection's place in the wheel, guarded by pingWheel.mu.
type hbLink struct {
	next, prev *Conn
	b          *hbBucket // nil while not armed
	gen        uint32    // Conn.pingGen when armed
	pong       bool      // a pong timeout, else a ping due
}

func newPingWheel(s *Server) *pingWheel {
	return &pingWheel{
		srv:     s,
		tick:    min(pingTick, s.cfg.PingTimeout/10),
		base:    time.Now(),
		buckets: make(map[int64]*hbBucket),
	}
}

// pingTick is the widest a tick of the wheel gets.
const pingTick = 100 * time.Millisecond

// dueTick returns the tick in which a deadline d after elapsed (both
// since the wheel's base) fires: the first tick boundary at or after it.
func dueTick(elapsed, d, tick time.Duration) int64 {
	if tick <= 0 {
		tick = 1
	}
	at := elapsed + d
	n := int64(at / tick)
	if time.Duration(n)*tick < at {
		n++
	}
	return n
}

// arm puts c's deadline d from now in the wheel, replacing the one it had.
// The caller holds c.mu and has just advanced c.pingGen to gen.
func (w *pingWheel) arm(c *Conn, gen uint32, d time.Duration, pong bool) {
	n := dueTick(time.Since(w.base), d, w.tick)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unlinkLocked(c)
	if w.closed {
		return
	}
	b := w.buckets[n]
	if b == nil {
		b = &hbBucket{tick: n}
		w.buckets[n] = b
		w.srv.wg.Add(1) // under mu while not closed (LOCKING.md)
		b.t = time.AfterFunc(time.Until(w.base.Add(time.Duration(n)*w.tick)), func() { w.fire(b) })
	}
	c.hb = hbLink{next: b.head, b: b, gen: gen, pong: pong}
	if b.head != nil {
		b.head.hb.prev = c
	}
	b.head = c
}

// disarm takes c's deadline out of the wheel, if it has one.
func (w *pingWheel) disarm(c *Conn) {
	w.mu.Lock()
	w.unlinkLocked(c)
	w.mu.Unlock()
}

// unlinkLocked takes c out of its bucket, stopping the bucket's timer when
// it is left empty. The caller holds w.mu.
func (w *pingWheel) unlinkLocked(c *Conn) {
	b := c.hb.b
	if b == nil {
		return
	}
	if c.hb.prev != nil {
		c.hb.prev.hb.next = c.hb.next
	} else {
		b.head = c.hb.next
	}
	if c.hb.next != nil {
		c.hb.next.hb.prev = c.hb.prev
	}
	c.hb = hbLink{}
	if b.head == nil && w.buckets[b.tick] == b {
		delete(w.buckets, b.tick)
		if b.t.Stop() {
			w.srv.wg.Done()
		}
	}
}

// hbFired is a deadline taken out of a bucket that fired.
type hbFired struct {
	c    *Conn
	gen  uint32
	pong bool
}

// fire is a bucket's timer callback: it takes the bucket's connections out
// of the wheel, then calls them, outside w.mu (they take their Conn.mu).
func (w *pingWheel) fire(b *hbBucket) {
	defer w.srv.wg.Done()
	w.mu.Lock()
	if w.buckets[b.tick] != b { // emptied or closed meanwhile: Stop was too late
		w.mu.Unlock()
		return
	}
	delete(w.buckets, b.tick)
	var due []hbFired
	for c := b.head; c != nil; {
		next := c.hb.next
		due = append(due, hbFired{c, c.hb.gen, c.hb.pong})
		c.hb = hbLink{}
		c = next
	}
	b.head = nil
	w.mu.Unlock()
	for _, f := range due {
		if f.pong {
			f.c.onPingTimeout(f.gen)
		} else {
			f.c.onPingInterval(f.gen)
		}
	}
}

// close stops every bucket's timer; the connections are closed (none arms
// again). Server.Close calls it before it waits for its WaitGroup.
func (w *pingWheel) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for n, b := range w.buckets {
		delete(w.buckets, n)
		for c := b.head; c != nil; {
			next := c.hb.next
			c.hb = hbLink{}
			c = next
		}
		if b.t.Stop() {
			w.srv.wg.Done()
		}
	}
}
