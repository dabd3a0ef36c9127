package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The failover tests kill a master of a Redis Cluster under traffic
// (issue 12). With replicas, a replica takes over within a few seconds
// (cluster-node-timeout is 1 s) and the nodes must work across each other
// again by themselves, without a restart; without replicas, every call
// that needs the dead master must fail within its bound, and the servers
// must still close.

// failoverBound is how long after the promotion of a replica the nodes
// may take to work across each other again.
const failoverBound = 15 * time.Second

// failover kills victim while every node broadcasts, waits for a replica
// to take over, then checks the cluster (checkCluster) within
// failoverBound.
func failover(t *testing.T, rc *testkit.RedisCluster, victim, round string, nodes []*testNode, peers []*goPeer) {
	t.Helper()
	tk := startTicker(nodes)
	start := time.Now()
	rc.Kill(t, victim)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc.WaitHealthy(t, ctx)
	promoted := time.Since(start)
	recovered := checkCluster(t, round, nodes, peers, failoverBound)
	tk.stop(t, 2*time.Second)
	t.Logf("%s: killed master %s; replica promoted after %v, broadcasts back %v later", round, victim, promoted, recovered)
}

// subscriptionConns returns the number of subscribers of the request
// channel of "/" on each master: one per classic Factory whose
// subscription connection is there (PUBSUB NUMPAT would count patterns,
// not subscribers).
func subscriptionConns(t *testing.T, probe *goredis.ClusterClient, key string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	var mu sync.Mutex
	err := probe.ForEachMaster(context.Background(), func(ctx context.Context, c *goredis.Client) error {
		channel := key + "-request#/#"
		m, err := c.PubSubNumSub(ctx, channel).Result()
		mu.Lock()
		defer mu.Unlock()
		out[c.Options().Addr] = m[channel]
		return err
	})
	testkit.NoError(t, err)
	return out
}

// TestFailoverClassic kills, on a cluster of 3 masters with a replica
// each, the master holding the most subscription connections of the
// nodes (a ClusterClient opens a PubSub's connection on a random node when
// a read opens it, on the master of its first channel's slot when a
// SUBSCRIBE does, and on the master of one of its channels' slots when it
// reconnects), then the master with a replica holding the fewest.
func TestFailoverClassic(t *testing.T) {
	t.Parallel()
	rc := testkit.StartRedisClusterWithReplicas(t, 3, 1)
	key := uniqueKey(t)
	var nodes []*testNode
	for _, name := range []string{"A", "B", "C"} {
		client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs})
		nodes = append(nodes, startClientNode(t, client, key, name))
	}
	var peers []*goPeer
	for _, n := range nodes {
		peers = append(peers, dialGoPeer(t, n))
	}
	checkCluster(t, "before", nodes, peers, 10*time.Second)
	probe := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs})
	t.Cleanup(func() { _ = probe.Close() })

	pick := func(most bool) string {
		conns := subscriptionConns(t, probe, key)
		t.Logf("subscription connections per master: %v", conns)
		victim := ""
		for addr, replicas := range rc.Masters(t) {
			if replicas == 0 {
				continue
			}
			if victim == "" || (most && conns[addr] > conns[victim]) || (!most && conns[addr] < conns[victim]) {
				victim = addr
			}
		}
		testkit.True(t, victim != "", "no master with a replica left")
		return victim
	}
	failover(t, rc, pick(true), "subscriber-master", nodes, peers)
	failover(t, rc, pick(false), "other-master", nodes, peers)
}

// TestFailoverSharded kills the master of the namespace's shard channel,
// in each subscription mode (on one cluster: each mode picks a key whose
// channel's master still has a replica).
func TestFailoverSharded(t *testing.T) {
	t.Parallel()
	rc := testkit.StartRedisClusterWithReplicas(t, 3, 1)
	for _, mode := range []SubscriptionMode{SubscriptionStatic, SubscriptionDynamic, SubscriptionDynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			var key, victim string
			for i := 0; key == ""; i++ {
				testkit.True(t, i < 100, "no key found on a master with a replica")
				k := uniqueKey(t)
				m := rc.MasterOf(t, hashSlot(k+"#/#"))
				if rc.Masters(t)[m] > 0 {
					key, victim = k, m
				}
			}
			var nodes []*testNode
			for _, name := range []string{"A", "B", "C"} {
				client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs})
				nodes = append(nodes, startShardedNode(t, client, ShardedOptions{Key: key, SubscriptionMode: mode}, name).testNode)
			}
			var peers []*goPeer
			for _, n := range nodes {
				peers = append(peers, dialGoPeer(t, n))
			}
			checkCluster(t, "before", nodes, peers, 10*time.Second)
			failover(t, rc, victim, "namespace-master", nodes, peers)
		})
	}
}

