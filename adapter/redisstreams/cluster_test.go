package redisstreams

import (
	"context"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestCluster runs every server API across three Go nodes on one Redis,
// with pub/sub and with sharded pub/sub (Redis 7), and on a Redis Cluster
// (sharded pub/sub: each channel on the master of its slot).
func TestCluster(t *testing.T) {
	url := testkit.StartRedis(t)
	t.Run("pubsub", func(t *testing.T) {
		runCluster(t, func() goredis.UniversalClient { return redisClient(t, url) }, testOptions())
	})
	t.Run("sharded pubsub", func(t *testing.T) {
		opts := testOptions()
		opts.UseShardedPubSub = true
		runCluster(t, func() goredis.UniversalClient { return redisClient(t, url) }, opts)
	})
	t.Run("redis cluster", func(t *testing.T) {
		addrs := testkit.StartRedisCluster(t, 3)
		opts := testOptions()
		opts.UseShardedPubSub = true
		runCluster(t, func() goredis.UniversalClient {
			c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}, opts)
	})
}

func runCluster(t *testing.T, newClient func() goredis.UniversalClient, opts Options) {
	A := startNode(t, newClient(), opts, "A")
	B := startNode(t, newClient(), opts, "B")
	C := startNode(t, newClient(), opts, "C")
	drv := testkit.NewNodeClientDriver(t)
	a, b, c := connect(t, drv, A.ts.URL), connect(t, drv, B.ts.URL), connect(t, drv, C.ts.URL)
	ctx := context.Background()
	_, recoverer := A.srv.Of("/").Adapter().(adapter.Recoverer)
	testkit.True(t, !recoverer, "without recovery on, the adapter keeps no sessions")

	t.Run("ServerCount", func(t *testing.T) {
		var counts []int
		for _, n := range []*node{A, B, C} {
			count, err := n.srv.Of("/").Adapter().ServerCount(ctx)
			testkit.NoError(t, err)
			counts = append(counts, count)
		}
		testkit.Equal(t, counts, []int{3, 3, 3})
	})

	t.Run("broadcast", func(t *testing.T) {
		// Binary travels as base64 msgpack in the entry.
		testkit.NoError(t, C.srv.Emit("bin", map[string]any{"b": []byte{4, 5}}, "é"))
		for _, cl := range []*client{a, b, c} {
			got, err := cl.Next(testkit.Ctx(t), "bin")
			testkit.NoError(t, err)
			testkit.Equal(t, got, []any{map[string]any{"b": []byte{4, 5}}, "é"}, "client %s", cl.id)
		}
		A.sock(a).Join("r0")
		B.sock(b).Join("r1")
		C.sock(c).Join("r2")
		// The entries of one node are read in order: a marker it adds
		// last tells what each client got.
		deliveries := []struct {
			emits []func() error // the last one emits the marker
			got   map[*client][]string
		}{
			{[]func() error{
				func() error { return A.srv.To("r1").Emit("to-r1") },
				func() error { return A.srv.To("r1", "r2", "r0").Except("r2").Emit("multi") },
				func() error { return A.srv.To(c.id).Emit("to-c") },
				func() error { return A.srv.Local().Emit("local") },
				func() error { return A.srv.Emit("mA") },
			}, map[*client][]string{a: {"multi", "local", "mA"}, b: {"to-r1", "multi", "mA"}, c: {"to-c", "mA"}}},
			{[]func() error{
				func() error { return B.sock(b).Broadcast().Emit("from-b") },
				func() error { return B.srv.Emit("mB") },
			}, map[*client][]string{a: {"from-b", "mB"}, b: {"mB"}, c: {"from-b", "mB"}}},
		}
		for _, d := range deliveries {
			for _, emit := range d.emits {
				testkit.NoError(t, emit())
			}
			marker := d.got[a][len(d.got[a])-1]
			for cl, want := range d.got {
				testkit.Equal(t, until(t, cl, marker), want, "client %s", cl.id)
			}
		}
	})

	t.Run("broadcast with acks", func(t *testing.T) {
		for cl, name := range map[*client]string{a: "A", b: "B", c: "C"} {
			testkit.NoError(t, cl.OnAck(testkit.Ctx(t), "q", name))
		}
		res, err := A.srv.Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, names(t, res), []string{"A", "B", "C"})

		testkit.NoError(t, c.OnAck(testkit.Ctx(t), "qb", []byte{5, 6}))
		res, err = A.srv.To(c.id).Timeout(3*time.Second).EmitWithAck(ctx, "qb")
		testkit.NoError(t, err)
		var bin []byte
		testkit.NoError(t, res.Decode(0, &bin))
		testkit.Equal(t, bin, []byte{5, 6})

		testkit.NoError(t, c.OnAckSilent(testkit.Ctx(t), "q2"))
		testkit.NoError(t, a.OnAck(testkit.Ctx(t), "q2", "A"))
		res, err = B.srv.In("r0", "r2").Timeout(500*time.Millisecond).EmitWithAck(ctx, "q2")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.Equal(t, names(t, res), []string{"A"})
		testkit.NoError(t, A.srv.Emit("mQ"))
		for _, cl := range []*client{a, b, c} {
			_ = until(t, cl, "mQ")
		}
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
		testkit.NoError(t, err)
		testkit.Equal(t, names(t, res), []string{"B", "C"})

		// Binary arguments arrive as Node's Buffer JSON.
		testkit.NoError(t, B.srv.ServerSideEmit(ctx, "record", 1, "x", map[string]any{"b": []byte{1, 2}}))
		for _, n := range []*node{A, C} {
			testkit.Eventually(t, "recorded on "+n.name, func() bool {
				return slices.Equal(n.records(), []string{`[1,"x",{"b":{"type":"Buffer","data":[1,2]}}]`})
			})
		}
		testkit.Equal(t, len(B.records()), 0)
	})

	t.Run("fetchSockets", func(t *testing.T) {
		socks, err := A.srv.FetchSockets(ctx)
		testkit.NoError(t, err)
		var ids []string
		for _, s := range socks {
			ids = append(ids, s.ID)
			if s.ID == b.id {
				testkit.True(t, slices.Contains(s.Rooms, "r1"), "rooms of b: %v", s.Rooms)
			}
		}
		slices.Sort(ids)
		want := []string{a.id, b.id, c.id}
		slices.Sort(want)
		testkit.Equal(t, ids, want)

		socks, err = C.srv.In("r1").FetchSockets(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, len(socks), 1)
		testkit.Equal(t, socks[0].ID, b.id)
	})

	t.Run("socketsJoin socketsLeave", func(t *testing.T) {
		testkit.NoError(t, A.srv.In(b.id, c.id).SocketsJoin(ctx, "sj"))
		testkit.NoError(t, A.srv.To("sj").Emit("to-sj"))
		testkit.NoError(t, A.srv.Emit("mJ"))
		testkit.Equal(t, until(t, a, "mJ"), []string{"mJ"})
		testkit.Equal(t, until(t, b, "mJ"), []string{"to-sj", "mJ"})
		testkit.Equal(t, until(t, c, "mJ"), []string{"to-sj", "mJ"})

		testkit.NoError(t, A.srv.In("sj").Except(c.id).SocketsLeave(ctx, "sj"))
		testkit.NoError(t, A.srv.To("sj").Emit("to-sj"))
		testkit.NoError(t, A.srv.Emit("mL"))
		testkit.Equal(t, until(t, b, "mL"), []string{"mL"})
		testkit.Equal(t, until(t, c, "mL"), []string{"to-sj", "mL"})
	})

	t.Run("disconnectSockets", func(t *testing.T) {
		testkit.NoError(t, A.srv.In(c.id).DisconnectSockets(ctx, false))
		reason, err := c.WaitDisconnect(testkit.Ctx(t))
		testkit.NoError(t, err)
		testkit.Equal(t, reason, "io server disconnect")
		testkit.Eventually(t, "c gone from C", func() bool { return C.srv.Of("/").Socket(c.id) == nil })
	})
}
