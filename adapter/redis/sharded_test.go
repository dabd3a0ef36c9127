package redis

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// The sharded tests run every server API across Go nodes, each with its
// own ShardedFactory, on one Redis 7 and on a Redis Cluster, driven by the
// official client.

// shardedNode is a testNode on a ShardedFactory.
type shardedNode struct {
	*testNode
	sf *ShardedFactory
}

// startShardedNode starts a server named name whose ShardedFactory uses
// client (closed at cleanup, after the node). Its server-side listeners
// are startNode's: "whoami", "silent", "silent-<name>", "record".
func startShardedNode(t *testing.T, client goredis.UniversalClient, opts ShardedOptions, name string) *shardedNode {
	t.Helper()
	t.Cleanup(func() { _ = client.Close() }) // runs after n.close
	n := &shardedNode{testNode: &testNode{name: name}}
	if opts.RequestsTimeout == 0 {
		opts.RequestsTimeout = clusterTimeout
	}
	opts.Logger = testLogger(t).With("node", name)
	n.sf = NewSharded(client, opts)
	n.srv = server.New(server.Config{Adapter: n.sf, Logger: testLogger(t).With("node", name)})
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
	n.ts = httptest.NewServer(n.srv)
	n.url = n.ts.URL
	t.Cleanup(n.close)
	return n
}

// roomSubscribers returns the nodes subscribed to room's channel of "/".
func (n *shardedNode) roomSubscribers(t *testing.T, room string) int {
	t.Helper()
	c, err := n.sf.shardNumSub(context.Background(), n.sf.opts.Key+"#/#"+room+"#")
	testkit.NoError(t, err)
	return c
}

// waitRoomSubscribers waits until want nodes are subscribed to room's
// channel (dynamic modes): a broadcast to a room only reaches the nodes
// already subscribed, as on Node.
func waitRoomSubscribers(t *testing.T, n *shardedNode, room string, want int) {
	t.Helper()
	if !n.sf.opts.dynamic() {
		return
	}
	eventually(t, "subscribers of "+room, func() bool { return n.roomSubscribers(t, room) == want })
}

// expectOnly waits for the named events on c (in any order: on a Redis
// Cluster, messages of different channels come through different masters)
// and, after a pause, checks that none of the unwanted ones came.
func expectOnly(t *testing.T, c *tclient, want []string, unwanted ...string) {
	t.Helper()
	for _, ev := range want {
		_ = next(t, c, ev)
	}
	time.Sleep(150 * time.Millisecond)
	for _, ev := range unwanted {
		_, ok := c.TryNext(ev)
		testkit.True(t, !ok, "%s got %q", c.id, ev)
	}
}

func TestShardedSingleRedis(t *testing.T) {
	url := testkit.StartRedis(t)
	for _, mode := range []SubscriptionMode{SubscriptionStatic, SubscriptionDynamic, SubscriptionDynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			key := uniqueKey(t)
			var nodes []*shardedNode
			for _, name := range []string{"A", "B", "C"} {
				opts, err := goredis.ParseURL(url)
				testkit.NoError(t, err)
				nodes = append(nodes, startShardedNode(t, goredis.NewClient(opts), ShardedOptions{Key: key, SubscriptionMode: mode}, name))
			}
			runShardedScenario(t, nodes)
		})
	}
}

func TestShardedRedisCluster(t *testing.T) {
	addrs := testkit.StartRedisCluster(t, 3)
	for _, mode := range []SubscriptionMode{SubscriptionStatic, SubscriptionDynamic} {
		t.Run(string(mode), func(t *testing.T) {
			key := uniqueKey(t)
			var nodes []*shardedNode
			for _, name := range []string{"A", "B", "C"} {
				client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
				nodes = append(nodes, startShardedNode(t, client, ShardedOptions{Key: key, SubscriptionMode: mode}, name))
			}
			runShardedScenario(t, nodes)
		})
	}
}

