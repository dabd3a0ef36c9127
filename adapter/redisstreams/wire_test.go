package redisstreams

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// startNodeApp starts integration/node/testapp.js with Node's
// @socket.io/redis-streams-adapter on redisURL (stream and channel prefix
// key), and returns its URL.
func startNodeApp(t *testing.T, redisURL, key, name string, extra ...string) string {
	t.Helper()
	node := testkit.RequireNode(t)
	dir := filepath.Join(testkit.RepoRoot(t), "integration", "node")
	for _, pkg := range []string{"socket.io", "@socket.io/redis-streams-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Skipf("integration/node/node_modules/%s is missing (npm ci in %s): %v", pkg, dir, err)
		}
	}
	args := append([]string{filepath.Join(dir, "testapp.js"),
		"-addr", "127.0.0.1:0", "-redis", redisURL, "-adapter", "redis-streams", "-key", key, "-node", name}, extra...)
	p := testkit.StartProcess(t, context.Background(), node, args...)
	return p.URL()
}

// entry is a stream entry's fields, in order.
type entry []string

// lastEntry returns the newest entry of stream, after waiting for it to
// differ from prev (the id is the entry's first element).
func lastEntry(t *testing.T, c *goredis.Client, stream string, prev entry) entry {
	t.Helper()
	var e entry
	testkit.Eventually(t, "a new entry in "+stream, func() bool {
		res, err := c.Do(context.Background(), "XREVRANGE", stream, "+", "-", "COUNT", "1").Slice()
		if err != nil || len(res) == 0 {
			return false
		}
		item := res[0].([]any)
		e = entry{item[0].(string)}
		for _, f := range item[1].([]any) {
			e = append(e, f.(string))
		}
		return len(prev) == 0 || e[0] != prev[0]
	})
	return e
}

