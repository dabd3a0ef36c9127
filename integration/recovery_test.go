package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/integration/internal/redistest"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Connection state recovery on one node (testapp -recovery): what the
// official client sees must be the same on both targets.

// dialRecovering connects a client that reconnects after delay, waits for
// its welcome — which carries an offset, the client's position in the log —
// and returns it with its socket id.
func (e *env) dialRecovering(delay time.Duration) (*testkit.Client, string) {
	e.t.Helper()
	o := e.options()
	o.Reconnection = true
	o.Extra = map[string]any{"reconnectionDelay": delay.Milliseconds(), "reconnectionDelayMax": delay.Milliseconds(), "randomizationFactor": 0}
	c, err := e.drv.Connect(e.ctx(), o)
	testkit.NoError(e.t, err)
	id, err := c.WaitConnect(e.ctx())
	testkit.NoError(e.t, err)
	args, err := c.Next(e.ctx(), "welcome")
	testkit.NoError(e.t, err)
	testkit.Equal(e.t, len(args), 2, "welcome arguments: the object, then the offset")
	off, ok := args[1].(string)
	testkit.True(e.t, ok && off != "", "welcome offset is %#v", args[1])
	return c, id
}

func eventNames(evs []*testkit.Event) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return strings.Join(out, ",")
}

func TestRecoveryContract(t *testing.T) {
	scenario(t, func(e *env) {
		c, id := e.dialRecovering(1500 * time.Millisecond)
		rc := &client{Client: c, e: e, id: id}
		rc.ack("join", "r1")
		rc.ack("set-data", map[string]any{"k": "v"})
		other, otherID := e.dialRecovering(100 * time.Millisecond)
		oc := &client{Client: other, e: e, id: otherID}

		testkit.NoError(t, c.CloseTransport(e.ctx()))
		_, err := c.WaitDisconnect(e.ctx())
		testkit.NoError(t, err)
		// While c is away (it comes back after 1.5 s): what it must get back,
		// and what it must not (volatile, other rooms, excluded).
		oc.ack("broadcast", map[string]any{"to": []string{"r1"}, "event": "m1", "args": []any{1}})
		oc.ack("broadcast", map[string]any{"event": "m-volatile", "volatile": true})
		oc.ack("broadcast", map[string]any{"to": []string{"r2"}, "event": "m-r2"})
		oc.ack("broadcast", map[string]any{"except": []string{"r1"}, "event": "m-except"})
		oc.ack("broadcast", map[string]any{"to": []string{id}, "event": "m2", "args": []any{[]byte{7}}})
		oc.ack("broadcast", map[string]any{"event": "m3", "args": []any{"x"}})

		sid, err := c.WaitConnect(e.ctx())
		testkit.NoError(t, err)
		testkit.Equal(t, sid, id, "socket id after recovery")
		info, err := c.Info(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, info.Recovered, "socket.recovered")
		// The missed packets, in order, before the new welcome.
		evs, err := c.Until(e.ctx(), "welcome")
		testkit.NoError(t, err)
		testkit.Equal(t, eventNames(evs), "m1,m2,m3,welcome", "events after the reconnection")
		testkit.Equal(t, len(evs[0].Args), 2, "m1: its argument and the offset")
		if b, ok := evs[1].Args[0].([]byte); !ok || len(b) != 1 || b[0] != 7 {
			t.Fatalf("m2 argument %#v", evs[1].Args)
		}
		testkit.Equal(t, rc.ack1("recovered"), true, "server: socket.recovered")
		testkit.Equal(t, show(rc.ack1("rooms")), show(sorted(id, "r1")), "rooms restored")
		socks := asList(t, oc.ack1("fetch-sockets", map[string]any{"in": []string{id}}))
		testkit.Equal(t, len(socks), 1, "fetch-sockets")
		testkit.Equal(t, show(asObj(t, socks[0])["data"]), show(map[string]any{"k": "v"}), "data restored")

		// Live traffic goes on, once.
		oc.ack("broadcast", map[string]any{"to": []string{"r1"}, "event": "live"})
		evs, err = c.Until(e.ctx(), "live")
		testkit.NoError(t, err)
		testkit.Equal(t, eventNames(evs), "live", "live events")
		testkit.NoError(t, c.Close(e.ctx()))
		testkit.NoError(t, other.Close(e.ctx()))
	}, "-recovery", "10s")
}

