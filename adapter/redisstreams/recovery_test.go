package redisstreams

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// startRecoveryNode starts a server with recovery on (a 10 s window, as
// bounds change it) on the Redis at url, whose connection handler is
// onConn, and returns it with its URL.
func startRecoveryNode(t *testing.T, url string, opts Options, onConn func(*server.Socket), bounds ...func(*server.RecoveryConfig)) (*server.Server, string) {
	t.Helper()
	rc := &server.RecoveryConfig{MaxDisconnectionDuration: 10 * time.Second}
	for _, b := range bounds {
		b(rc)
	}
	srv := server.New(server.Config{Adapter: New(redisClient(t, url), opts), ConnectionStateRecovery: rc, Logger: logger(t)})
	srv.OnConnection(onConn)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		ts.Close()
	})
	return srv, ts.URL
}

// TestRecoveryAcrossNodes: a client cut off from node A comes back through
// the load balancer to node B, within the window: B restores its session
// from Redis (same id, rooms and data) and sends it what was broadcast to
// its rooms while it was away, each once, with their stream offsets.
func TestRecoveryAcrossNodes(t *testing.T) {
	url := testkit.StartRedis(t)
	opts := testOptions()
	var nodes [2]*server.Server
	var urls [2]string
	for i := range nodes {
		nodes[i], urls[i] = startRecoveryNode(t, url, opts, func(s *server.Socket) {
			if !s.Recovered() {
				_ = s.Join("r1")
				s.SetData(map[string]any{"k": "v"})
			}
			_ = s.Emit("welcome", s.Recovered())
		})
	}
	A, B := nodes[0], nodes[1]
	_, ok := A.Of("/").Adapter().(adapter.Recoverer)
	testkit.True(t, ok, "with recovery on, the adapter is an adapter.Recoverer")
	proxy := testkit.NewSwitchProxy(t, urls[0])

	drv := testkit.NewNodeClientDriver(t)
	c, id := testkit.MustConnect(t, drv, testkit.ConnectOptions{URL: proxy.URL(), Transports: []string{"websocket"}, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 300, "randomizationFactor": 0}})
	args, err := c.Next(testkit.Ctx(t), "welcome")
	testkit.NoError(t, err)
	testkit.Equal(t, args[0], false)

	// A broadcast from B reaches c live, with its offset.
	testkit.NoError(t, B.To("r1").Emit("live", 1))
	args, err = c.Next(testkit.Ctx(t), "live")
	testkit.NoError(t, err)
	testkit.Equal(t, len(args), 2, "live: the argument and the offset")
	testkit.True(t, cluster.ValidOffset(fmt.Sprint(args[1])), "offset %v", args[1])

	// Cut off: A keeps the session; what B and A broadcast meanwhile waits
	// in the stream.
	proxy.To(t, urls[1])
	proxy.Cut()
	_, err = c.WaitDisconnect(testkit.Ctx(t))
	testkit.NoError(t, err)
	testkit.Eventually(t, "c gone from A", func() bool { return A.Of("/").Socket(id) == nil })
	testkit.NoError(t, B.To("r1").Emit("missed", 2))
	testkit.NoError(t, A.Emit("missed-all", 3))
	testkit.NoError(t, A.To("other").Emit("not-for-c"))

	_, err = c.WaitReconnect(testkit.Ctx(t))
	testkit.NoError(t, err)
	info, err := c.Info(testkit.Ctx(t))
	testkit.NoError(t, err)
	testkit.True(t, info.Recovered, "recovered")
	testkit.Equal(t, info.ID, id)
	s := B.Of("/").Socket(id)
	testkit.True(t, s != nil, "the socket is on B")
	testkit.True(t, slices.Contains(s.Rooms(), "r1"), "rooms restored: %v", s.Rooms())
	testkit.NoError(t, B.Emit("marker"))
	names, err := c.NamesUntil(testkit.Ctx(t), "marker")
	testkit.NoError(t, err)
	// The missed packets come first, then what the connection handler
	// sends (welcome: recovered).
	testkit.Equal(t, names, []string{"missed", "missed-all", "welcome", "marker"})
}

