package redis

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// The cluster tests run several ioswarm servers in this process, each with
// its own Factory (its own subscription connection, as separate processes
// would have) on one Redis, and drive them with the official client.

// testNode is one server of a test cluster.
type testNode struct {
	name string
	srv  *server.Server
	f    *Factory
	url  string

	mu       sync.Mutex
	recorded []string // serverSideEmit "record" events received
	closed   bool
	ts       *httptest.Server
}

// startNode starts a server named name on redisURL with channel prefix key.
// Its server-side listeners: "whoami" answers the name, "silent" never
// answers, "silent-<name>" is silent on that node only, "record" records its
// arguments. Namespaces "/" and "/custom" exist, and /dyn-N are created on
// demand.
func startNode(t *testing.T, redisURL, key, name string, requestsTimeout time.Duration) *testNode {
	t.Helper()
	client := newClient(t, redisURL)
	n := &testNode{name: name}
	n.f = New(client, Options{Key: key, RequestsTimeout: requestsTimeout, Logger: testLogger(t).With("node", name)})
	n.srv = server.New(server.Config{Adapter: n.f, Logger: testLogger(t).With("node", name)})
	setup := func(ns *server.Namespace) {
		ns.OnServerSideEmit("whoami", func(ev *server.Event) { _ = ev.Ack(name) })
		ns.OnServerSideEmit("silent", func(*server.Event) {})
		for _, other := range []string{"A", "B", "C"} {
			ns.OnServerSideEmit("silent-"+other, func(ev *server.Event) {
				if other != name {
					_ = ev.Ack(name)
				}
			})
		}
		ns.OnServerSideEmit("record", func(ev *server.Event) {
			b, _ := json.Marshal(ev.Args)
			n.mu.Lock()
			n.recorded = append(n.recorded, string(b))
			n.mu.Unlock()
		})
	}
	setup(n.srv.Of("/"))
	setup(n.srv.Of("/custom"))
	n.srv.OfRegexp(regexp.MustCompile(`^/dyn-\d+$`))
	n.srv.OnNewNamespace(setup)
	n.ts = httptest.NewServer(n.srv)
	n.url = n.ts.URL
	t.Cleanup(n.close)
	return n
}

// close stops the node: the server (closing its adapters), the Factory, the
// HTTP server.
func (n *testNode) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.srv.Close(ctx) // closes the Factory too
	n.ts.CloseClientConnections()
	n.ts.Close()
}

func (n *testNode) records() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.recorded...)
}

// sock returns the local socket of a client.
func (n *testNode) sock(t *testing.T, c *tclient) *server.Socket {
	t.Helper()
	s := n.srv.Of(c.Namespace()).Socket(c.id)
	testkit.True(t, s != nil, "socket %s is not on node %s", c.id, n.name)
	return s
}

// tclient is a connected client and its socket id.
type tclient struct {
	*testkit.Client
	id string
}

func connectTo(t *testing.T, drv *testkit.NodeClientDriver, n *testNode, nsp string, opts ...func(*testkit.ConnectOptions)) *tclient {
	t.Helper()
	o := testkit.ConnectOptions{URL: n.url, Namespace: nsp, Transports: []string{"websocket"}}
	for _, f := range opts {
		f(&o)
	}
	c, id := testkit.MustConnect(t, drv, o)
	return &tclient{Client: c, id: id}
}

func tctx(t *testing.T) context.Context { return testkit.Ctx(t) }

// received returns the names of the events c got up to the marker event.
func received(t *testing.T, c *tclient, marker string) []string {
	t.Helper()
	names, err := c.NamesUntil(tctx(t), marker)
	testkit.NoError(t, err)
	return names
}

func next(t *testing.T, c *tclient, event string) []any {
	t.Helper()
	args, err := c.Next(tctx(t), event)
	testkit.NoError(t, err)
	return args
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, what, cond)
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func argStrings(t *testing.T, args server.Args) []string {
	t.Helper()
	out := make([]string, len(args))
	for i := range args {
		testkit.NoError(t, args.Decode(i, &out[i]))
	}
	sort.Strings(out)
	return out
}

const clusterTimeout = time.Second