// TestRecoveryContractMiddlewaresSkipped: with -recovery (Node's skipMiddlewares: true, Go's
// default), a recovered socket does not run the connection middleware — the node's
// middleware-runs count does not grow — while a new connection does.
func TestRecoveryContractMiddlewaresSkipped(t *testing.T) {
	scenario(t, func(e *env) {
		c, id := e.dialRecovering(300 * time.Millisecond)
		rc := &client{Client: c, e: e, id: id}
		rc.ack("join", "r1")
		testkit.Equal(t, show(rc.ack1("middleware-runs")), "1", "middleware runs after the first connection")

		testkit.NoError(t, c.CloseTransport(e.ctx()))
		_, err := c.WaitDisconnect(e.ctx())
		testkit.NoError(t, err)
		sid, err := c.WaitConnect(e.ctx())
		testkit.NoError(t, err)
		testkit.Equal(t, sid, id, "socket id after recovery")
		info, err := c.Info(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, info.Recovered, "socket.recovered")
		// The connection handler ran for the recovered socket (its new welcome)...
		_, err = c.Next(e.ctx(), "welcome")
		testkit.NoError(t, err)
		testkit.Equal(t, rc.ack1("recovered"), true, "server: socket.recovered")
		testkit.Equal(t, show(rc.ack1("rooms")), show(sorted(id, "r1")), "rooms restored")
		// ...the middleware did not.
		testkit.Equal(t, show(rc.ack1("middleware-runs")), "1", "middleware runs after the recovery")

		// A new connection runs it: the count is live.
		other, otherID := e.dialRecovering(100 * time.Millisecond)
		oc := &client{Client: other, e: e, id: otherID}
		testkit.Equal(t, show(oc.ack1("middleware-runs")), "2", "middleware runs after a new connection")
		testkit.NoError(t, c.Close(e.ctx()))
		testkit.NoError(t, other.Close(e.ctx()))
	}, "-recovery", "10s")
}

func TestRecoveryContractExpired(t *testing.T) {
	scenario(t, func(e *env) {
		c, id := e.dialRecovering(1200 * time.Millisecond)
		rc := &client{Client: c, e: e, id: id}
		rc.ack("join", "r1")
		testkit.NoError(t, c.CloseTransport(e.ctx()))
		_, err := c.WaitDisconnect(e.ctx())
		testkit.NoError(t, err)
		sid, err := c.WaitConnect(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, sid != id, "a new socket id after the window")
		info, err := c.Info(e.ctx())
		testkit.NoError(t, err)
		testkit.True(t, !info.Recovered, "socket.recovered after the window")
		rc.id = sid
		testkit.Equal(t, rc.ack1("recovered"), false, "server: socket.recovered")
		testkit.Equal(t, show(rc.ack1("rooms")), show(sorted(sid)), "rooms of the new session")
		testkit.NoError(t, c.Close(e.ctx()))
	}, "-recovery", "300ms")
}

// TestRecoveryMixedCluster: a cluster of Go nodes with recovery and a Node.js node of the
// classic adapter on one Redis. A client whose Go node is killed (SIGKILL) comes back, in
// each transport mode, to the node started again in its place — a new process, which knows
// it only from Redis — and is recovered: same id, its room, the broadcasts logged while it
// was away, once and in order. The Node.js node is unaffected: its client gets every
// broadcast, without offsets, and its own broadcasts reach the Go nodes' clients (they are
// not logged, so not replayed).
func TestRecoveryMixedCluster(t *testing.T) {
	testkit.RequireNode(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testRecoveryMixedCluster(t, m) })
	}
}