// TestRecoveryMixedNode: sessions and offsets are Node's: a client cut off
// from a Go node is recovered by a Node.js node with
// @socket.io/redis-streams-adapter, and the other way round.
func TestRecoveryMixedNode(t *testing.T) {
	url := testkit.StartRedis(t)
	opts := testOptions()
	opts.ChannelPrefix = opts.StreamName
	G, gURL := startRecoveryNode(t, url, opts, func(s *server.Socket) {
		if !s.Recovered() {
			_ = s.Join("r1")
		}
	})
	N := startNodeApp(t, url, opts.StreamName, "N", "-recovery", "10s")
	drv := testkit.NewNodeClientDriver(t)
	connect := func(to string) (*testkit.SwitchProxy, *testkit.Client, string) {
		p := testkit.NewSwitchProxy(t, to)
		c, id := testkit.MustConnect(t, drv, testkit.ConnectOptions{URL: p.URL(), Transports: []string{"websocket"}, Reconnection: true,
			Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 300, "randomizationFactor": 0}})
		return p, c, id
	}
	// moved cuts c off, lets emit broadcast while it is away, and checks
	// that it comes back to the other node recovered, with what it missed.
	moved := func(p *testkit.SwitchProxy, c *testkit.Client, id, to string, emit func()) {
		t.Helper()
		p.To(t, to)
		p.Cut()
		_, err := c.WaitDisconnect(testkit.Ctx(t))
		testkit.NoError(t, err)
		time.Sleep(100 * time.Millisecond) // the node keeps the session
		emit()
		_, err = c.WaitReconnect(testkit.Ctx(t))
		testkit.NoError(t, err)
		info, err := c.Info(testkit.Ctx(t))
		testkit.NoError(t, err)
		testkit.True(t, info.Recovered, "recovered on the other node")
		testkit.Equal(t, info.ID, id)
		args, err := c.Next(testkit.Ctx(t), "missed")
		testkit.NoError(t, err)
		testkit.Equal(t, args[0], "while-away")
	}

	t.Run("Go to Node", func(t *testing.T) {
		p, c, id := connect(gURL)
		testkit.NoError(t, G.To("r1").Emit("live"))
		_, err := c.Next(testkit.Ctx(t), "live") // its offset is the client's
		testkit.NoError(t, err)
		moved(p, c, id, N, func() { testkit.NoError(t, G.To("r1").Emit("missed", "while-away")) })
	})
	t.Run("Node to Go", func(t *testing.T) {
		p, c, id := connect(N)
		_, err := c.EmitWithAck(testkit.Ctx(t), "join", "r2")
		testkit.NoError(t, err)
		_, err = c.EmitWithAck(testkit.Ctx(t), "broadcast", map[string]any{"event": "live", "to": "r2"})
		testkit.NoError(t, err)
		_, err = c.Next(testkit.Ctx(t), "live")
		testkit.NoError(t, err)
		moved(p, c, id, gURL, func() { testkit.NoError(t, G.To("r2").Emit("missed", "while-away")) })
		testkit.True(t, slices.Contains(G.Of("/").Socket(id).Rooms(), "r2"), "rooms restored")
	})
}

// TestRecoveryBounded: a client that missed more packets than the server's
// MaxPackets gets a new session rather than an unbounded replay.
func TestRecoveryBounded(t *testing.T) {
	url := testkit.StartRedis(t)
	A, aURL := startRecoveryNode(t, url, testOptions(), func(s *server.Socket) { _ = s.Join("r1") },
		func(rc *server.RecoveryConfig) { rc.MaxPackets = 2 })
	proxy := testkit.NewSwitchProxy(t, aURL)
	drv := testkit.NewNodeClientDriver(t)
	c, id := testkit.MustConnect(t, drv, testkit.ConnectOptions{URL: proxy.URL(), Transports: []string{"websocket"}, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 300, "randomizationFactor": 0}})
	testkit.NoError(t, A.To("r1").Emit("live"))
	_, err := c.Next(testkit.Ctx(t), "live")
	testkit.NoError(t, err)
	proxy.Cut()
	_, err = c.WaitDisconnect(testkit.Ctx(t))
	testkit.NoError(t, err)
	testkit.Eventually(t, "c gone from A", func() bool { return A.Of("/").Socket(id) == nil })
	for i := range 3 {
		testkit.NoError(t, A.To("r1").Emit("missed", i))
	}
	_, err = c.WaitReconnect(testkit.Ctx(t))
	testkit.NoError(t, err)
	info, err := c.Info(testkit.Ctx(t))
	testkit.NoError(t, err)
	testkit.True(t, !info.Recovered, "3 missed packets > MaxPackets 2: a new session")
	testkit.NotEqual(t, info.ID, id)
}