func TestCluster(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	A := startNode(t, url, key, "A", clusterTimeout)
	B := startNode(t, url, key, "B", clusterTimeout)
	C := startNode(t, url, key, "C", clusterTimeout)
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A, "/")
	b := connectTo(t, drv, B, "/")
	c := connectTo(t, drv, C, "/")
	ctx := context.Background()

	t.Run("ServerCount", func(t *testing.T) {
		n, err := A.srv.Of("/").Adapter().ServerCount(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, n, 3)
	})

	t.Run("broadcast", func(t *testing.T) {
		testkit.NoError(t, A.srv.Emit("all", "x", []byte{1, 2}, map[string]any{"nested": []byte{3}}))
		for _, cl := range []*tclient{a, b, c} {
			testkit.Equal(t, next(t, cl, "all"), []any{"x", []byte{1, 2}, map[string]any{"nested": []byte{3}}})
		}

		A.sock(t, a).Join("r0")
		B.sock(t, b).Join("r1")
		C.sock(t, c).Join("r2")
		// Messages of one node arrive in order; a marker emitted by that node
		// after them tells what each client got.
		// One room: published on that room's channel.
		testkit.NoError(t, A.srv.To("r1").Emit("to-r1"))
		// Several rooms minus an except room.
		testkit.NoError(t, A.srv.To("r1", "r2", "r0").Except("r2").Emit("multi"))
		// A socket id is a room too.
		testkit.NoError(t, A.srv.To(c.id).Emit("to-c"))
		// Local: this node only.
		testkit.NoError(t, A.srv.Local().Emit("local"))
		testkit.NoError(t, A.srv.Emit("mA"))
		testkit.Equal(t, received(t, a, "mA"), []string{"multi", "local", "mA"})
		testkit.Equal(t, received(t, b, "mA"), []string{"to-r1", "multi", "mA"})
		testkit.Equal(t, received(t, c, "mA"), []string{"to-c", "mA"})

		// Volatile travels, and reaches the clients whose transport is idle.
		time.Sleep(100 * time.Millisecond)
		testkit.NoError(t, A.srv.Volatile().Emit("volatile"))
		testkit.NoError(t, A.srv.Emit("mV"))
		testkit.Equal(t, received(t, b, "mV"), []string{"volatile", "mV"})
		testkit.Equal(t, received(t, c, "mV"), []string{"volatile", "mV"})
		_ = received(t, a, "mV")

		// socket.broadcast: everyone but the sender.
		testkit.NoError(t, B.sock(t, b).Broadcast().Emit("from-b"))
		testkit.NoError(t, B.sock(t, b).To("r2").Emit("from-b-to-r2"))
		testkit.NoError(t, B.srv.Emit("mB"))
		testkit.Equal(t, received(t, a, "mB"), []string{"from-b", "mB"})
		testkit.Equal(t, received(t, b, "mB"), []string{"mB"})
		testkit.Equal(t, received(t, c, "mB"), []string{"from-b", "from-b-to-r2", "mB"})
	})

	t.Run("broadcast with acks", func(t *testing.T) {
		for _, x := range []struct {
			c    *tclient
			name string
		}{{a, "A"}, {b, "B"}, {c, "C"}} {
			testkit.NoError(t, x.c.OnAck(tctx(t), "q", x.name, "second argument dropped"))
		}
		res, err := A.srv.Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, argStrings(t, res), []string{"A", "B", "C"})

		// Only this node's clients with Local; nobody when no socket matches.
		start := time.Now()
		res, err = B.srv.Local().Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, argStrings(t, res), []string{"B"})
		res, err = B.srv.To("nobody").Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, len(res), 0)
		testkit.True(t, time.Since(start) < time.Second, "took %v", time.Since(start))

		// Binary answers survive the trip.
		testkit.NoError(t, c.OnAck(tctx(t), "qb", []byte{5, 6}))
		res, err = A.srv.To(c.id).Timeout(3*time.Second).EmitWithAck(ctx, "qb")
		testkit.NoError(t, err)
		var bin []byte
		testkit.NoError(t, res.Decode(0, &bin))
		testkit.Equal(t, bin, []byte{5, 6})

		// A client that does not answer: the timeout with the others' answers.
		testkit.NoError(t, a.OnAck(tctx(t), "q2", "A"))
		testkit.NoError(t, b.OnAck(tctx(t), "q2", "B"))
		testkit.NoError(t, c.OnAckSilent(tctx(t), "q2"))
		start = time.Now()
		res, err = C.srv.Timeout(700*time.Millisecond).EmitWithAck(ctx, "q2")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.ErrorIs(t, err, context.DeadlineExceeded)
		testkit.Equal(t, err.Error(), "operation has timed out")
		testkit.Equal(t, argStrings(t, res), []string{"A", "B"})
		testkit.True(t, time.Since(start) >= 650*time.Millisecond, "timed out after %v", time.Since(start))
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
		testkit.NoError(t, err)
		testkit.Equal(t, argStrings(t, res), []string{"B", "C"})

		testkit.NoError(t, B.srv.ServerSideEmit(ctx, "record", 1, "x", map[string]any{"b": []byte{1, 2}}))
		want := `[1,"x",{"b":{"type":"Buffer","data":[1,2]}}]`
		eventually(t, "recorded on A and C", func() bool {
			ra, rc := A.records(), C.records()
			return len(ra) == 1 && len(rc) == 1 && ra[0] == want && rc[0] == want
		})
		testkit.Equal(t, len(B.records()), 0, "a node never receives its own serverSideEmit")

		// One node silent: Node's timeout text with the other answers.
		start := time.Now()
		res, err = A.srv.ServerSideEmitWithAck(ctx, "silent-C")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.ErrorIs(t, err, context.DeadlineExceeded)
		testkit.Equal(t, err.Error(), "timeout reached: only 1 responses received out of 2")
		testkit.Equal(t, argStrings(t, res), []string{"B"})
		testkit.True(t, time.Since(start) >= clusterTimeout-50*time.Millisecond, "timed out after %v", time.Since(start))
		// Nobody answers.
		res, err = A.srv.ServerSideEmitWithAck(ctx, "silent")
		testkit.Equal(t, err.Error(), "timeout reached: only 0 responses received out of 2")
		testkit.Equal(t, len(res), 0)
	})

	t.Run("fetchSockets", func(t *testing.T) {
		B.sock(t, b).SetData(map[string]any{"user": "bob", "bin": []byte{7}})
		B.sock(t, b).Join("fetch")
		socks, err := A.srv.FetchSockets(ctx)
		testkit.NoError(t, err)
		byID := map[string]*server.RemoteSocket{}
		for _, s := range socks {
			byID[s.ID] = s
		}
		testkit.Equal(t, len(byID), 3)
		testkit.True(t, byID[a.id].Local() != nil, "a is local to A")
		rb := byID[b.id]
		testkit.True(t, rb.Local() == nil, "b is remote")
		wantRooms := []string{b.id, "fetch", "r1"}
		sort.Strings(wantRooms)
		testkit.Equal(t, rb.Rooms, wantRooms)
		var data struct {
			User string `json:"user"`
			Bin  struct {
				Type string `json:"type"`
				Data []byte `json:"data"`
			} `json:"bin"`
		}
		testkit.NoError(t, rb.DecodeData(&data))
		testkit.Equal(t, data.User, "bob")
		testkit.Equal(t, data.Bin.Type, "Buffer")
		var local struct {
			User string `json:"user"`
		}
		testkit.NoError(t, B.sock(t, b).DecodeData(&local), "a local socket decodes its data the same way")
		testkit.Equal(t, local.User, "bob")
		testkit.ErrorIs(t, rb.DecodeData(new(int)), server.ErrDecode)
		testkit.Equal(t, rb.Handshake.Query.Get("EIO"), "4")
		testkit.True(t, time.Since(rb.Handshake.Time) < time.Minute, "handshake time %v", rb.Handshake.Time)

		socks, err = A.srv.In("fetch", "r2").Except("r2").FetchSockets(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, len(socks), 1)
		testkit.Equal(t, socks[0].ID, b.id)

		// A remote socket acts where it lives.
		testkit.NoError(t, rb.Emit("direct", "hi"))
		testkit.Equal(t, next(t, b, "direct"), []any{"hi"})
		testkit.NoError(t, b.OnAck(tctx(t), "direct-ack", "from b"))
		v, err := rb.Timeout(2*time.Second).EmitWithAck(ctx, "direct-ack")
		testkit.NoError(t, err)
		var s string
		testkit.Equal(t, v.Len(), 1)
		testkit.NoError(t, v.Decode(0, &s))
		testkit.Equal(t, s, "from b")
		testkit.NoError(t, rb.Join(ctx, "remote-joined"))
		eventually(t, "remote join", func() bool { return contains(B.sock(t, b).Rooms(), "remote-joined") })
		testkit.NoError(t, rb.Leave(ctx, "remote-joined"))
		eventually(t, "remote leave", func() bool { return !contains(B.sock(t, b).Rooms(), "remote-joined") })
	})

	t.Run("socketsJoin socketsLeave allRooms", func(t *testing.T) {
		testkit.NoError(t, A.srv.In(b.id, c.id).SocketsJoin(ctx, "sj", "sj2"))
		eventually(t, "socketsJoin", func() bool {
			return contains(B.sock(t, b).Rooms(), "sj") && contains(C.sock(t, c).Rooms(), "sj2")
		})
		testkit.True(t, !contains(A.sock(t, a).Rooms(), "sj"), "a joined")
		rooms, err := A.srv.Of("/").Adapter().AllRooms(ctx)
		testkit.NoError(t, err)
		for _, r := range []string{a.id, b.id, c.id, "r0", "r1", "r2", "sj", "sj2", "fetch"} {
			testkit.True(t, contains(rooms, r), "%s missing from allRooms %v", r, rooms)
		}
		testkit.NoError(t, A.srv.In("sj").Except(c.id).SocketsLeave(ctx, "sj"))
		eventually(t, "socketsLeave", func() bool { return !contains(B.sock(t, b).Rooms(), "sj") })
		testkit.True(t, contains(C.sock(t, c).Rooms(), "sj"), "except ignored")
	})

	t.Run("disconnectSockets", func(t *testing.T) {
		d := connectTo(t, drv, B, "/")
		// e1 and e2 share one connection to C.
		e1 := connectTo(t, drv, C, "/", func(o *testkit.ConnectOptions) { o.Manager = "e" })
		e2 := connectTo(t, drv, C, "/custom", func(o *testkit.ConnectOptions) { o.Manager = "e" })
		f := connectTo(t, drv, C, "/")

		testkit.NoError(t, A.srv.In(d.id).DisconnectSockets(ctx, false))
		reason, err := d.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)
		testkit.Equal(t, reason, "io server disconnect")

		// close: the whole connection, every namespace on it.
		testkit.NoError(t, A.srv.In(e1.id).DisconnectSockets(ctx, true))
		_, err = e1.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)
		_, err = e2.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)

		// RemoteSocket.Disconnect.
		socks, err := A.srv.In(f.id).FetchSockets(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, len(socks), 1)
		testkit.NoError(t, socks[0].Disconnect(ctx, false))
		reason, err = f.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)
		testkit.Equal(t, reason, "io server disconnect")
		// The others are still there. (f is listed until its disconnecting
		// handlers have run, on its node, which may be just after its
		// client saw the DISCONNECT.)
		eventually(t, "three sockets left", func() bool {
			socks, err = B.srv.FetchSockets(ctx)
			return err == nil && len(socks) == 3
		})
	})

	t.Run("dynamic namespaces", func(t *testing.T) {
		z := connectTo(t, drv, A, "/")
		for i, pair := range [][2]*testNode{{A, B}, {C, A}} {
			nsp := "/dyn-" + string(rune('1'+i))
			x := connectTo(t, drv, pair[1], nsp) // the first connection creates it there
			y := connectTo(t, drv, pair[0], nsp)
			testkit.NoError(t, pair[0].srv.Of(nsp).Emit("hi", nsp))
			testkit.Equal(t, next(t, x, "hi"), []any{nsp})
			testkit.NoError(t, pair[1].srv.Of(nsp).Emit("back"))
			testkit.Equal(t, next(t, y, "back"), []any{})
			socks, err := pair[0].srv.Of(nsp).FetchSockets(ctx)
			testkit.NoError(t, err)
			testkit.Equal(t, len(socks), 2, nsp)
			// The main namespace did not see these.
			testkit.NoError(t, A.srv.Emit("marker-"+nsp))
			testkit.Equal(t, received(t, z, "marker-"+nsp), []string{"marker-" + nsp})
		}
	})
}