func testRecoveryMixedCluster(t *testing.T, m mode) {
	redisURL := redistest.StartRedis(t)
	key := fmt.Sprintf("ioswarm-mixed-recovery-%d-%s", os.Getpid(), m.name)
	bin := testkit.BuildTestapp(t)
	port := testkit.FreePort(t)
	n1Args := []string{"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-redis", redisURL, "-node", "n1", "-key", key, "-recovery", "10s"}
	start := func(args []string) *testkit.Process {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		return testkit.StartProcess(t, ctx, bin, args...)
	}
	n1 := start(n1Args)
	n2 := startJS(t, "-redis", redisURL, "-node", "n2", "-key", key)
	n3 := start([]string{"-addr", "127.0.0.1:0", "-redis", redisURL, "-node", "n3", "-key", key, "-recovery", "10s"})

	drv := testkit.NewNodeClientDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(url string, reconnect bool) (*testkit.Client, string) {
		o := testkit.ConnectOptions{URL: url, Transports: m.transports, Reconnection: reconnect,
			Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 300, "randomizationFactor": 0}}
		c, err := drv.Connect(ctx, o)
		testkit.NoError(t, err)
		id, err := c.WaitConnect(ctx)
		testkit.NoError(t, err)
		_, err = c.Next(ctx, "welcome")
		testkit.NoError(t, err)
		_, err = c.EmitWithAck(ctx, "join", "r1")
		testkit.NoError(t, err)
		return c, id
	}
	c, id := dial(n1.URL(), true)
	jc, _ := dial(n2.URL(), false)
	gc, _ := dial(n3.URL(), false)
	bcast := func(from *testkit.Client, payload string) {
		t.Helper()
		res, err := from.EmitWithAck(ctx, "bcast", "r1", payload)
		testkit.NoError(t, err)
		testkit.Equal(t, show(res), show([]any{true}), "bcast ack")
	}

	bcast(gc, "before")
	for _, cl := range []*testkit.Client{c, jc, gc} {
		_, err := cl.Next(ctx, "msg")
		testkit.NoError(t, err)
	}
	n1.Kill()
	_, err := c.WaitDisconnect(ctx)
	testkit.NoError(t, err)
	bcast(gc, "m1")      // logged by a Go node
	bcast(jc, "from-js") // the Node.js node logs nothing
	bcast(gc, "m2")
	start(n1Args) // the same address: its clients come back to a new process

	// Attempts made while the node was down fail first ("websocket error").
	sid, err := c.WaitReconnect(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, sid, id, "socket id after the node was killed and started again")
	info, err := c.Info(ctx)
	testkit.NoError(t, err)
	testkit.True(t, info.Recovered, "socket.recovered")
	evs, err := c.Until(ctx, "welcome")
	testkit.NoError(t, err)
	var got []string
	for _, e := range evs {
		if e.Name == "msg" {
			testkit.Equal(t, len(e.Args), 2, "a replayed broadcast carries its offset: %v", e.Args)
			got = append(got, fmt.Sprint(e.Args[0]))
		} else {
			got = append(got, e.Name)
		}
	}
	testkit.Equal(t, strings.Join(got, ","), "m1,m2,welcome", "replayed, then the new welcome")
	rooms, err := c.EmitWithAck(ctx, "rooms")
	testkit.NoError(t, err)
	testkit.Equal(t, show(rooms[0]), show(sorted(id, "r1")), "rooms restored")

	// What each node's client got while c was away: all three, once. The Node.js node acks a
	// bcast before its PUBLISH reaches Redis, so its broadcast may come after m2; the Go
	// node's come in order.
	for _, w := range []struct {
		c       *testkit.Client
		name    string
		offsets map[string]bool
	}{
		{jc, "the Node.js node's client", map[string]bool{"m1": false, "from-js": false, "m2": false}},
		{gc, "a Go node's client", map[string]bool{"m1": true, "from-js": false, "m2": true}},
	} {
		var order []string
		for range 3 {
			args, err := w.c.Next(ctx, "msg")
			testkit.NoError(t, err)
			name := fmt.Sprint(args[0])
			order = append(order, name)
			want, ok := w.offsets[name]
			testkit.True(t, ok, "%s: unexpected broadcast %q", w.name, name)
			testkit.Equal(t, len(args) == 2, want, "%s: %s carries an offset", w.name, name)
		}
		got := strings.Join(order, ",")
		testkit.True(t, got == "m1,from-js,m2" || got == "m1,m2,from-js",
			"%s: broadcasts %s (each once, m1 before m2)", w.name, got)
	}
	// Live traffic reaches the recovered client again, once.
	bcast(jc, "live")
	args, err := c.Next(ctx, "msg")
	testkit.NoError(t, err)
	testkit.Equal(t, fmt.Sprint(args[0]), "live", "live broadcast after the recovery")
}
