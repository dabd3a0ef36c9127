package server

import (
	"sync"
	"time"

	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/parser"
)

// Backpressure on what a client sends.
//
// Packets that run user code (events, and the middlewares of a CONNECT) are
// queued on their socket's handler goroutine, so that the connection's read
// path never waits for a handler. What waits there is bounded per
// connection, in count and bytes: once a packet takes the connection over
// its budget, the read path (engineio's OnMessage) blocks until handlers
// have caught up. The connection's reader then stops reading, and TCP slows
// the sender down — a fast client is throttled, never disconnected for
// being fast (Node reads as fast as it handles; we read as fast as we
// handle plus the budget).
//
// While the reader is blocked, nothing else from that client is read: not
// its pongs (engineio does not time a connection out while OnMessage runs)
// and not its acknowledgements. A handler that waits for an answer from its
// own client that is stuck behind the budget can therefore only end by its
// context; and if no handler of the connection finishes anything for
// PingInterval+PingTimeout while the reader waits, the connection is closed
// as a ping timeout would close it: we cannot tell whether the client is
// still there.
type inbox struct {
	mu       sync.Mutex
	count    int           // packets queued or running
	bytes    int64         // their size
	progress chan struct{} // made when the reader first waits; signals a release
}

// packetSize is what a queued packet holds in memory.
func packetSize(p *parser.Packet) int64 {
	n := int64(len(p.Data))
	for _, a := range p.Attachments {
		n += int64(len(a))
	}
	return n
}

// acquire counts a packet about to be queued for a handler.
func (c *client) acquire(n int64) {
	c.in.mu.Lock()
	c.in.count++
	c.in.bytes += n
	c.in.mu.Unlock()
}

// release counts a packet whose handler returned, and wakes a waiting
// reader.
func (c *client) release(n int64) {
	c.in.mu.Lock()
	c.in.count--
	c.in.bytes -= n
	ch := c.in.progress
	c.in.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// overBudgetLocked reports whether the reader must wait. One packet is
// always let through, however large (the transport bounds its size).
func (c *client) overBudgetLocked() bool {
	in := &c.in
	return in.count > 1 && (in.count > c.srv.cfg.MaxPendingEvents || in.bytes > c.srv.cfg.MaxPendingBytes)
}

// awaitBudget blocks the read path while the connection is over its budget:
// until handlers catch up, the connection closes, or handlers make no
// progress for the stall timeout.
func (c *client) awaitBudget() {
	c.in.mu.Lock()
	if !c.overBudgetLocked() {
		c.in.mu.Unlock()
		return
	}
	if c.in.progress == nil {
		c.in.progress = make(chan struct{}, 1)
	}
	ch := c.in.progress
	c.in.mu.Unlock()

	stall := c.srv.stallTimeout()
	t := time.NewTimer(stall)
	defer t.Stop()
	for {
		select {
		case <-ch:
			c.in.mu.Lock()
			over := c.overBudgetLocked()
			c.in.mu.Unlock()
			if !over {
				return
			}
			t.Reset(stall)
		case <-c.conn.Done():
			return
		case <-t.C:
			c.srv.log.Warn("server: handlers made no progress while the client waited, closing", "sid", c.conn.ID(), "after", stall)
			c.close(ReasonPingTimeout)
			return
		}
	}
}

// writeTimeout is Config.WriteTimeout or its default: how long a paced
// sender waits for a congested client.
func (s *Server) writeTimeout() time.Duration {
	if s.cfg.WriteTimeout > 0 {
		return s.cfg.WriteTimeout
	}
	return engineio.DefaultWriteTimeout
}

// stallTimeout is how long a reader waits for handlers to make progress:
// the time after which the heartbeat would have declared a silent client
// dead.
func (s *Server) stallTimeout() time.Duration {
	iv, to := s.cfg.PingInterval, s.cfg.PingTimeout
	if iv <= 0 {
		iv = engineio.DefaultPingInterval
	}
	if to <= 0 {
		to = engineio.DefaultPingTimeout
	}
	return iv + to
}
