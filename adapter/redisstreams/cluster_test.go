package redisstreams

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestCluster runs every server API across three Go nodes on one Redis.
func TestCluster(t *testing.T) {
	url := testkit.StartRedis(t)
	opts := testOptions()
	A := startNode(t, redisClient(t, url), opts, "A")
	B := startNode(t, redisClient(t, url), opts, "B")
	C := startNode(t, redisClient(t, url), opts, "C")
	drv := testkit.NewNodeClientDriver(t)
	a, b, c := connect(t, drv, A.ts.URL), connect(t, drv, B.ts.URL), connect(t, drv, C.ts.URL)
	ctx := context.Background()
	_, recoverer := A.srv.Of("/").Adapter().(adapter.Recoverer)
	testkit.True(t, !recoverer, "no connection state recovery yet")

	t.Run("ServerCount", func(t *testing.T) {
		for _, n := range []*node{A, B, C} {
			count, err := n.srv.Of("/").Adapter().ServerCount(ctx)
			testkit.NoError(t, err)
			testkit.Equal(t, count, 3, "on %s", n.name)
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		testkit.NoError(t, A.srv.Emit("all", "x", []byte{1, 2}, map[string]any{"nested": []byte{3}}))
		for _, cl := range []*client{a, b, c} {
			args, err := cl.Next(tctx(t), "all")
			testkit.NoError(t, err)
			testkit.Equal(t, args, []any{"x", []byte{1, 2}, map[string]any{"nested": []byte{3}}})
		}
		A.sock(t, a).Join("r0")
		B.sock(t, b).Join("r1")
		C.sock(t, c).Join("r2")
		// The entries of one node are read in order: a marker it adds
		// last tells what each client got.
		testkit.NoError(t, A.srv.To("r1").Emit("to-r1"))
		testkit.NoError(t, A.srv.To("r1", "r2", "r0").Except("r2").Emit("multi"))
		testkit.NoError(t, A.srv.To(c.id).Emit("to-c"))
		testkit.NoError(t, A.srv.Local().Emit("local"))
		testkit.NoError(t, A.srv.Emit("mA"))
		testkit.Equal(t, until(t, a, "mA"), []string{"multi", "local", "mA"})
		testkit.Equal(t, until(t, b, "mA"), []string{"to-r1", "multi", "mA"})
		testkit.Equal(t, until(t, c, "mA"), []string{"to-c", "mA"})

		testkit.NoError(t, B.sock(t, b).Broadcast().Emit("from-b"))
		testkit.NoError(t, B.srv.Emit("mB"))
		testkit.Equal(t, until(t, a, "mB"), []string{"from-b", "mB"})
		testkit.Equal(t, until(t, b, "mB"), []string{"mB"})
		testkit.Equal(t, until(t, c, "mB"), []string{"from-b", "mB"})
	})

	t.Run("broadcast with acks", func(t *testing.T) {
		for cl, name := range map[*client]string{a: "A", b: "B", c: "C"} {
			testkit.NoError(t, cl.OnAck(tctx(t), "q", name))
		}
		res, err := A.srv.Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, sortedStrings(t, res), []string{"A", "B", "C"})

		testkit.NoError(t, c.OnAck(tctx(t), "qb", []byte{5, 6}))
		res, err = A.srv.To(c.id).Timeout(3*time.Second).EmitWithAck(ctx, "qb")
		testkit.NoError(t, err)
		var bin []byte
		testkit.NoError(t, res.Decode(0, &bin))
		testkit.Equal(t, bin, []byte{5, 6})

		testkit.NoError(t, c.OnAckSilent(tctx(t), "q2"))
		testkit.NoError(t, a.OnAck(tctx(t), "q2", "A"))
		res, err = B.srv.In("r0", "r2").Timeout(500*time.Millisecond).EmitWithAck(ctx, "q2")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.Equal(t, sortedStrings(t, res), []string{"A"})
		testkit.NoError(t, A.srv.Emit("mQ"))
		for _, cl := range []*client{a, b, c} {
			_ = until(t, cl, "mQ")
		}
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
		testkit.NoError(t, err)
		testkit.Equal(t, sortedStrings(t, res), []string{"B", "C"})

		testkit.NoError(t, B.srv.ServerSideEmit(ctx, "record", 1, "x", map[string]any{"b": []byte{1, 2}}))
		want := `[1,"x",{"b":{"type":"Buffer","data":[1,2]}}]`
		waitFor(t, "recorded on A and C", func() bool {
			ra, rc := A.records(), C.records()
			return len(ra) == 1 && len(rc) == 1 && ra[0] == want && rc[0] == want
		})
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
		reason, err := c.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)
		testkit.Equal(t, reason, "io server disconnect")
		waitFor(t, "c gone from C", func() bool { return C.srv.Of("/").Socket(c.id) == nil })
	})
}
