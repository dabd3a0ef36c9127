package redis

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// The topology tests run the cluster scenarios on a Redis Cluster (each node
// with its own ClusterClient) and behind a Sentinel (FailoverClient).

// startClientNode starts a server named name whose Factory uses client
// (closed at cleanup, after the node). Its server-side listener "whoami"
// answers the name.
func startClientNode(t *testing.T, client goredis.UniversalClient, key, name string) *testNode {
	t.Helper()
	t.Cleanup(func() { _ = client.Close() }) // runs after n.close
	n := &testNode{name: name}
	n.f = New(client, Options{Key: key, RequestsTimeout: clusterTimeout, Logger: testLogger(t).With("node", name)})
	n.srv = server.New(server.Config{Adapter: n.f, Logger: testLogger(t).With("node", name)})
	n.srv.Of("/").OnServerSideEmit("whoami", func(ev *server.Event) { _ = ev.Ack(name) })
	n.ts = httptest.NewServer(n.srv)
	n.url = n.ts.URL
	t.Cleanup(n.close)
	return n
}

func TestRedisClusterTopology(t *testing.T) {
	t.Parallel()
	addrs := testkit.StartRedisCluster(t, 3)
	key := uniqueKey(t)
	var nodes []*testNode
	for _, name := range []string{"A", "B", "C"} {
		client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		nodes = append(nodes, startClientNode(t, client, key, name))
	}
	A, B, C := nodes[0], nodes[1], nodes[2]
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A, "/")
	b := connectTo(t, drv, B, "/")
	c := connectTo(t, drv, C, "/")
	ctx := context.Background()

	t.Run("broadcast", func(t *testing.T) {
		testkit.NoError(t, A.srv.Emit("all", "x", []byte{1, 2}))
		for _, cl := range []*tclient{a, b, c} {
			testkit.Equal(t, next(t, cl, "all"), []any{"x", []byte{1, 2}})
		}
		B.sock(t, b).Join("r1")
		// One room: published on the room's own channel (another slot, so
		// usually another master), received through the PSUBSCRIBE pattern.
		// On a Redis Cluster, messages published on different channels
		// reach a subscriber through different masters: their order is not
		// kept, so each event is awaited by name.
		testkit.NoError(t, A.srv.To("r1").Emit("to-r1", "A"))
		testkit.NoError(t, C.srv.To("r1").Emit("to-r1", "C"))
		got := []string{}
		for range 2 {
			args := next(t, b, "to-r1")
			testkit.Equal(t, len(args), 1)
			got = append(got, args[0].(string))
		}
		sort.Strings(got)
		testkit.Equal(t, got, []string{"A", "C"})
		testkit.NoError(t, A.srv.Emit("mA"))
		for _, cl := range []*tclient{a, b, c} {
			_ = next(t, cl, "mA")
		}
		time.Sleep(100 * time.Millisecond)
		for _, cl := range []*tclient{a, c} {
			_, ok := cl.TryNext("to-r1")
			testkit.True(t, !ok, "%s got a message of room r1", cl.id)
		}
	})

	// A node's PUBLISHes go to the master of their channel's slot (go-redis
	// would send this keyless command to each master in turn), so that its
	// messages on one channel keep their order.
	t.Run("publish by slot", func(t *testing.T) {
		probe := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = probe.Close() })
		testkit.NoError(t, probe.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.ConfigResetStat(ctx).Err()
		}))
		for i := range 30 {
			testkit.NoError(t, A.srv.Emit("ordered", i))
		}
		for i := range 30 {
			testkit.Equal(t, next(t, b, "ordered"), []any{float64(i)})
		}
		master, err := probe.MasterForKey(ctx, key+"#/#")
		testkit.NoError(t, err)
		var mu sync.Mutex
		calls := map[string]int{}
		testkit.NoError(t, probe.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			info, err := c.Info(ctx, "commandstats").Result()
			n := 0
			if _, rest, ok := strings.Cut(info, "cmdstat_publish:calls="); ok {
				n, _ = strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			}
			mu.Lock()
			calls[c.Options().Addr] = n
			mu.Unlock()
			return err
		}))
		want := map[string]int{}
		for addr := range calls {
			want[addr] = 0
		}
		want[master.Options().Addr] = 30
		testkit.Equal(t, calls, want, "PUBLISH calls per master")
	})

	t.Run("ServerCount", func(t *testing.T) {
		for _, n := range nodes {
			count, err := n.srv.Of("/").Adapter().ServerCount(ctx)
			testkit.NoError(t, err)
			testkit.Equal(t, count, 3, "ServerCount on %s", n.name)
		}
	})

	// A ClusterClient opens a Factory's subscription connection on the
	// master of the slot of the first channel of its first SUBSCRIBE (one
	// of the namespace's request, response and private channels, in map
	// order): the nodes' subscriptions spread over the masters, and
	// ServerCount must sum PUBSUB NUMSUB over them. Factories are added
	// (at least 3) until the subscriptions sit on two masters at least;
	// when the request and response channels share a master, each Factory
	// lands there with a probability of 7/9, hence the generous bound.
	t.Run("ServerCount over masters", func(t *testing.T) {
		key := uniqueKey(t)
		probe := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = probe.Close() })
		var adapters []*Adapter
		perMaster := map[string]int64{}
		for len(adapters) < 3 || len(perMaster) < 2 {
			testkit.True(t, len(adapters) < 40, "subscriptions all on one master: %v", perMaster)
			client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
			t.Cleanup(func() { _ = client.Close() })
			f := New(client, Options{Key: key, RequestsTimeout: clusterTimeout, Logger: testLogger(t)})
			t.Cleanup(func() { testkit.NoError(t, f.Close(context.Background())) })
			a, ns := newTestAdapter(t, f, "/")
			name := strconv.Itoa(len(adapters))
			ns.sse = func(_ []json.RawMessage, ack func(json.RawMessage)) { ack(json.RawMessage(`"` + name + `"`)) }
			adapters = append(adapters, a)

			var mu sync.Mutex
			clear(perMaster)
			channel := a.requestChannel
			testkit.NoError(t, probe.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
				m, err := c.PubSubNumSub(ctx, channel).Result()
				mu.Lock()
				defer mu.Unlock()
				if m[channel] > 0 {
					perMaster[c.Options().Addr] = m[channel]
				}
				return err
			}))
		}
		t.Logf("%d factories; subscribers per master: %v", len(adapters), perMaster)
		for _, a := range adapters {
			count, err := a.ServerCount(ctx)
			testkit.NoError(t, err)
			testkit.Equal(t, count, len(adapters))
		}
		res, err := adapters[0].ServerSideEmit(ctx, []json.RawMessage{json.RawMessage(`"who"`)}, true)
		testkit.NoError(t, err)
		got := []string{}
		for _, r := range res {
			got = append(got, string(r))
		}
		var want []string
		for i := 1; i < len(adapters); i++ {
			want = append(want, `"`+strconv.Itoa(i)+`"`)
		}
		sort.Strings(got)
		sort.Strings(want)
		testkit.Equal(t, got, want)
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
		testkit.NoError(t, err)
		testkit.Equal(t, argStrings(t, res), []string{"B", "C"})
	})

	t.Run("fetchSockets", func(t *testing.T) {
		socks, err := A.srv.FetchSockets(ctx)
		testkit.NoError(t, err)
		ids := map[string]bool{}
		for _, s := range socks {
			ids[s.ID] = s.Local() != nil
		}
		testkit.Equal(t, ids, map[string]bool{a.id: true, b.id: false, c.id: false})
	})

	t.Run("broadcast with acks", func(t *testing.T) {
		for _, x := range []struct {
			c    *tclient
			name string
		}{{a, "A"}, {b, "B"}, {c, "C"}} {
			testkit.NoError(t, x.c.OnAck(tctx(t), "q", x.name))
		}
		res, err := B.srv.Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, argStrings(t, res), []string{"A", "B", "C"})
	})
}

func TestRedisSentinelTopology(t *testing.T) {
	t.Parallel()
	master, sentinels := testkit.StartRedisSentinel(t)
	key := uniqueKey(t)
	newFailover := func() *goredis.Client {
		return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels})
	}
	A := startClientNode(t, newFailover(), key, "A")
	B := startClientNode(t, newFailover(), key, "B")
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A, "/")
	b := connectTo(t, drv, B, "/")
	ctx := context.Background()

	testkit.NoError(t, A.srv.Emit("all", "x"))
	testkit.Equal(t, next(t, a, "all"), []any{"x"})
	testkit.Equal(t, next(t, b, "all"), []any{"x"})
	B.sock(t, b).Join("r")
	testkit.NoError(t, A.srv.To("r").Emit("to-r"))
	testkit.Equal(t, next(t, b, "to-r"), []any{})

	count, err := A.srv.Of("/").Adapter().ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, count, 2)

	res, err := B.srv.ServerSideEmitWithAck(ctx, "whoami")
	testkit.NoError(t, err)
	testkit.Equal(t, argStrings(t, res), []string{"A"})
}