// runShardedScenario runs every server API across three nodes.
func runShardedScenario(t *testing.T, nodes []*shardedNode) {
	A, B, C := nodes[0], nodes[1], nodes[2]
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A.testNode, "/")
	b := connectTo(t, drv, B.testNode, "/")
	c := connectTo(t, drv, C.testNode, "/")
	ctx := context.Background()
	var _ adapter.Adapter = A.srv.Of("/").Adapter()
	_, isRecoverer := A.srv.Of("/").Adapter().(adapter.Recoverer)
	testkit.True(t, !isRecoverer, "the sharded adapter does not support recovery")

	t.Run("ServerCount", func(t *testing.T) {
		for _, n := range nodes {
			count, err := n.srv.Of("/").Adapter().ServerCount(ctx)
			testkit.NoError(t, err)
			testkit.Equal(t, count, 3, "ServerCount on %s", n.name)
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		testkit.NoError(t, A.srv.Emit("all", "x", []byte{1, 2}, map[string]any{"nested": []byte{3}}))
		for _, cl := range []*tclient{a, b, c} {
			testkit.Equal(t, next(t, cl, "all"), []any{"x", []byte{1, 2}, map[string]any{"nested": []byte{3}}})
		}
		A.sock(t, a).Join("r0")
		B.sock(t, b).Join("r1")
		C.sock(t, c).Join("r2")
		waitRoomSubscribers(t, A, "r0", 1)
		waitRoomSubscribers(t, A, "r1", 1)
		waitRoomSubscribers(t, A, "r2", 1)

		testkit.NoError(t, A.srv.To("r1").Emit("to-r1", []byte{9}))
		testkit.NoError(t, A.srv.To("r1", "r2", "r0").Except("r2").Emit("multi"))
		testkit.NoError(t, A.srv.To(c.id).Emit("to-c"))
		testkit.NoError(t, A.srv.Local().Emit("local"))
		testkit.NoError(t, B.sock(t, b).Broadcast().Emit("from-b"))
		testkit.NoError(t, B.sock(t, b).To("r2").Emit("from-b-to-r2"))
		all := []string{"to-r1", "multi", "to-c", "local", "from-b", "from-b-to-r2"}
		except := func(want ...string) []string {
			var out []string
			for _, e := range all {
				if !slices.Contains(want, e) {
					out = append(out, e)
				}
			}
			return out
		}
		expectOnly(t, a, []string{"multi", "local", "from-b"}, except("multi", "local", "from-b")...)
		expectOnly(t, b, []string{"to-r1", "multi"}, except("to-r1", "multi")...)
		expectOnly(t, c, []string{"to-c", "from-b", "from-b-to-r2"}, except("to-c", "from-b", "from-b-to-r2")...)
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

		// To one room: on the namespace's channel all the same (the count
		// of answers is global).
		res, err = A.srv.To("r2").Timeout(3*time.Second).EmitWithAck(ctx, "q")
		testkit.NoError(t, err)
		testkit.Equal(t, argStrings(t, res), []string{"C"})

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
		res, err = C.srv.Timeout(700*time.Millisecond).EmitWithAck(ctx, "q2")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.Equal(t, err.Error(), "operation has timed out")
		testkit.Equal(t, argStrings(t, res), []string{"A", "B"})
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

		start := time.Now()
		res, err = A.srv.ServerSideEmitWithAck(ctx, "silent-C")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.ErrorIs(t, err, context.DeadlineExceeded)
		testkit.Equal(t, err.Error(), "timeout reached: only 1 responses received out of 2")
		testkit.Equal(t, argStrings(t, res), []string{"B"})
		testkit.True(t, time.Since(start) >= clusterTimeout-50*time.Millisecond, "timed out after %v", time.Since(start))
	})

	t.Run("fetchSockets", func(t *testing.T) {
		B.sock(t, b).SetData(map[string]any{"user": "bob"})
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
		}
		testkit.NoError(t, rb.DecodeData(&data))
		testkit.Equal(t, data.User, "bob")

		socks, err = A.srv.In("fetch", "r2").Except("r2").FetchSockets(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, len(socks), 1)
		testkit.Equal(t, socks[0].ID, b.id)

		// A remote socket acts where it lives (its id has 20 characters:
		// the namespace's channel).
		testkit.NoError(t, rb.Emit("direct", "hi"))
		testkit.Equal(t, next(t, b, "direct"), []any{"hi"})
		testkit.NoError(t, b.OnAck(tctx(t), "direct-ack", "from b"))
		v, err := rb.Timeout(2*time.Second).EmitWithAck(ctx, "direct-ack")
		testkit.NoError(t, err)
		var s string
		testkit.NoError(t, v.Decode(0, &s))
		testkit.Equal(t, s, "from b")
	})

	t.Run("fetchSockets timeout", func(t *testing.T) {
		// A node that is gone but still counted: SHARDNUMSUB counts a
		// subscriber that never answers.
		ghost := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: A.sf.clientAddrs()})
		t.Cleanup(func() { _ = ghost.Close() })
		ps := ghost.SSubscribe(ctx, A.sf.opts.Key+"#/#")
		t.Cleanup(func() { _ = ps.Close() })
		_, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		testkit.NoError(t, err)
		start := time.Now()
		_, err = A.srv.Timeout(300 * time.Millisecond).FetchSockets(ctx)
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.Equal(t, timeoutText(t, err), "timeout reached: only 2 responses received out of 3")
		took := time.Since(start)
		testkit.True(t, took >= 250*time.Millisecond && took < clusterTimeout, "flags.timeout: took %v", took)
		_, err = A.srv.FetchSockets(ctx)
		testkit.Equal(t, timeoutText(t, err), "timeout reached: only 2 responses received out of 3")
		res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
		testkit.Equal(t, err.Error(), "timeout reached: only 2 responses received out of 3")
		testkit.Equal(t, argStrings(t, res), []string{"B", "C"})
		_ = ps.Close()
		eventually(t, "ghost gone", func() bool {
			n, err := A.srv.Of("/").Adapter().ServerCount(ctx)
			return err == nil && n == 3
		})
	})

	t.Run("socketsJoin socketsLeave allRooms", func(t *testing.T) {
		testkit.NoError(t, A.srv.In(b.id, c.id).SocketsJoin(ctx, "sj", "sj2"))
		eventually(t, "socketsJoin", func() bool {
			return contains(B.sock(t, b).Rooms(), "sj") && contains(C.sock(t, c).Rooms(), "sj2")
		})
		testkit.True(t, !contains(A.sock(t, a).Rooms(), "sj"), "a joined")
		waitRoomSubscribers(t, A, "sj", 2)
		testkit.NoError(t, A.srv.To("sj").Emit("to-sj"))
		_ = next(t, b, "to-sj")
		_ = next(t, c, "to-sj")

		// Node's ClusterAdapter has no cluster-wide allRooms: local rooms.
		rooms, err := B.srv.Of("/").Adapter().AllRooms(ctx)
		testkit.NoError(t, err)
		testkit.True(t, contains(rooms, "sj") && contains(rooms, b.id) && !contains(rooms, "r2"), "allRooms %v", rooms)

		testkit.NoError(t, A.srv.In("sj").Except(c.id).SocketsLeave(ctx, "sj"))
		eventually(t, "socketsLeave", func() bool { return !contains(B.sock(t, b).Rooms(), "sj") })
		testkit.True(t, contains(C.sock(t, c).Rooms(), "sj"), "except ignored")
		waitRoomSubscribers(t, A, "sj", 1)
	})

	t.Run("disconnectSockets", func(t *testing.T) {
		d := connectTo(t, drv, B.testNode, "/")
		f := connectTo(t, drv, C.testNode, "/")
		testkit.NoError(t, A.srv.In(d.id).DisconnectSockets(ctx, false))
		reason, err := d.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)
		testkit.Equal(t, reason, "io server disconnect")

		socks, err := A.srv.In(f.id).FetchSockets(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, len(socks), 1)
		testkit.NoError(t, socks[0].Disconnect(ctx, true))
		_, err = f.WaitDisconnect(tctx(t))
		testkit.NoError(t, err)
		socks, err = B.srv.FetchSockets(ctx)
		testkit.NoError(t, err)
		testkit.Equal(t, len(socks), 3)
	})
}

