package redisstreams

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// TestMixedNode runs a cluster of a Go node and a Node.js node with
// @socket.io/redis-streams-adapter 0.3.1 on one Redis, the official client
// on each, and every cluster operation each way.
func TestMixedNode(t *testing.T) {
	url := testkit.StartRedis(t)
	opts := testOptions()
	opts.ChannelPrefix = opts.StreamName
	N := startNodeApp(t, url, opts.StreamName, "N")
	G := startNode(t, redisClient(t, url), opts, "G")
	drv := testkit.NewNodeClientDriver(t)
	g, n := connect(t, drv, G.ts.URL), connect(t, drv, N)
	_, _ = n.Next(testkit.Ctx(t), "welcome")
	ctx := context.Background()
	call := func(event string, spec any) []any {
		t.Helper()
		args, err := n.EmitWithAck(testkit.Ctx(t), event, spec)
		testkit.NoError(t, err)
		return args
	}
	// node returns what the Node.js node answers in place of an ack.
	nodeAnswer := func(args []any) map[string]any {
		t.Helper()
		testkit.Equal(t, len(args), 1, "answer %v", args)
		m, ok := args[0].(map[string]any)
		testkit.True(t, ok, "answer %v", args)
		return m
	}

	count, err := G.srv.Of("/").Adapter().ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, count, 2)

	t.Run("broadcasts both ways", func(t *testing.T) {
		testkit.NoError(t, G.srv.Emit("go-all", "x", []byte{1, 2}))
		args, err := n.Next(testkit.Ctx(t), "go-all")
		testkit.NoError(t, err)
		testkit.Equal(t, args, []any{"x", []byte{1, 2}})
		call("broadcast", map[string]any{"event": "node-bin", "args": []any{[]byte{5}, map[string]any{"k": []byte{6}}}})
		args, err = g.Next(testkit.Ctx(t), "node-bin")
		testkit.NoError(t, err)
		testkit.Equal(t, args, []any{[]byte{5}, map[string]any{"k": []byte{6}}})

		call("join", "node-room")
		G.sock(g).Join("go-room")
		testkit.NoError(t, G.srv.To("node-room").Emit("to-node-room"))
		testkit.NoError(t, G.srv.To("go-room").Emit("to-go-room"))
		testkit.NoError(t, G.srv.Emit("mG"))
		testkit.Equal(t, until(t, n, "mG"), []string{"node-bin", "to-node-room", "mG"})
		testkit.Equal(t, until(t, g, "mG"), []string{"go-all", "to-go-room", "mG"})
	})

	t.Run("broadcast with acks both ways", func(t *testing.T) {
		testkit.NoError(t, g.OnAck(testkit.Ctx(t), "q", "g"))
		testkit.NoError(t, n.OnAck(testkit.Ctx(t), "q", []byte{7}))
		res, err := G.srv.Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, res.Len(), 2)
		got := nodeAnswer(call("broadcast", map[string]any{"event": "q", "timeoutMs": 2000}))
		testkit.Equal(t, got["err"], nil)
		testkit.Equal(t, len(got["responses"].([]any)), 2, "responses %v", got["responses"])
	})

	t.Run("fetchSockets both ways", func(t *testing.T) {
		socks, err := G.srv.FetchSockets(ctx)
		testkit.NoError(t, err)
		var ids []string
		for _, s := range socks {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		want := []string{g.id, n.id}
		slices.Sort(want)
		testkit.Equal(t, ids, want)
		list := call("fetch-sockets", map[string]any{"in": "go-room"})[0].([]any)
		testkit.Equal(t, len(list), 1)
		testkit.Equal(t, list[0].(map[string]any)["id"], g.id)
	})

	t.Run("serverSideEmit both ways", func(t *testing.T) {
		res, err := G.srv.ServerSideEmitWithAck(ctx, "whoami")
		testkit.NoError(t, err)
		testkit.Equal(t, names(t, res), []string{"N"})
		got := nodeAnswer(call("server-side-emit", map[string]any{"event": "whoami", "timeoutMs": 2000}))
		testkit.Equal(t, got["err"], nil)
		testkit.Equal(t, got["responses"], []any{"G"})
		call("server-side-emit", map[string]any{"event": "record", "args": []any{"z", []byte{3, 4}}})
		want := `["z",{"type":"Buffer","data":[3,4]}]`
		testkit.Eventually(t, "recorded on G", func() bool {
			r := G.records()
			return len(r) == 1 && r[0] == want
		})
		testkit.NoError(t, G.srv.ServerSideEmit(ctx, "record", "from-go", 1))
		testkit.Eventually(t, "recorded on N", func() bool {
			args, err := n.EmitWithAck(testkit.Ctx(t), "recorded")
			got, _ := json.Marshal(args)
			return err == nil && string(got) == `[[["from-go",1]]]`
		})
	})

	t.Run("socketsJoin and disconnectSockets both ways", func(t *testing.T) {
		testkit.NoError(t, G.srv.In(n.id).SocketsJoin(ctx, "sj"))
		testkit.Eventually(t, "Node socket joined", func() bool {
			args, err := n.EmitWithAck(testkit.Ctx(t), "rooms")
			return err == nil && len(args) == 1 && slices.Contains(testkit.Strings(args[0]), "sj")
		})
		call("sockets-join", map[string]any{"in": g.id, "rooms": []string{"nj"}})
		testkit.Eventually(t, "Go socket joined", func() bool { return slices.Contains(G.sock(g).Rooms(), "nj") })
		call("disconnect-sockets", map[string]any{"in": g.id})
		testkit.NoError(t, G.srv.In(n.id).DisconnectSockets(ctx, false))
		for _, cl := range []*client{g, n} {
			reason, err := cl.WaitDisconnect(testkit.Ctx(t))
			testkit.NoError(t, err)
			testkit.Equal(t, reason, "io server disconnect", "client %s", cl.id)
		}
	})
}