// TestFailoverNoReplicas kills a master of a cluster without replicas:
// the classic and the sharded nodes keep serving their own clients, calls
// that need Redis fail within their bound with an error that says why,
// Emit does not block, and the servers close within a bound leaving no
// goroutine (not parallel, for the goroutine check).
func TestFailoverNoReplicas(t *testing.T) {
	testkit.CheckGoroutines(t)
	rc := testkit.StartRedisClusterWithReplicas(t, 3, 0)
	ckey, skey := uniqueKey(t), uniqueKey(t)
	newClient := func() *goredis.ClusterClient {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs})
	}
	classic := []*testNode{startClientNode(t, newClient(), ckey, "A"), startClientNode(t, newClient(), ckey, "B")}
	sharded := []*testNode{
		startShardedNode(t, newClient(), ShardedOptions{Key: skey}, "A").testNode,
		startShardedNode(t, newClient(), ShardedOptions{Key: skey}, "B").testNode,
	}
	var cpeers, speers []*goPeer
	for i := range 2 {
		cpeers = append(cpeers, dialGoPeer(t, classic[i]))
		speers = append(speers, dialGoPeer(t, sharded[i]))
	}
	checkCluster(t, "classic", classic, cpeers, 10*time.Second)
	checkCluster(t, "sharded", sharded, speers, 10*time.Second)
	all := append(append([]*testNode(nil), classic...), sharded...)
	peers := append(append([]*goPeer(nil), cpeers...), speers...)

	rc.Kill(t, rc.MasterOf(t, hashSlot(skey+"#/#")))
	// Right after the kill (the others still serve their slots), then once
	// the cluster reports itself down.
	expectFailures(t, "master unreachable", all, peers)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc.WaitState(t, ctx, "fail")
	expectFailures(t, "cluster down", all, peers)

	for _, n := range all {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := n.srv.Close(ctx)
		cancel()
		took := time.Since(start)
		t.Logf("%T %s: Close took %v: %v", n.srv.Of("/").Adapter(), n.name, took, err)
		testkit.True(t, took < 3*clusterTimeout+time.Second, "Close took %v", took)
	}
}

// expectFailures checks that every node still serves its own client, and
// that FetchSockets and ServerSideEmitWithAck fail within their bound.
func expectFailures(t *testing.T, what string, nodes []*testNode, peers []*goPeer) {
	t.Helper()
	const bound = 2 * time.Second
	for i, n := range nodes {
		kind := "classic"
		if _, ok := n.srv.Of("/").Adapter().(*ShardedAdapter); ok {
			kind = "sharded"
		}
		start := time.Now()
		testkit.NoError(t, n.srv.Local().Emit("local", what, n.name, i))
		// A broadcast's local part is delivered at once; what it publishes
		// may be dropped.
		err := n.srv.Emit("local-and-cluster", what, n.name, i)
		testkit.True(t, time.Since(start) < time.Second, "%s %s: Emit took %v", kind, n.name, time.Since(start))
		t.Logf("%s: %s %s: Emit: %v", what, kind, n.name, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		testkit.NoError(t, peers[i].waitAll(ctx, []string{
			"local:" + what + "," + n.name + "," + strconv.Itoa(i),
			"local-and-cluster:" + what + "," + n.name + "," + strconv.Itoa(i),
		}))
		cancel()

		for _, call := range []struct {
			name string
			fn   func(context.Context) error
		}{
			{"FetchSockets", func(ctx context.Context) error { _, err := n.srv.FetchSockets(ctx); return err }},
			{"ServerSideEmitWithAck", func(ctx context.Context) error {
				_, err := n.srv.ServerSideEmitWithAck(ctx, "whoami")
				return err
			}},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			start := time.Now()
			err := call.fn(ctx)
			took := time.Since(start)
			cancel()
			t.Logf("%s: %s %s: %s failed after %v: %v", what, kind, n.name, call.name, took, err)
			testkit.True(t, err != nil, "%s %s: %s succeeded", kind, n.name, call.name)
			testkit.True(t, took < bound+500*time.Millisecond, "%s %s: %s took %v", kind, n.name, call.name, took)
			// The error says what failed and wraps why: Redis's (a dead
			// master refuses connections; a cluster that is down answers
			// CLUSTERDOWN), or the deadline's.
			var netErr net.Error
			var redisErr goredis.Error
			testkit.True(t, errors.As(err, &netErr) || errors.As(err, &redisErr) ||
				errors.Is(err, context.DeadlineExceeded) || errors.Is(err, adapter.ErrTimeout),
				"%s: %v does not wrap the cause", call.name, err)
			testkit.True(t, strings.Contains(err.Error(), "redis: "), "%s: %q", call.name, err)
		}
	}
}
