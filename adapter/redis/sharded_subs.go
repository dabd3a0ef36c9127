package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// The shard subscriptions of a node.
//
// A shard channel lives on the master of its hash slot, and one SSUBSCRIBE
// may only name channels of one slot; go-redis renews all the shard
// channels of a PubSub in one SSUBSCRIBE when it reconnects, and a
// ClusterClient's PubSub follows the slot of its first channel. So on a
// Redis Cluster the node holds one PubSub (one connection) per hash slot
// it uses, which also follows a slot to its new master after a failover;
// on a single Redis (no slots are checked there) one PubSub holds every
// channel. Each PubSub has its receiving goroutine.
//
// As in the classic adapter (subs.go), adapters reference the channels
// they use, decisions are taken under shardSubs.mu (reference counts
// going from 0 to 1 or from 1 to 0), and one goroutine, loop, carries them
// out in order outside any lock. Redis confirms each SSUBSCRIBE with one
// reply per channel: the receiving goroutine records it in live, and a new
// adapter waits for its two channels to be live (then PUBSUB SHARDNUMSUB
// counts the node).

// shardSubs is the shard subscription state of a ShardedFactory; its
// fields are guarded by mu, but conns, which only loop uses.
type shardSubs struct {
	f *ShardedFactory

	mu     sync.Mutex
	refs   map[string]int      // channel → users
	dirty  map[string]struct{} // channels whose wanted state changed
	live   map[string]struct{} // channels Redis confirmed
	notify chan struct{}       // closed and replaced when live grows
	wake   chan struct{}       // capacity 1: work for loop

	conns map[int]*shardConn // by slot (-1 without a cluster); loop's own
}

// shardConn is one subscription connection.
type shardConn struct {
	ps       *goredis.PubSub
	channels int
}

func (s *shardSubs) init(f *ShardedFactory) {
	s.f = f
	s.refs = make(map[string]int)
	s.dirty = make(map[string]struct{})
	s.live = make(map[string]struct{})
	s.notify = make(chan struct{})
	s.wake = make(chan struct{}, 1)
	s.conns = make(map[int]*shardConn)
}

// change adds delta to the references of channels.
func (s *shardSubs) change(channels []string, delta int) {
	s.mu.Lock()
	changed := false
	for _, ch := range channels {
		old := s.refs[ch]
		n := old + delta
		if n == 0 {
			delete(s.refs, ch)
		} else {
			s.refs[ch] = n
		}
		if (old > 0) != (n > 0) {
			s.dirty[ch] = struct{}{}
			changed = true
		}
	}
	s.mu.Unlock()
	if changed {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// confirmed records a reply to SSUBSCRIBE or SUNSUBSCRIBE.
func (s *shardSubs) confirmed(kind, channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind {
	case "ssubscribe":
		s.live[channel] = struct{}{}
		close(s.notify)
		s.notify = make(chan struct{})
	case "sunsubscribe":
		if s.refs[channel] <= 0 {
			delete(s.live, channel)
		}
	}
}

// await waits until every channel is live.
func (s *shardSubs) await(ctx context.Context, channels []string) error {
	for {
		s.mu.Lock()
		ok := true
		for _, ch := range channels {
			if _, l := s.live[ch]; !l {
				ok = false
				break
			}
		}
		notify := s.notify
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.f.done:
			return adapter.ErrClosed
		}
	}
}

// slotOf returns the connection key of a channel.
func (s *shardSubs) slotOf(channel string) int {
	if s.f.cluster == nil {
		return -1
	}
	return cluster.HashSlot(channel)
}

// loop carries out the subscription decisions until Close, then closes
// the connections.
func (s *shardSubs) loop() {
	defer s.f.wg.Done()
	sent := make(map[string]bool)
	defer s.closeAll()
	for {
		select {
		case <-s.f.done:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		dirty := s.dirty
		s.dirty = make(map[string]struct{})
		sub := map[int][]string{}
		unsub := map[int][]string{}
		for ch := range dirty {
			want := s.refs[ch] > 0
			if want == sent[ch] {
				continue
			}
			if want {
				sent[ch] = true
				sub[s.slotOf(ch)] = append(sub[s.slotOf(ch)], ch)
			} else {
				delete(sent, ch)
				unsub[s.slotOf(ch)] = append(unsub[s.slotOf(ch)], ch)
			}
		}
		s.mu.Unlock()
		s.apply(sub, unsub)
	}
}

// closeAll closes the connections, each on a goroutine of its own: go-redis
// holds a PubSub's lock while it reconnects (the client's DialTimeout and
// ReadTimeout, or the deadline of the receiver's command), and a Redis that
// does not answer makes every receiver reconnect at about the same time.
func (s *shardSubs) closeAll() {
	var wg sync.WaitGroup
	for _, c := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.ps.Close()
		}()
	}
	wg.Wait()
}

// apply sends a round of decisions. go-redis records a subscription even
// when its command fails, and makes it when it reconnects, so failures
// are only logged.
func (s *shardSubs) apply(sub, unsub map[int][]string) {
	ctx, cancel := s.f.ioContext(context.Background())
	defer cancel()
	for slot, chs := range unsub {
		c := s.conns[slot]
		if c == nil {
			continue
		}
		c.channels -= len(chs)
		if c.channels <= 0 {
			// Closing the connection drops its subscriptions.
			_ = c.ps.Close()
			delete(s.conns, slot)
			s.mu.Lock()
			for _, ch := range chs {
				if s.refs[ch] <= 0 {
					delete(s.live, ch)
				}
			}
			s.mu.Unlock()
			continue
		}
		for len(chs) > 0 {
			n := min(len(chs), maxSubArgs)
			if err := c.ps.SUnsubscribe(ctx, chs[:n]...); err != nil {
				s.f.log.Debug("redis: sunsubscribe", "channels", n, "err", err)
			}
			chs = chs[n:]
		}
	}
	for slot, chs := range sub {
		c := s.conns[slot]
		fresh := c == nil
		if fresh {
			// The first SSUBSCRIBE opens the connection, on the master of
			// the channels' slot; the receiver starts after it (a read
			// first would open it on any node).
			c = &shardConn{ps: s.f.client.SSubscribe(ctx)}
			s.conns[slot] = c
		}
		c.channels += len(chs)
		for len(chs) > 0 {
			n := min(len(chs), maxSubArgs)
			if err := c.ps.SSubscribe(ctx, chs[:n]...); err != nil {
				s.f.log.Debug("redis: ssubscribe", "channels", n, "err", err)
			}
			chs = chs[n:]
		}
		if fresh {
			s.f.wg.Add(1)
			go s.receive(c.ps)
		}
	}
}

// receive reads one subscription connection until it is closed
// (receiver.receive).
func (s *shardSubs) receive(ps *goredis.PubSub) {
	defer s.f.wg.Done()
	f := s.f
	r := receiver{client: f.client, ioCtx: f.ioCtx, done: f.done, log: f.log, what: "shard subscription",
		pingCtx: func() (context.Context, context.CancelFunc) {
			return f.ioContext(context.Background())
		}}
	r.receive(ps, func(msg any) {
		switch m := msg.(type) {
		case *goredis.Message:
			f.dispatch(m.Channel, m.Payload)
		case *goredis.Subscription:
			s.confirmed(m.Kind, m.Channel)
		}
	})
}