// timeoutText returns the message of the *adapter.TimeoutError in err.
func timeoutText(t *testing.T, err error) string {
	t.Helper()
	var te *adapter.TimeoutError
	testkit.True(t, errors.As(err, &te), "not a timeout: %v", err)
	return te.Message
}

// clientAddrs returns the addresses of the factory's Redis.
func (f *ShardedFactory) clientAddrs() []string {
	if f.cluster != nil {
		return f.cluster.Options().Addrs
	}
	if c, ok := f.client.(*goredis.Client); ok {
		return []string{c.Options().Addr}
	}
	return nil
}

// TestShardedDynamicSubscriptions checks the shard channels of each mode
// with PUBSUB SHARDCHANNELS, as rooms appear and disappear.
func TestShardedDynamicSubscriptions(t *testing.T) {
	url := testkit.StartRedis(t)
	opts, err := goredis.ParseURL(url)
	testkit.NoError(t, err)
	probe := goredis.NewClient(opts)
	t.Cleanup(func() { _ = probe.Close() })
	ctx := context.Background()
	drv := testkit.NewNodeClientDriver(t)
	for _, mode := range []SubscriptionMode{SubscriptionStatic, SubscriptionDynamic, SubscriptionDynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			key := uniqueKey(t)
			A := startShardedNode(t, goredis.NewClient(opts), ShardedOptions{Key: key, SubscriptionMode: mode}, "A")
			channels := func() []string {
				chs, err := probe.PubSubShardChannels(ctx, key+"#*").Result()
				testkit.NoError(t, err)
				sort.Strings(chs)
				return chs
			}
			uid := A.srv.Of("/").Adapter().(*ShardedAdapter).UID()
			base := []string{key + "#/#", key + "#/#" + uid + "#"}
			sort.Strings(base)
			a := connectTo(t, drv, A.testNode, "/")
			want := func(rooms ...string) []string {
				out := append([]string(nil), base...)
				for _, r := range rooms {
					out = append(out, key+"#/#"+r+"#")
				}
				sort.Strings(out)
				return out
			}
			waitChannels := func(want []string) {
				t.Helper()
				eventually(t, strings.Join(want, " "), func() bool { return slices.Equal(channels(), want) })
			}
			switch mode {
			case SubscriptionDynamicPrivate:
				waitChannels(want(a.id))
			default:
				waitChannels(want())
			}
			A.sock(t, a).Join("room1")
			testkit.NoError(t, A.srv.SocketsJoin(ctx, "room9"))
			switch mode {
			case SubscriptionStatic:
				waitChannels(want())
			case SubscriptionDynamic:
				waitChannels(want("room1", "room9"))
			default:
				waitChannels(want(a.id, "room1", "room9"))
			}
			A.sock(t, a).Leave("room1")
			testkit.NoError(t, A.srv.In("room9").SocketsLeave(ctx, "room9"))
			switch mode {
			case SubscriptionDynamicPrivate:
				waitChannels(want(a.id))
			default:
				waitChannels(want())
			}
			testkit.NoError(t, a.Disconnect(tctx(t)))
			waitChannels(want())
			A.close()
			waitChannels(nil)
		})
	}
}

