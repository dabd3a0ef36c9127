package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// nodeEmitterScript runs @socket.io/redis-emitter 5.1.0 with a client that
// records what it publishes, for the calls the Go test makes too.
const nodeEmitterScript = `
const modules = process.argv[2];
const { Emitter } = require(modules + "/@socket.io/redis-emitter");
const out = [];
const client = { publish(channel, msg) {
  out.push({ channel, hex: Buffer.isBuffer(msg) ? msg.toString("hex") : Buffer.from(msg).toString("hex") });
} };
const e = new Emitter(client, { key: "K" });
e.emit("e", 1, "x");
e.to("r1").emit("e", { a: [1, 2] });
e.to(["r1", "r2"]).except("r3").emit("e");
e.volatile.compress(false).emit("e", true);
e.of("custom").to("r1").emit("e", Buffer.from([1, 2, 3]), { b: Buffer.from([4]) });
e.to("r1").socketsJoin(["a", "b"]);
e.except("r2").socketsLeave("a");
e.in("r9").disconnectSockets(true);
e.serverSideEmit("ping", 1, { x: "y" });
process.stdout.write(JSON.stringify(out));
`

// goEmitterCalls makes the calls of nodeEmitterScript.
func goEmitterCalls(ctx context.Context, e *Emitter) error {
	return errors.Join(
		e.Emit(ctx, "e", 1, "x"),
		e.To("r1").Emit(ctx, "e", map[string]any{"a": []int{1, 2}}),
		e.To("r1", "r2").Except("r3").Emit(ctx, "e"),
		e.Volatile().Compress(false).Emit(ctx, "e", true),
		e.Of("custom").To("r1").Emit(ctx, "e", []byte{1, 2, 3}, map[string]any{"b": []byte{4}}),
		e.To("r1").SocketsJoin(ctx, "a", "b"),
		e.Except("r2").SocketsLeave(ctx, "a"),
		e.In("r9").DisconnectSockets(ctx, true),
		e.ServerSideEmit(ctx, "ping", 1, map[string]any{"x": "y"}),
	)
}

type published struct {
	Channel string `json:"channel"`
	Hex     string `json:"hex"`
}

// decoded is a message as a comparable value: JSON requests as JSON,
// broadcasts as msgpack (map order does not matter to any reader).
func decoded(t *testing.T, hexMsg string) any {
	t.Helper()
	b, err := hex.DecodeString(hexMsg)
	testkit.NoError(t, err)
	var v any
	if len(b) > 0 && b[0] == '{' {
		testkit.NoError(t, json.Unmarshal(b, &v))
		return v
	}
	testkit.NoError(t, msgpack.Unmarshal(b, &v))
	return normalize(v)
}

// normalize turns msgpack's integer types into float64, as a JavaScript
// reader sees them.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

// TestEmitterWire: the Go emitter publishes, on the same channels, what
// Node's @socket.io/redis-emitter 5.1.0 publishes for the same calls.
func TestEmitterWire(t *testing.T) {
	t.Parallel()
	node := testkit.RequireNode(t)
	modules := filepath.Join(testkit.RepoRoot(t), "integration", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@socket.io", "redis-emitter")); err != nil {
		t.Skipf("@socket.io/redis-emitter is not installed in %s: %v", modules, err)
	}
	script := filepath.Join(t.TempDir(), "emitter.js")
	testkit.NoError(t, os.WriteFile(script, []byte(nodeEmitterScript), 0o600))
	out, err := exec.Command(node, script, modules).Output()
	testkit.NoError(t, err)
	var want []published
	testkit.NoError(t, json.Unmarshal(out, &want))

	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	sub := newSubscriber(t, newClient(t, url), []string{key + "*"}, nil)
	ctx := context.Background()
	testkit.NoError(t, goEmitterCalls(ctx, NewEmitter(newClient(t, url), EmitterOptions{Key: key})))
	for i, w := range want {
		m := sub.next()
		testkit.Equal(t, strings.TrimPrefix(m.Channel, key), strings.TrimPrefix(w.Channel, "K"), "call %d: channel", i)
		got := decoded(t, hex.EncodeToString([]byte(m.Payload)))
		if exp := decoded(t, w.Hex); !reflect.DeepEqual(got, exp) {
			t.Errorf("call %d on %s:\n got  %#v\n want %#v", i, m.Channel, got, exp)
		}
	}
}

// TestEmitter: what an Emitter sends reaches the clients of every Go node,
// selected by rooms and except-rooms, binary included; its room operations
// and disconnections apply on every node; its serverSideEmit reaches every
// node's listeners.
func TestEmitter(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	A := startNode(t, url, key, "A", clusterTimeout)
	B := startNode(t, url, key, "B", clusterTimeout)
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A, "/")
	b := connectTo(t, drv, B, "/")
	testkit.NoError(t, A.sock(t, a).Join("r1"))
	testkit.NoError(t, B.sock(t, b).Join("r2"))
	e := NewEmitter(newClient(t, url), EmitterOptions{Key: key})
	ctx := context.Background()

	testkit.NoError(t, e.Emit(ctx, "all", 1))
	testkit.Equal(t, next(t, a, "all"), []any{float64(1)})
	testkit.Equal(t, next(t, b, "all"), []any{float64(1)})
	testkit.NoError(t, e.To("r2").Emit(ctx, "bin", []byte{1, 2}))
	got := next(t, b, "bin")
	if bb, ok := got[0].([]byte); !ok || !bytes.Equal(bb, []byte{1, 2}) {
		t.Fatalf("binary argument: %#v", got)
	}
	testkit.NoError(t, e.Except("r1").Emit(ctx, "not-r1"))
	testkit.NoError(t, e.Emit(ctx, "marker"))
	testkit.Equal(t, strings.Join(received(t, a, "marker"), ","), "marker", "a (in r1) skips not-r1")
	testkit.Equal(t, strings.Join(received(t, b, "marker"), ","), "not-r1,marker", "b")

	testkit.NoError(t, e.In("r1").SocketsJoin(ctx, "joined"))
	eventually(t, "a joins through the emitter", func() bool { return contains(A.sock(t, a).Rooms(), "joined") })
	testkit.NoError(t, e.SocketsLeave(ctx, "r2"))
	eventually(t, "b leaves r2", func() bool { return !contains(B.sock(t, b).Rooms(), "r2") })

	testkit.NoError(t, e.ServerSideEmit(ctx, "record", "from-emitter", 2))
	for _, n := range []*testNode{A, B} {
		eventually(t, "node "+n.name+" records the serverSideEmit", func() bool {
			r := n.records()
			return len(r) == 1 && r[0] == `["from-emitter",2]`
		})
	}
	err := e.Emit(ctx, "disconnect")
	testkit.True(t, errors.Is(err, ErrReservedEvent), "reserved name: %v", err)
	err = e.ServerSideEmit(ctx, "x", []byte{1})
	testkit.True(t, err != nil, "binary serverSideEmit refused")

	testkit.NoError(t, e.In("r2", b.id).DisconnectSockets(ctx, false))
	reason, err := b.WaitDisconnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, reason, "io server disconnect")
	time.Sleep(50 * time.Millisecond)
	testkit.True(t, A.srv.Of("/").Socket(a.id) != nil, "a is still connected")
}
