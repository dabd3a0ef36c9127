package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The failover tests kill a master of a Redis Cluster under traffic
// (issue 12). With replicas, a replica takes over within a few seconds
// (cluster-node-timeout is 1 s) and the nodes must work across each other
// again by themselves, without a restart; without replicas, every call
// that needs the dead master must fail within its bound, and the servers
// must still close. Both run the classic adapter and the sharded one in
// its three modes side by side, on one cluster: a failover takes seconds,
// one kill serves them all.

// failoverBound is how long after the promotion of a replica the nodes
// may take to work across each other again.
const failoverBound = 15 * time.Second

// hungFailoverBound is failoverBound after a master that hangs: a node
// notices a silent subscription connection within 8 s (idleTimeout +
// pingTimeout), and a command to the hung master takes go-redis's retries
// (RequestsTimeout in all, with ContextTimeoutEnabled) before its slot map
// is reloaded, which may itself ask the hung master first.
const hungFailoverBound = 40 * time.Second

// failoverGroup is a cluster of ioswarm nodes on one kind of adapter and
// one key, each node with a client of its own.
type failoverGroup struct {
	name  string
	key   string
	nodes []*testNode
	peers []*goPeer
}

// startGroup starts nodes A, B and C, each with its own ClusterClient on
// rc — on the classic adapter when mode is empty, else on the sharded one
// in mode — and connects a client to each.
func startGroup(t *testing.T, rc *testkit.RedisCluster, name, key string, mode SubscriptionMode) *failoverGroup {
	t.Helper()
	g := &failoverGroup{name: name, key: key}
	for _, n := range []string{"A", "B", "C"} {
		// ContextTimeoutEnabled, as the package documentation advises. Without
		// it a read to a hung master ends only at ReadTimeout: before the
		// publisher gave PUBLISHes a deadline all the same (which go-redis
		// checks between its retries), a publish retried for up to 36 s with
		// the slot map stale, and 4 runs in 7 exceeded the bounds below. With
		// the deadline, 8 runs in 9 passed (classic: 0.1–15.4 s); in the
		// ninth, a burst waited more than 5 s behind a publish's read.
		client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs, ContextTimeoutEnabled: true})
		if mode == "" {
			g.nodes = append(g.nodes, startClientNode(t, client, key, n))
		} else {
			g.nodes = append(g.nodes, startShardedNode(t, client, ShardedOptions{Key: key, SubscriptionMode: mode}, n).testNode)
		}
	}
	for _, n := range g.nodes {
		g.peers = append(g.peers, dialGoPeer(t, n))
	}
	// B's client is in a room: broadcasts to it travel on the room's own
	// channel (another slot, maybe another master; sharded: a shard
	// subscription of its own in the dynamic modes).
	s := g.nodes[1].srv.Of("/").Socket(g.peers[1].id)
	testkit.True(t, s != nil, "socket of B")
	testkit.NoError(t, s.Join(failoverRoom))
	return g
}

// checkGroups runs checkCluster on every group at once.
func checkGroups(t *testing.T, round string, groups []*failoverGroup, within time.Duration) {
	t.Helper()
	ok := t.Run(round, func(t *testing.T) {
		for _, g := range groups {
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				recovered := checkCluster(t, round, g.nodes, g.peers, within)
				t.Logf("%s: broadcasts across nodes after %v", g.name, recovered)
			})
		}
	})
	if !ok {
		t.FailNow()
	}
}