// TestShardedRedisRestart stops Redis and starts it again on the same
// port: local clients are served meanwhile, requests fail without
// hanging, and cluster traffic (rooms' channels included) resumes by
// itself.
func TestShardedRedisRestart(t *testing.T) {
	rs := testkit.StartRedisServer(t)
	key := uniqueKey(t)
	newNode := func(name string) *shardedNode {
		opts, err := goredis.ParseURL(rs.URL())
		testkit.NoError(t, err)
		return startShardedNode(t, goredis.NewClient(opts), ShardedOptions{Key: key}, name)
	}
	A, B := newNode("A"), newNode("B")
	drv := testkit.NewNodeClientDriver(t)
	a := connectTo(t, drv, A.testNode, "/")
	b := connectTo(t, drv, B.testNode, "/")
	ctx := context.Background()
	B.sock(t, b).Join("r")
	waitRoomSubscribers(t, A, "r", 1)
	testkit.NoError(t, A.srv.To("r").Emit("before"))
	_ = next(t, b, "before")

	rs.Stop()
	for i := range 3 {
		testkit.NoError(t, A.srv.Local().Emit("during", i))
		testkit.Equal(t, next(t, a, "during"), []any{float64(i)})
	}
	start := time.Now()
	_, err := A.srv.FetchSockets(ctx)
	testkit.True(t, err != nil, "fetchSockets without Redis")
	testkit.True(t, time.Since(start) < clusterTimeout+2*time.Second, "fetchSockets failed after %v", time.Since(start))

	rs.Start()
	t.Cleanup(func() { A.close(); B.close() }) // before this Redis stops
	resumed := func(what string, emit func() error, c *tclient, event string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			testkit.NoError(t, ignoreQueue(emit()))
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err := c.Next(cctx, event)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not resume", what)
			}
		}
	}
	resumed("A → b", func() error { return A.srv.Emit("after") }, b, "after")
	resumed("B → a", func() error { return B.srv.Emit("after") }, a, "after")
	resumed("A → room r", func() error { return A.srv.To("r").Emit("after-r") }, b, "after-r")
	n, err := A.srv.Of("/").Adapter().ServerCount(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, n, 2)
	res, err := A.srv.ServerSideEmitWithAck(ctx, "whoami")
	testkit.NoError(t, err)
	testkit.Equal(t, argStrings(t, res), []string{"B"})
}

