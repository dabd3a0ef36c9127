package redis

import (
	"context"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// TestSubscriptionConnectionOpenedBySubscribe: the subscription
// connection is opened by the first SUBSCRIBE (on a Redis Cluster, a
// master's: a first read or PING would open it on any node, replicas
// included), and decisions undone before anything was subscribed are
// confirmed without Redis, not left waiting.
func TestSubscriptionConnectionOpenedBySubscribe(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	f := newTestFactory(t, url, Options{Key: key})
	// Decided and undone before the subscription goroutine looks.
	gen := f.subs.change([]string{"c:" + key + "-gone"}, +1)
	f.subs.change([]string{"c:" + key + "-gone"}, -1)
	f.startOnce.Do(f.start)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	testkit.NoError(t, f.awaitSubscribed(ctx, gen))
	select {
	case <-f.connOpened:
		t.Fatal("the subscription connection was opened with nothing to subscribe")
	default:
	}

	a, _ := newTestAdapter(t, f, "/")
	select {
	case <-f.connOpened:
	default:
		t.Fatal("the adapter's SUBSCRIBE did not open the connection")
	}
	channel := a.requestChannel
	m, err := newClient(t, url).PubSubNumSub(ctx, channel).Result()
	testkit.NoError(t, err)
	testkit.Equal(t, m[channel], int64(1))
}