// failover kills victim (or, with hang, stops it: its connections stay
// open and silent) while every node broadcasts, waits for a replica to take
// over, then checks every group within failoverBound.
func failover(t *testing.T, rc *testkit.RedisCluster, victim, round string, hang bool, groups []*failoverGroup) {
	t.Helper()
	var nodes []*testNode
	for _, g := range groups {
		nodes = append(nodes, g.nodes...)
	}
	tk := startTicker(nodes)
	start := time.Now()
	what := "killed"
	if hang {
		what = "stopped"
		rc.Hang(t, victim)
	} else {
		rc.Kill(t, victim)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc.WaitHealthy(t, ctx)
	t.Logf("%s: %s master %s; a replica took over after %v", round, what, victim, time.Since(start))
	bound := failoverBound
	if hang {
		bound = hungFailoverBound
	}
	checkGroups(t, round, groups, bound)
	tk.stop(t, 2*time.Second)
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

// keyOn returns a new key whose namespace channel K#/# (the sharded
// adapter's channel of "/") is served by master.
func keyOn(t *testing.T, rc *testkit.RedisCluster, master string) string {
	t.Helper()
	for range 200 {
		k := uniqueKey(t)
		if rc.MasterOf(t, cluster.HashSlot(k+"#/#")) == master {
			return k
		}
	}
	t.Fatalf("no key found for master %s", master)
	return ""
}

// TestFailover kills, on a cluster of 3 masters with a replica each, the
// master holding the most subscription connections of the classic nodes,
// which also serves the channel of "/" of the sharded nodes, then a
// master with a replica holding the fewest, then stops (SIGSTOP) the last
// master with a replica. A ClusterClient opens a
// PubSub's connection on the master of its first channel's slot (when it
// reconnects too: of one of its channels), and a shard PubSub on the
// master of its channels' slot.
func TestFailover(t *testing.T) {
	t.Parallel()
	rc := testkit.StartRedisClusterWithReplicas(t, 3, 1)
	classic := startGroup(t, rc, "classic", uniqueKey(t), "")
	probe := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: rc.Addrs})
	t.Cleanup(func() { _ = probe.Close() })
	pick := func(most bool) string {
		conns := subscriptionConns(t, probe, classic.key)
		t.Logf("classic subscription connections per master: %v", conns)
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
	victim := pick(true)
	groups := []*failoverGroup{classic}
	for _, mode := range []SubscriptionMode{SubscriptionStatic, SubscriptionDynamic, SubscriptionDynamicPrivate} {
		groups = append(groups, startGroup(t, rc, "sharded-"+string(mode), keyOn(t, rc, victim), mode))
	}
	checkGroups(t, "before", groups, 10*time.Second)
	failover(t, rc, victim, "subscriber-master", false, groups)
	failover(t, rc, pick(false), "other-master", false, groups)
	// The last master with a replica hangs instead: nothing closes the
	// connections to it, the subscribers must notice it themselves.
	failover(t, rc, pick(true), "hung-master", true, groups)
}

// TestFailoverNoReplicas kills a master of a cluster without replicas:
// the classic and the sharded nodes keep serving their own clients, calls
// that need Redis fail within their bound with an error that says why,
// Emit does not block, and the servers close within a bound leaving no
// goroutine (not parallel, for the goroutine check).
func TestFailoverNoReplicas(t *testing.T) {
	testkit.CheckGoroutines(t)
	rc := testkit.StartRedisClusterWithReplicas(t, 3, 0)
	groups := []*failoverGroup{
		startGroup(t, rc, "classic", uniqueKey(t), ""),
		startGroup(t, rc, "sharded", uniqueKey(t), SubscriptionDynamic),
	}
	checkGroups(t, "before", groups, 10*time.Second)

	rc.Kill(t, rc.MasterOf(t, cluster.HashSlot(groups[1].key+"#/#")))
	// Right after the kill (the others still serve their slots), then once
	// the cluster reports itself down.
	expectFailures(t, "master-unreachable", groups)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc.WaitState(t, ctx, "fail")
	expectFailures(t, "cluster-down", groups)

	for _, g := range groups {
		for _, n := range g.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			err := n.srv.Close(ctx)
			cancel()
			took := time.Since(start)
			t.Logf("%s %s: Close took %v: %v", g.name, n.name, took, err)
			testkit.True(t, took < 3*clusterTimeout+time.Second, "%s %s: Close took %v", g.name, n.name, took)
		}
	}
}

// expectFailures checks, on every node at once, that it still serves its
// own client, and that FetchSockets and ServerSideEmitWithAck fail within
// their bound with an error that wraps the cause.
func expectFailures(t *testing.T, what string, groups []*failoverGroup) {
	t.Helper()
	const bound = 2 * time.Second
	ok := t.Run(what, func(t *testing.T) {
		for _, g := range groups {
			for i, n := range g.nodes {
				t.Run(g.name+"-"+n.name, func(t *testing.T) {
					t.Parallel()
					expectNodeFailures(t, what, n, g.peers[i], bound)
				})
			}
		}
	})
	if !ok {
		t.FailNow()
	}
}

func expectNodeFailures(t *testing.T, what string, n *testNode, peer *goPeer, bound time.Duration) {
	start := time.Now()
	testkit.NoError(t, n.srv.Local().Emit("local", what))
	// A broadcast's local part is delivered at once; what it publishes
	// may be dropped.
	err := n.srv.Emit("local-and-cluster", what)
	testkit.True(t, time.Since(start) < time.Second, "Emit took %v", time.Since(start))
	t.Logf("Emit: %v", err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	testkit.NoError(t, peer.waitAll(ctx, []string{"local:" + what, "local-and-cluster:" + what}))
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
		t.Logf("%s failed after %v: %v", call.name, took, err)
		testkit.True(t, err != nil, "%s succeeded", call.name)
		testkit.True(t, took < bound+500*time.Millisecond, "%s took %v", call.name, took)
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
