package redis

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// startNodeShardedApp starts integration/node/testapp.js with Node's
// createShardedAdapter on redisURL, and returns its URL.
func startNodeShardedApp(t *testing.T, redisURL, key, name string, mode SubscriptionMode) string {
	t.Helper()
	node := testkit.RequireNode(t)
	dir := filepath.Join(testkit.RepoRoot(t), "integration", "node")
	for _, pkg := range []string{"socket.io", "@socket.io/redis-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Skipf("integration/node/node_modules/%s is missing (npm ci in %s): %v", pkg, dir, err)
		}
	}
	p := testkit.StartProcess(t, context.Background(), node, filepath.Join(dir, "testapp.js"),
		"-addr", "127.0.0.1:0", "-redis", redisURL, "-adapter", "redis-sharded",
		"-subscription-mode", string(mode), "-key", key, "-node", name)
	return p.URL()
}

// ackMap decodes the first argument of an acknowledgement as an object.
func ackMap(t *testing.T, args []any) map[string]any {
	t.Helper()
	testkit.True(t, len(args) == 1, "ack %v", args)
	m, ok := args[0].(map[string]any)
	testkit.True(t, ok, "ack %v", args)
	return m
}

// TestShardedMixedNode runs a cluster of two Go nodes and one Node.js node
// using createShardedAdapter (@socket.io/redis-adapter 8.3), each way.
func TestShardedMixedNode(t *testing.T) {
	url := testkit.StartRedis(t)
	ropts, err := goredis.ParseURL(url)
	testkit.NoError(t, err)
	for _, mode := range []SubscriptionMode{SubscriptionStatic, SubscriptionDynamic} {
		t.Run(string(mode), func(t *testing.T) {
			runShardedMixed(t, func() goredis.UniversalClient { return goredis.NewClient(ropts) }, url, mode)
		})
	}
}

// TestShardedMixedNodeRedisCluster is TestShardedMixedNode on a 3-master
// Redis Cluster (node-redis's createCluster on the Node.js side).
func TestShardedMixedNodeRedisCluster(t *testing.T) {
	addrs := testkit.StartRedisCluster(t, 3)
	urls := make([]string, len(addrs))
	for i, a := range addrs {
		urls[i] = "redis://" + a
	}
	runShardedMixed(t, func() goredis.UniversalClient {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	}, strings.Join(urls, ","), SubscriptionDynamic)
}