// ignoreQueue ignores the errors that only say the other nodes were not
// reached (Redis down).
func ignoreQueue(err error) error {
	if err == nil || !errors.Is(err, adapter.ErrClosed) {
		return nil
	}
	return err
}

// TestShardedWithRecoveryConfigured: a server with connection state
// recovery on and the sharded adapter (not a Recoverer) serves as without
// it — a client that loses its transport gets a new session, as with
// Node's sharded adapter.
func TestShardedWithRecoveryConfigured(t *testing.T) {
	url := testkit.StartRedis(t)
	opts, err := goredis.ParseURL(url)
	testkit.NoError(t, err)
	client := goredis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	f := NewSharded(client, ShardedOptions{Key: uniqueKey(t), Logger: testLogger(t)})
	srv := server.New(server.Config{Adapter: f, Logger: testLogger(t),
		ConnectionStateRecovery: &server.RecoveryConfig{MaxDisconnectionDuration: time.Minute}})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close(context.Background())
		ts.CloseClientConnections()
		ts.Close()
	})
	drv := testkit.NewNodeClientDriver(t)
	c, err := drv.Connect(tctx(t), testkit.ConnectOptions{URL: ts.URL, Transports: []string{"websocket"}, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 100, "randomizationFactor": 0}})
	testkit.NoError(t, err)
	id, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	testkit.NoError(t, srv.Emit("first"))
	_, err = c.Next(tctx(t), "first")
	testkit.NoError(t, err)
	testkit.NoError(t, c.CloseTransport(tctx(t)))
	sid, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, sid != id, "recovered without a Recoverer")
	info, err := c.Info(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, !info.Recovered, "socket.recovered")
	testkit.NoError(t, srv.Emit("second"))
	_, err = c.Next(tctx(t), "second")
	testkit.NoError(t, err)
}
