package redis

import "sync"

// The publish queue's byte budget and pacing.
//
// The queue is a channel bounded in messages (MaxPendingPublishes); a
// message is at most MaxMessageBytes, so without a byte budget a node could
// hold MaxPendingPublishes × MaxMessageBytes for Redis. pubBudget adds
// MaxPendingPublishBytes, and lets a sender that can wait (a paced broadcast
// of this node, see adapter.Packet.EnablePacing) go at the pace of Redis:
// once the queue is past half of either bound, the sender gets a channel
// closed when the publisher has brought it back under a quarter.
type pubBudget struct {
	mu      sync.Mutex
	bytes   int64         // payload bytes queued
	drained chan struct{} // made for paced senders while congested
}

// reserve counts n bytes about to be queued; false when over budget.
func (f *Factory) reserve(n int) bool {
	b := &f.pub
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bytes > 0 && b.bytes+int64(n) > f.opts.MaxPendingPublishBytes {
		return false
	}
	b.bytes += int64(n)
	return true
}

// unreserve uncounts n bytes taken off the queue (or never queued), and
// releases paced senders once the queue is back under a quarter.
func (f *Factory) unreserve(n int) {
	b := &f.pub
	b.mu.Lock()
	b.bytes -= int64(n)
	if b.drained != nil && 4*b.bytes <= f.opts.MaxPendingPublishBytes && 4*len(f.queue) <= cap(f.queue) {
		close(b.drained)
		b.drained = nil
	}
	b.mu.Unlock()
}

// congestion returns the channel a paced sender waits on, or nil while the
// queue is under half of its bounds.
func (f *Factory) congestion() <-chan struct{} {
	b := &f.pub
	b.mu.Lock()
	defer b.mu.Unlock()
	if 2*b.bytes <= f.opts.MaxPendingPublishBytes && 2*len(f.queue) <= cap(f.queue) {
		return nil
	}
	if b.drained == nil {
		b.drained = make(chan struct{})
	}
	return b.drained
}

// releasePaced wakes every paced sender (the publisher is stopping).
func (f *Factory) releasePaced() {
	b := &f.pub
	b.mu.Lock()
	if b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
	b.mu.Unlock()
}