// runShardedMixed runs every API between two Go nodes and a Node.js one.
func runShardedMixed(t *testing.T, newClient func() goredis.UniversalClient, nodeRedis string, mode SubscriptionMode) {
	key := uniqueKey(t)
	A := startShardedNode(t, newClient(), ShardedOptions{Key: key, SubscriptionMode: mode}, "A")
	B := startShardedNode(t, newClient(), ShardedOptions{Key: key, SubscriptionMode: mode}, "B")
	N := &testNode{name: "N", url: startNodeShardedApp(t, nodeRedis, key, "N", mode)}
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A.testNode, "/")
	b := connectTo(t, drv, B.testNode, "/")
	n := connectTo(t, drv, N, "/")
	_, _ = n.Next(tctx(t), "welcome")
	ctx := context.Background()
	call := func(event string, spec any) []any {
		t.Helper()
		args, err := n.EmitWithAck(tctx(t), event, spec)
		testkit.NoError(t, err)
		return args
	}

	count, err := A.srv.Of("/").Adapter().ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, count, 3)

	// Broadcasts, both ways, binary included.
	testkit.NoError(t, A.srv.Emit("go-all", "x", []byte{1, 2}))
	testkit.Equal(t, next(t, n, "go-all"), []any{"x", []byte{1, 2}})
	_ = next(t, b, "go-all")
	call("broadcast", map[string]any{"event": "node-all", "args": []any{"y", 2}})
	testkit.Equal(t, next(t, a, "node-all"), []any{"y", float64(2)})
	testkit.Equal(t, next(t, b, "node-all"), []any{"y", float64(2)})
	// Binary from Node: the whole message is msgpack.
	call("broadcast", map[string]any{"event": "node-bin", "args": []any{[]byte{5}, map[string]any{"k": []byte{6}}}})
	testkit.Equal(t, next(t, a, "node-bin"), []any{[]byte{5}, map[string]any{"k": []byte{6}}})

	// Rooms: a room of the Node node, a room of a Go node, a Go
	// socket id (20 characters: the namespace's channel).
	call("join", "node-room")
	waitRoomSubscribers(t, A, "node-room", 1)
	testkit.NoError(t, A.srv.To("node-room").Emit("to-node-room"))
	_ = next(t, n, "to-node-room")
	B.sock(t, b).Join("go-room")
	waitRoomSubscribers(t, A, "go-room", 1)
	call("broadcast", map[string]any{"event": "to-go-room", "to": "go-room"})
	_ = next(t, b, "to-go-room")
	call("broadcast", map[string]any{"event": "to-b", "to": b.id})
	_ = next(t, b, "to-b")
	testkit.NoError(t, A.srv.To(n.id).Emit("to-n"))
	_ = next(t, n, "to-n")
	time.Sleep(100 * time.Millisecond)
	for _, cl := range []*tclient{a, n} {
		_, ok := cl.TryNext("to-go-room")
		testkit.True(t, !ok, "%s got to-go-room", cl.id)
	}

	// Broadcasts with acks, both ways.
	testkit.NoError(t, a.OnAck(tctx(t), "q", "a"))
	testkit.NoError(t, b.OnAck(tctx(t), "q", []byte{7}))
	testkit.NoError(t, n.OnAck(tctx(t), "q", "n"))
	res, err := A.srv.Timeout(3*time.Second).EmitWithAck(ctx, "q")
	testkit.NoError(t, err)
	testkit.Equal(t, res.Len(), 3)
	got := ackMap(t, call("broadcast", map[string]any{"event": "q", "timeoutMs": 2000}))
	testkit.Equal(t, got["err"], nil)
	testkit.Equal(t, len(got["responses"].([]any)), 3, "responses %v", got["responses"])

	// fetchSockets, both ways.
	socks, err := A.srv.FetchSockets(ctx)
	testkit.NoError(t, err)
	ids := map[string]bool{}
	for _, s := range socks {
		ids[s.ID] = true
	}
	testkit.Equal(t, ids, map[string]bool{a.id: true, b.id: true, n.id: true})
	list := call("fetch-sockets", map[string]any{})[0].([]any)
	testkit.Equal(t, len(list), 3)

	// serverSideEmit, both ways, with acks and binary.
	res, err = A.srv.ServerSideEmitWithAck(ctx, "whoami")
	testkit.NoError(t, err)
	testkit.Equal(t, argStrings(t, res), []string{"B", "N"})
	got = ackMap(t, call("server-side-emit", map[string]any{"event": "whoami", "timeoutMs": 2000}))
	testkit.Equal(t, got["err"], nil)
	testkit.Equal(t, testkit.Strings(got["responses"]), []string{"A", "B"})
	call("server-side-emit", map[string]any{"event": "record", "args": []any{"z", []byte{3, 4}}})
	want := `["z",{"type":"Buffer","data":[3,4]}]`
	eventually(t, "recorded on A and B", func() bool {
		ra, rb := A.records(), B.records()
		return len(ra) == 1 && len(rb) == 1 && ra[0] == want && rb[0] == want
	})
	testkit.NoError(t, A.srv.ServerSideEmit(ctx, "record", "from-go", 1))
	eventually(t, "recorded on N", func() bool {
		args, err := n.EmitWithAck(tctx(t), "recorded")
		if err != nil || len(args) != 1 {
			return false
		}
		b, _ := json.Marshal(args[0])
		return string(b) == `[["from-go",1]]`
	})

	// socketsJoin / socketsLeave / disconnectSockets, both ways.
	testkit.NoError(t, A.srv.In(n.id).SocketsJoin(ctx, "sj"))
	eventually(t, "Node socket joined", func() bool {
		args, err := n.EmitWithAck(tctx(t), "rooms")
		return err == nil && contains(testkit.Strings(args[0]), "sj")
	})
	call("sockets-join", map[string]any{"in": b.id, "rooms": []string{"nj"}})
	eventually(t, "Go socket joined", func() bool { return contains(B.sock(t, b).Rooms(), "nj") })
	call("sockets-leave", map[string]any{"in": "nj", "rooms": []string{"nj"}})
	eventually(t, "Go socket left", func() bool { return !contains(B.sock(t, b).Rooms(), "nj") })
	d := connectTo(t, drv, A.testNode, "/")
	call("disconnect-sockets", map[string]any{"in": d.id})
	reason, err := d.WaitDisconnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, reason, "io server disconnect")
	e := connectTo(t, drv, N, "/")
	testkit.NoError(t, B.srv.In(e.id).DisconnectSockets(ctx, false))
	reason, err = e.WaitDisconnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, reason, "io server disconnect")
}
