package cluster

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

func TestSlotKey(t *testing.T) {
	testkit.Equal(t, HashSlot("foo"), 12182)
	testkit.Equal(t, HashSlot("{user1000}.following"), HashSlot("{user1000}.followers"))
	for _, slot := range []int{0, 1, 5460, 5461, 12182, 16383} {
		testkit.Equal(t, HashSlot(SlotKey(slot)), slot)
	}
}

// TestCountSubscribersHungMaster counts the subscribers of a channel on a
// Redis Cluster whose master hangs (SIGSTOP) and was replaced by its
// replica: once the client's view has caught up, every count succeeds
// within its deadline. ForEachMaster failed here about one call in six,
// after 5 s whatever the deadline: it asked the hung node for the slots
// before each count.
func TestCountSubscribersHungMaster(t *testing.T) {
	t.Parallel()
	rc := testkit.StartRedisClusterWithReplicas(t, 3, 1)
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs})
	t.Cleanup(func() { _ = cc.Close() })
	sub := cc.Subscribe(context.Background(), "ch")
	t.Cleanup(func() { _ = sub.Close() })
	_, err := sub.Receive(context.Background())
	testkit.NoError(t, err)

	count := func(ctx context.Context) (int, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return CountSubscribers(ctx, cc, "ch", false)
	}
	n, err := count(context.Background())
	testkit.NoError(t, err)
	testkit.Equal(t, n, 1)

	// Hang a master the subscription is not on.
	var victim string
	for addr, replicas := range rc.Masters(t) {
		if replicas > 0 && addr != rc.MasterOf(t, HashSlot("ch")) {
			victim = addr
			break
		}
	}
	testkit.True(t, victim != "", "no master to hang")
	rc.Hang(t, victim)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc.WaitHealthy(t, ctx)

	// Counts fail until the client's view has the replica.
	for {
		if _, err := count(ctx); err == nil {
			break
		}
		testkit.NoError(t, ctx.Err(), "no count succeeded after the failover")
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 30 {
		start := time.Now()
		n, err := count(context.Background())
		testkit.NoError(t, err, "count %d", i)
		testkit.Equal(t, n, 1)
		testkit.True(t, time.Since(start) < 1100*time.Millisecond, "count %d took %v", i, time.Since(start))
	}
}
