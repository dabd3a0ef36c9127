package redis

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/ioswarm/ioswarm/adapter"
)

// A node's subscriptions on its one subscription connection:
//
//   - one pattern, K#*, for the broadcasts of every namespace (filtered
//     locally by dispatchBroadcast). Redis matches every PUBLISH against
//     every pattern of every client, so a pattern per namespace made
//     PUBLISH slower for the whole cluster with each namespace a node
//     served (20,000 namespaces took it from ~27k/s to ~700/s);
//   - the request and response channels of each namespace, exactly: Node
//     counts the nodes of a namespace with PUBSUB NUMSUB on its request
//     channel, which does not count pattern subscribers.
//
// Adapters reference what they use; subscribing and unsubscribing is
// decided under subscriptions.mu (reference counts going from 0 to 1 or
// from 1 to 0) and carried out by one goroutine, subscribeLoop, outside
// any lock. That goroutine compares what is wanted with what it last sent,
// so decisions reach Redis in order (an UNSUBSCRIBE never overtakes the
// SUBSCRIBE of a namespace created again), and a burst of them (thousands
// of namespaces closing) is coalesced into a few commands. After each
// batch it sends a PING carrying the number of the last decision it
// covers; Redis answers in order, so the PONG confirms that every command
// before it was applied (the channel is counted by NUMSUB). A new adapter
// waits for that confirmation.

// syncPrefix starts the payload of the PINGs that confirm subscriptions.
const syncPrefix = "ioswarm-sync-"

// maxSubArgs bounds the channels of one SUBSCRIBE or UNSUBSCRIBE command.
const maxSubArgs = 1024

// subscriptions is the subscription state of a Factory. Its fields are
// guarded by mu.
type subscriptions struct {
	mu        sync.Mutex
	refs      map[string]int      // "p:"+pattern or "c:"+channel → adapters using it
	dirty     map[string]struct{} // keys whose wanted state changed since subscribeLoop last looked
	decided   uint64              // number of the last decision that changed what is wanted
	confirmed uint64              // last decision confirmed by Redis (its PONG came back)
	notify    chan struct{}       // closed and replaced when confirmed grows
	wake      chan struct{}       // capacity 1: work for subscribeLoop
}

func (s *subscriptions) init() {
	s.refs = make(map[string]int)
	s.dirty = make(map[string]struct{})
	s.notify = make(chan struct{})
	s.wake = make(chan struct{}, 1)
}

// keys returns the subscriptions a uses.
func (f *Factory) keys(a *Adapter) []string {
	return []string{"p:" + f.bcastPattern, "c:" + a.requestChannel, "c:" + a.responseChannel, "c:" + a.privateChannel}
}

// retain adds a's references and returns the number of the decision to
// wait for before a's subscriptions are in place.
func (f *Factory) retain(a *Adapter) uint64 { return f.subs.change(f.keys(a), +1) }

// drop removes a's references.
func (f *Factory) drop(a *Adapter) { f.subs.change(f.keys(a), -1) }

// change adds delta to the references of keys. Counts may go below zero for
// a moment (an adapter closed between its registration and its retain):
// only whether a count is positive matters.
func (s *subscriptions) change(keys []string, delta int) uint64 {
	s.mu.Lock()
	changed := false
	for _, k := range keys {
		old := s.refs[k]
		n := old + delta
		if n == 0 {
			delete(s.refs, k)
		} else {
			s.refs[k] = n
		}
		if (old > 0) != (n > 0) {
			s.dirty[k] = struct{}{}
			changed = true
		}
	}
	if changed {
		s.decided++
	}
	gen := s.decided
	s.mu.Unlock()
	if changed {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return gen
}

// pong handles the PONG of a PING sent on the subscription connection.
func (s *subscriptions) pong(payload string) {
	tok, ok := strings.CutPrefix(payload, syncPrefix)
	if !ok {
		return // the receiver's health ping
	}
	gen, err := strconv.ParseUint(tok, 10, 64)
	if err != nil {
		return
	}
	s.confirm(gen)
}

// confirm records that decision gen is in place.
func (s *subscriptions) confirm(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen > s.confirmed {
		s.confirmed = gen
		close(s.notify)
		s.notify = make(chan struct{})
	}
}

// awaitSubscribed waits until Redis confirmed decision gen.
func (f *Factory) awaitSubscribed(ctx context.Context, gen uint64) error {
	s := &f.subs
	for {
		s.mu.Lock()
		ok, ch := s.confirmed >= gen, s.notify
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return adapter.ErrClosed
		}
	}
}

// subBatch is what one round of subscribeLoop sends.
type subBatch struct {
	psub, punsub, sub, unsub []string
	gen                      uint64
}

// subscribeLoop carries out the subscription decisions until Close (which
// drops every subscription by closing the connection).
func (f *Factory) subscribeLoop() {
	defer f.wg.Done()
	s := &f.subs
	sent := make(map[string]bool) // keys subscribed, as go-redis records them
	opened := false               // whether a (P)SUBSCRIBE was sent: see connOpened
	for {
		select {
		case <-f.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.dirty) == 0 {
				s.mu.Unlock()
				break
			}
			dirty := s.dirty
			s.dirty = make(map[string]struct{})
			b := subBatch{gen: s.decided}
			for k := range dirty {
				want := s.refs[k] > 0
				if want == sent[k] {
					continue // undone before we looked
				}
				if want {
					sent[k] = true
				} else {
					delete(sent, k)
				}
				name := k[2:]
				switch {
				case k[0] == 'p' && want:
					b.psub = append(b.psub, name)
				case k[0] == 'p':
					b.punsub = append(b.punsub, name)
				case want:
					b.sub = append(b.sub, name)
				default:
					b.unsub = append(b.unsub, name)
				}
			}
			s.mu.Unlock()
			if !opened && len(b.sub) == 0 && len(b.psub) == 0 {
				// Nothing was ever subscribed: nothing to undo or confirm,
				// and a PING would open the connection on any node.
				s.confirm(b.gen)
				continue
			}
			f.sendSubscriptions(&b)
			if !opened {
				opened = true
				close(f.connOpened)
			}
			select {
			case <-f.done:
				return
			default:
			}
		}
	}
}

// sendSubscriptions sends a batch, then the PING that confirms it. go-redis
// records a subscription even when the command fails (and makes it when it
// reconnects) and forgets an unsubscribed one even when the command fails,
// so a failure is only logged: the waiting adapters then wait until their
// timeout.
func (f *Factory) sendSubscriptions(b *subBatch) {
	ctx, cancel := f.ioContext()
	defer cancel()
	send := func(what string, fn func(context.Context, ...string) error, names []string) {
		for len(names) > 0 {
			n := min(len(names), maxSubArgs)
			if err := fn(ctx, names[:n]...); err != nil {
				f.log.Debug("redis: "+what, "channels", n, "err", err)
			}
			names = names[n:]
		}
	}
	send("unsubscribe", f.ps.Unsubscribe, b.unsub)
	send("punsubscribe", f.ps.PUnsubscribe, b.punsub)
	send("subscribe", f.ps.Subscribe, b.sub)
	send("psubscribe", f.ps.PSubscribe, b.psub)
	if err := f.ps.Ping(ctx, syncPrefix+strconv.FormatUint(b.gen, 10)); err != nil {
		f.log.Debug("redis: subscription ping", "err", err)
	}
}
