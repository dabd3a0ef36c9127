package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
)

// CountSubscribers returns the subscribers of channel: PUBSUB NUMSUB, or
// SHARDNUMSUB when sharded, on Redis, or on every master of a Redis
// Cluster, summed (as Node does: a master only counts its own clients).
func CountSubscribers(ctx context.Context, client goredis.UniversalClient, channel string, sharded bool) (int, error) {
	count := func(ctx context.Context, c goredis.Cmdable) *goredis.MapStringIntCmd {
		if sharded {
			return c.PubSubShardNumSub(ctx, channel)
		}
		return c.PubSubNumSub(ctx, channel)
	}
	if cc, ok := client.(*goredis.ClusterClient); ok {
		// After an error, a master that does not answer may have been
		// replaced (a failover): the next count must see its replica.
		masters, err := Masters(ctx, cc)
		if err != nil {
			ReloadState(cc)
			return 0, err
		}
		var total atomic.Int64
		var first error
		var once sync.Once
		var wg sync.WaitGroup
		for _, c := range masters {
			wg.Go(func() {
				m, err := count(ctx, c).Result()
				total.Add(m[channel])
				if err != nil {
					once.Do(func() { first = err })
				}
			})
		}
		wg.Wait()
		if first != nil {
			ReloadState(cc)
			return 0, first
		}
		return int(total.Load()), nil
	}
	m, err := count(ctx, client).Result()
	if err != nil {
		return 0, err
	}
	return int(m[channel]), nil
}

// CountNodes is CountSubscribers of a namespace's channel, which every
// node of the namespace subscribes to, for Transport.ServerCount: a
// Redis that does not answer in time gives an *adapter.TimeoutError.
func CountNodes(ctx context.Context, client goredis.UniversalClient, channel string, sharded bool) (int, error) {
	n, err := CountSubscribers(ctx, client, channel, sharded)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			err = &adapter.TimeoutError{Message: "timeout reached while counting the nodes: " + err.Error()}
		}
		cmd := "NUMSUB"
		if sharded {
			cmd = "SHARDNUMSUB"
		}
		return 0, fmt.Errorf("redis: count servers (PUBSUB %s %s): %w", cmd, channel, err)
	}
	return n, nil
}

// ReloadState makes a ClusterClient read the slots of the cluster
// again (in the background), after a command or a subscription connection
// failed: the master of a slot may have died and a replica taken over.
// go-redis reloads them by itself only on a MOVED or ASK redirection and
// every ClusterStateReloadInterval (60 s by default), and a dead master
// answers nothing: until then a PubSub reconnects to the dead master again
// and again, and commands for its slots fail, long after the failover.
// Reloads are coalesced by go-redis (one at a time, 200 ms apart); the
// callers are a failed publish batch, count of the nodes or subscription
// read, each paced by its own retries.
func ReloadState(client goredis.UniversalClient) {
	if cc, ok := client.(*goredis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
}

// Masters returns the clients of the masters of cc, one each, as a CLUSTER
// SLOTS answered by one of them lists them. The clients are cc's own, from
// its cached view of the slots (MasterForKey): while that view is behind
// (a failover), a client may be the old master's, whose command fails and
// reloads the view in the background.
//
// Not ForEachMaster: it reloads the view first, synchronously, asking
// nodes in random order with no regard for ctx, so that with a hung node
// among those it knows (a stopped master stays known) one call in a few
// waits out a dial timeout (5 s by default) before it starts — for as long
// as the node hangs.
func Masters(ctx context.Context, cc *goredis.ClusterClient) ([]*goredis.Client, error) {
	//lint:ignore SA1019 CLUSTER SHARDS needs Redis 7; CLUSTER SLOTS also serves Redis 6 clusters (go-redis reads its slots with it too)
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []*goredis.Client
	seen := make(map[string]bool, 4)
	for _, r := range slots {
		if len(r.Nodes) == 0 || seen[r.Nodes[0].Addr] {
			continue
		}
		seen[r.Nodes[0].Addr] = true
		c, err := cc.MasterForKey(ctx, SlotKey(r.Start))
		if err != nil {
			return nil, err
		}
		if a := c.Options().Addr; a != r.Nodes[0].Addr {
			// The cached view is behind (or the node that answered): a
			// count over it would miss a master.
			ReloadState(cc)
			return nil, fmt.Errorf("slots %d-%d: master %s, %s in the client's view (reloading it)", r.Start, r.End, r.Nodes[0].Addr, a)
		}
		out = append(out, c)
	}
	return out, nil
}
