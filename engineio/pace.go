package engineio

// Pacing a sender.
//
// Send never waits: a queue that overflows closes its connection as a slow
// consumer. A sender that can wait — a handler emitting in a loop, which the
// server would otherwise let outrun its recipients until they are cut off —
// uses SendPaced instead: once the queue is past its high-water mark (half
// of MaxQueuedMessages or of MaxQueuedBytes), SendPaced hands back a channel
// closed when a writer takes the queue, and the sender waits for it before
// sending more. The queue then stays near its high-water mark, and the
// sender goes at the pace of the writer, as TCP paces a writer to its
// reader.

// SendPaced queues msgs as Send does. When the queue is then past its
// high-water mark, it also returns a channel that is closed once a writer
// has taken the queue or the connection has closed; the caller should wait
// for it (bounded by its own timeout) before sending more to this
// connection. Every caller that finds the queue congested gets the same
// channel.
func (c *Conn) SendPaced(msgs ...*Message) (drained <-chan struct{}, err error) {
	return c.send(true, false, msgs)
}

// EnqueuePaced queues msgs as Enqueue does, pacing the caller as SendPaced
// does.
func (c *Conn) EnqueuePaced(msgs ...*Message) (drained <-chan struct{}, err error) {
	return c.send(true, true, msgs)
}

// CloseSlow closes the connection as Send does when its queue overflows
// ("transport error", ErrSlowConsumer): also for a paced sender that waited
// for a congested connection longer than it would. OnClose is called from
// a new goroutine, so callers may hold their own locks.
func (c *Conn) CloseSlow() {
	c.mu.Lock()
	op := c.closeLocked(ReasonTransportError, ErrSlowConsumer)
	op.goAsync()
	c.mu.Unlock()
	op.run()
}

// congestedLocked reports whether the queue is past its high-water mark.
func (c *Conn) congestedLocked() bool {
	cfg := &c.srv.cfg
	return 2*len(c.queue) > cfg.MaxQueuedMessages || 2*c.queued > cfg.MaxQueuedBytes
}

// releasePacedLocked wakes the senders waiting for the queue to be taken
// (or for the connection to close).
func (c *Conn) releasePacedLocked() {
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}
