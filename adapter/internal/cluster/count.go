package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
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
		var total atomic.Int64
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			m, err := count(ctx, c).Result()
			total.Add(m[channel])
			return err
		})
		if err != nil {
			// A master that does not answer may have been replaced (a
			// failover): the next count must see its replica.
			ReloadState(cc)
		}
		return int(total.Load()), err
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