// TestWire: for the same operations, a Go node writes what Node's adapter
// writes, field for field and byte for byte but the node and request ids:
// the stream entries of broadcasts and socketsJoin, plain and binary, and
// the pub/sub messages of requests and answers.
func TestWire(t *testing.T) {
	url := testkit.StartRedis(t)
	opts := testOptions()
	key := opts.StreamName
	opts.ChannelPrefix = key
	nodeURL := startNodeApp(t, url, key, "N")
	G := startNode(t, redisClient(t, url), opts, "G")
	gUID := G.srv.Of("/").Adapter().(*Adapter).UID()
	raw := redisClient(t, url)
	ctx := context.Background()
	ps := raw.PSubscribe(ctx, key+"#*")
	t.Cleanup(func() { _ = ps.Close() })
	_, err := ps.Receive(ctx)
	testkit.NoError(t, err)
	msgs := ps.Channel()
	drv := testkit.NewNodeClientDriver(t)
	n := connect(t, drv, nodeURL)
	_, _ = n.Next(testkit.Ctx(t), "welcome")
	call := func(event string, spec any) {
		t.Helper()
		_, err := n.EmitWithAck(testkit.Ctx(t), event, spec)
		testkit.NoError(t, err)
	}

	// ---- the stream
	var prev entry
	compare := func(what string, byNode, byGo func()) {
		t.Helper()
		byNode()
		ne := lastEntry(t, raw, key, prev)
		byGo()
		ge := lastEntry(t, raw, key, ne)
		prev = ge
		t.Logf("%s: Node wrote %q", what, ne[1:])
		testkit.Equal(t, len(ge), 9, "%s: fields %q", what, ge)
		for i, name := range []string{"uid", "nsp", "type", "data"} {
			testkit.Equal(t, ne[1+2*i], name, "%s: Node's field %d", what, i)
			testkit.Equal(t, ge[1+2*i], name, "%s: Go's field %d", what, i)
		}
		testkit.Equal(t, ge[2], gUID)
		testkit.Equal(t, ge[4], ne[4], "%s: nsp", what)
		testkit.Equal(t, ge[6], ne[6], "%s: type", what)
		nd, gd := ne[8], ge[8]
		if nd != "" && nd[0] != '{' { // base64 msgpack: compare the bytes
			nb, err := base64.StdEncoding.DecodeString(nd)
			testkit.NoError(t, err)
			gb, err := base64.StdEncoding.DecodeString(gd)
			testkit.NoError(t, err)
			nd, gd = fmt.Sprintf("%x", nb), fmt.Sprintf("%x", gb)
		}
		testkit.Equal(t, gd, nd, "%s: data", what)
	}
	compare("broadcast", func() {
		call("broadcast", map[string]any{"event": "plain", "args": []any{"x", 1.5, map[string]any{"k": nil}}})
	}, func() {
		testkit.NoError(t, G.srv.Emit("plain", "x", 1.5, map[string]any{"k": nil}))
	})
	compare("binary broadcast to rooms", func() {
		call("broadcast", map[string]any{"event": "bin", "args": []any{[]byte{1, 2, 3}, "é"}, "to": []string{"r1", "r2"}, "except": "e"})
	}, func() {
		testkit.NoError(t, G.srv.To("r1", "r2").Except("e").Emit("bin", []byte{1, 2, 3}, "é"))
	})
	compare("socketsJoin", func() {
		call("sockets-join", map[string]any{"in": "r1", "rooms": []string{"j1", "j2"}})
	}, func() {
		testkit.NoError(t, G.srv.In("r1").SocketsJoin(ctx, "j1", "j2"))
	})

	// ---- pub/sub: whole messages in msgpack
	// next returns the next message of channel ch and type typ, from G
	// or from another node, in hex with the node and request ids replaced
	// by fixed ones, and its sender's uid.
	next := func(ch string, typ int, fromGo bool) (string, string) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case m := <-msgs:
				if m.Channel != ch {
					continue
				}
				msg, err := cluster.Decode([]byte(m.Payload))
				testkit.NoError(t, err)
				if msg.Typ != typ || (msg.Uid == gUID) != fromGo {
					continue
				}
				b := bytes.ReplaceAll([]byte(m.Payload), []byte(msg.Uid), []byte("UUUUUUUUUUUUUUUU"))
				if id := msg.Data.RequestID; id != "" {
					b = bytes.ReplaceAll(b, []byte(id), []byte("RRRRRRRRRRRRRRRR"))
				}
				return fmt.Sprintf("%x", b), msg.Uid
			case <-timeout:
				t.Fatalf("no message of type %d on %s", typ, ch)
			}
		}
	}
	public := key + "#/#"
	// (Without binary: a Go node's serverSideEmit arguments are JSON, so
	// a []byte travels as Node's Buffer JSON, where Node sends bin.)
	call("server-side-emit", map[string]any{"event": "record", "args": []any{"z", 1, map[string]any{"k": []any{1.5, true}}}})
	nm, nUID := next(public, cluster.MsgServerSideEmit, false)
	testkit.NoError(t, G.srv.ServerSideEmit(ctx, "record", "z", 1, map[string]any{"k": []any{1.5, true}}))
	gm, _ := next(public, cluster.MsgServerSideEmit, true)
	testkit.Equal(t, gm, nm, "serverSideEmit")

	// A request each way, and each node's answer to the other's.
	call("fetch-sockets", map[string]any{"in": "nobody"})
	nm, _ = next(public, cluster.MsgFetchSockets, false)
	gAnswer, _ := next(public+nUID+"#", cluster.MsgFetchSocketsResponse, true)
	_, err = G.srv.In("nobody").FetchSockets(ctx)
	testkit.NoError(t, err)
	gm, _ = next(public, cluster.MsgFetchSockets, true)
	nAnswer, _ := next(public+gUID+"#", cluster.MsgFetchSocketsResponse, false)
	testkit.Equal(t, gm, nm, "fetchSockets")
	testkit.Equal(t, gAnswer, nAnswer, "fetchSockets answer")

	call("broadcast", map[string]any{"event": "q", "to": "nobody", "timeoutMs": 500})
	nm, _ = next(public, cluster.MsgBroadcast, false)
	gAnswer, _ = next(public+nUID+"#", cluster.MsgBroadcastClientCount, true)
	_, err = G.srv.To("nobody").Timeout(500*time.Millisecond).EmitWithAck(ctx, "q")
	testkit.NoError(t, err)
	gm, _ = next(public, cluster.MsgBroadcast, true)
	nAnswer, _ = next(public+gUID+"#", cluster.MsgBroadcastClientCount, false)
	testkit.Equal(t, gm, nm, "broadcast with acks")
	testkit.Equal(t, gAnswer, nAnswer, "broadcast client count")
}
