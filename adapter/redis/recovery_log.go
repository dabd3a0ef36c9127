package redis

import (
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Logged broadcasts: through Redis and back, in log order (recovery.go).

// ---------------------------------------------------------------- broadcasting

// errNotSent: the publisher dropped a script without sending it (Close
// gave up on Redis).
var errNotSent = fmt.Errorf("redis: not sent: %w", adapter.ErrClosed)

// errSessionMoved: a save found the session owned by another node (its
// client reconnected there; this socket is stale).
var errSessionMoved = errors.New("redis: session restored on another node")

// broadcast logs p and delivers it to the local sockets once it comes back
// from Redis (see the order above). It returns when both happened. When p
// cannot be logged, it is delivered here without an offset and broadcast
// returns the error. When Redis did not answer within RequestsTimeout,
// broadcast returns an *adapter.TimeoutError, and the answer decides later:
// logged, p is delivered when it comes back; refused, it is delivered here.
func (r *recovery) broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	a := r.a
	pb := &pendingBroadcast{p: p, opts: opts, done: make(chan struct{}), settled: make(chan struct{})}
	if err := r.log(pb); err != nil {
		_ = a.local.Broadcast(p, opts) // never logged: delivered here, without an offset
		return err
	}
	timer := time.NewTimer(a.f.opts.RequestsTimeout)
	defer timer.Stop()
	expired := false
	select {
	case <-pb.settled:
		if pb.err != nil {
			return pb.err // delivered here if it surely was not published
		}
	case <-timer.C:
		expired = true
	}
	if !expired {
		select {
		case <-pb.done:
			return nil
		case <-timer.C:
		}
	}
	r.mu.Lock()
	switch {
	case pb.claimed:
		r.mu.Unlock()
		<-pb.done // being delivered now (or forgotten: logged closed it)
		return pb.err
	case pb.id == "":
		// No answer yet: the answer decides (logged and back: delivered
		// then; refused: delivered here).
		r.mu.Unlock()
		return &adapter.TimeoutError{Message: "timeout reached while logging a broadcast for recovery"}
	}
	// Stored, but not back: the subscription connection is down, or was
	// when Redis published it. Delivered here, once; the entry stays as a
	// tombstone for the message, should it come, until a newer one came.
	pb.claimed = true
	r.mu.Unlock()
	p.Data = adapter.AppendOffset(p.Data, pb.id)
	p.Seq = pb.seq
	_ = a.local.Broadcast(p, opts)
	close(pb.done)
	return nil
}

// logged receives the answer of logScript, on the publisher's goroutine.
// An error Redis answered, or a script never sent (dropped at Close, no
// connection to Redis), means the broadcast was not published: it is
// delivered here without an offset. Any other error (the connection broke,
// the context ended) leaves it unknown: it is forgotten, and delivered as
// another node's broadcast if its message comes — a copy here could be a
// duplicate. Either way logged claims it (unless someone did) and closes
// done: a sender whose RequestsTimeout ended just before the answer came
// finds it claimed and waits for done.
func (r *recovery) logged(nonce uint64, pb *pendingBroadcast, c goredis.Cmder) {
	id, err := c.(*goredis.Cmd).Text()
	var (
		re goredis.Error
		oe *net.OpError
	)
	notPublished := err != nil && (errors.Is(err, errNotSent) || errors.As(err, &re) ||
		errors.As(err, &oe) && oe.Op == "dial")
	r.mu.Lock()
	claim := false
	if err == nil {
		pb.id, pb.seq = id, cluster.OffsetSeq(id)
		if r.pending[nonce] == pb {
			r.known++
		}
	} else {
		pb.err = fmt.Errorf("redis: log broadcast for recovery: %w", err)
		r.dropLocked(nonce, pb)
		claim = !pb.claimed
		pb.claimed = true
	}
	close(pb.settled)
	r.mu.Unlock()
	if claim {
		if notPublished {
			_ = r.a.local.Broadcast(pb.p, pb.opts)
		}
		close(pb.done)
	}
}

// dropLocked removes a pending broadcast.
func (r *recovery) dropLocked(nonce uint64, pb *pendingBroadcast) {
	if r.pending[nonce] == pb {
		delete(r.pending, nonce)
		if pb.seq != 0 {
			r.known--
		}
	}
}

// log queues logScript for a broadcast and registers it as pending. The
// nonce is drawn and the
// script queued under one lock: a sender's scripts reach Redis in the order
// of their nonces, which logScript relies on to drop a repeated one.
func (r *recovery) log(pb *pendingBroadcast) error {
	a := r.a
	msg, err := encodeLoggedBroadcast(a.uid, a.name, pb.p, pb.opts)
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	ch := a.bcastChannel
	if len(pb.opts.Rooms) == 1 {
		ch += pb.opts.Rooms[0] + "#"
	}
	if len(msg)+len(ch)+9 > a.f.opts.MaxMessageBytes {
		return fmt.Errorf("redis: publish to %s: %d bytes > MaxMessageBytes (%d): %w",
			ch, len(msg), a.f.opts.MaxMessageBytes, cluster.ErrMessageTooLarge)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || a.isClosed() {
		return adapter.ErrClosed
	}
	if len(r.pending) >= 2*a.f.opts.MaxPendingPublishes {
		// Redis is that far behind (or its messages do not come back):
		// this node's clients get the broadcast without an offset.
		return fmt.Errorf("redis: %d broadcasts waiting to be logged: %w", len(r.pending), cluster.ErrQueueFull)
	}
	r.nonce++
	nonce := r.nonce
	msg = appendNonce(msg, nonce)
	err = a.f.runScript(logScript, []string{r.logKey, r.logBytesKey, r.sendersKey},
		[]any{ch, msg, r.opts.MaxPackets, r.opts.MaxPacketBytes,
			r.opts.MaxDisconnectionDuration.Milliseconds(), r.keyTTL.Milliseconds(), a.uid, nonce},
		len(msg)+len(ch), func(c goredis.Cmder) { r.logged(nonce, pb, c) })
	if err != nil {
		return fmt.Errorf("redis: broadcast: %w", err)
	}
	r.pending[nonce] = pb
	return nil
}

// onLogged delivers a logged broadcast that came through the subscription:
// this adapter's own — the packet it holds — or another node's.
func (r *recovery) onLogged(b *inBroadcast) {
	seq := cluster.OffsetSeq(b.offset)
	var pb *pendingBroadcast
	r.mu.Lock()
	if r.known > 0 {
		// The messages come in log order: a pending broadcast logged
		// before this one whose message has not come never will (it was
		// published while the subscription was down); one delivered by
		// the fallback needs its tombstone no more.
		for n, e := range r.pending {
			if e.seq != 0 && e.seq < seq {
				r.dropLocked(n, e)
			}
		}
	}
	if b.own && b.nonce != 0 {
		if pb = r.pending[b.nonce]; pb != nil {
			r.dropLocked(b.nonce, pb)
			if pb.claimed {
				r.mu.Unlock()
				return // delivered by the fallback
			}
			pb.claimed = true
		}
	}
	r.mu.Unlock()
	if pb != nil {
		// Nobody has delivered it yet: the offset goes on the packet itself.
		pb.p.Data = adapter.AppendOffset(pb.p.Data, b.offset)
		pb.p.Seq = seq
		_ = r.a.local.Broadcast(pb.p, pb.opts)
		close(pb.done)
		return
	}
	p := adapter.NewPacket(r.a.name, adapter.AppendOffset(b.data, b.offset), b.atts)
	p.Seq = seq
	_ = r.a.local.Broadcast(p, b.opts)
}