// TestClusterPolling runs a broadcast and a request with clients on HTTP
// long-polling: the adapter does not care about transports, but the
// packets it builds from Redis messages must encode for both.
func TestClusterPolling(t *testing.T) {
	t.Parallel()
	url := testkit.StartRedis(t)
	key := uniqueKey(t)
	A := startNode(t, url, key, "A", clusterTimeout)
	B := startNode(t, url, key, "B", clusterTimeout)
	drv := testkit.NewNodeClientDriver(t)
	polling := func(o *testkit.ConnectOptions) { o.Transports = []string{"polling"} }
	a := connectTo(t, drv, A, "/", polling)
	b := connectTo(t, drv, B, "/", polling)
	testkit.NoError(t, A.srv.Emit("bin", []byte{1}, "x"))
	testkit.Equal(t, next(t, b, "bin"), []any{[]byte{1}, "x"})
	testkit.NoError(t, b.OnAck(tctx(t), "q", []byte{2}))
	testkit.NoError(t, a.OnAck(tctx(t), "q", "a"))
	res, err := A.srv.Timeout(3*time.Second).EmitWithAck(context.Background(), "q")
	testkit.NoError(t, err)
	testkit.Equal(t, len(res), 2)
	got := []string{}
	for _, r := range res {
		got = append(got, strings.TrimSpace(string(r.JSON)))
	}
	sort.Strings(got)
	testkit.Equal(t, got, []string{`"a"`, `{"_placeholder":true,"num":0}`})
}
