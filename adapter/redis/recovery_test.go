package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// recoveryNode is a server with recovery on the Redis adapter, with its own
// go-redis client so that the test can cut it off from Redis.
type recoveryNode struct {
	srv    *server.Server
	ts     *httptest.Server
	client *goredis.Client
	url    string
}

func startRecoveryNode(t *testing.T, redisURL, key string, rc *server.RecoveryConfig) *recoveryNode {
	t.Helper()
	client := newClient(t, redisURL)
	f := New(client, Options{Key: key, RequestsTimeout: clusterTimeout, Logger: testLogger(t)})
	srv := server.New(server.Config{Adapter: f, ConnectionStateRecovery: rc, Logger: testLogger(t)})
	ts := httptest.NewServer(srv)
	n := &recoveryNode{srv: srv, ts: ts, client: client, url: ts.URL}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		ts.Close()
	})
	return n
}

// kill makes the node vanish as a killed process would for recovery: it
// can no longer write to Redis — nothing of what it does from now on is
// kept. The proxy then cuts its clients off.
func (n *recoveryNode) kill() { _ = n.client.Close() }

// TestRecoveryAcrossNodes: a client whose node died is recovered by
// another node — same id, rooms and data, the broadcasts it missed once and
// in order, then live traffic — while a node without recovery, as a Node.js
// node of the classic adapter is, sees the usual messages.
func TestRecoveryAcrossNodes(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testRecoveryAcrossNodes(t, transport)
		})
	}
}

func testRecoveryAcrossNodes(t *testing.T, transport string) {
	redisURL := testkit.StartRedis(t)
	key := uniqueKey(t)
	rc := &server.RecoveryConfig{MaxDisconnectionDuration: 10 * time.Second}
	A := startRecoveryNode(t, redisURL, key, rc)
	B := startRecoveryNode(t, redisURL, key, rc)
	C := startRecoveryNode(t, redisURL, key, nil) // no recovery: the wire as Node's adapter sees it
	for _, n := range []*recoveryNode{A, B} {
		n.srv.OnConnection(func(s *server.Socket) {
			if !s.Recovered() {
				_ = s.Join("r1")
				s.SetData(map[string]any{"k": "v"})
			}
			_ = s.Emit("welcome", s.Recovered())
		})
	}
	proxy := testkit.NewSwitchProxy(t, A.url)

	drv := testkit.NewNodeClientDriver(t)
	c, id, args := connectRecovering(t, drv, proxy.URL(), transport, 200*time.Millisecond)
	testkit.Equal(t, len(args), 2, "welcome: recovered flag and offset")
	testkit.True(t, cluster.ValidOffset(fmt.Sprint(args[1])), "offset %v", args[1])

	cc := connectTo(t, drv, &testNode{url: C.url}, "/")
	bc := connectTo(t, drv, &testNode{url: B.url}, "/")
	_, err := bc.Next(tctx(t), "welcome")
	testkit.NoError(t, err)

	// A numbered broadcast to r1 from B every few ms, all along: the client
	// must get every number once, in order, across its move.
	var (
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		sent  atomic.Int64
		fails atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			if err := B.srv.To("r1").Emit("n", i); err != nil {
				fails.Add(1)
			}
			sent.Store(int64(i + 1))
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// What a node without recovery receives: no offset.
	testkit.NoError(t, A.srv.Emit("all", 1))
	testkit.Equal(t, next(t, cc, "all"), []any{float64(1)})
	got := next(t, bc, "all")
	testkit.Equal(t, len(got), 2, "a recovery node's client gets the offset: %v", got)
	time.Sleep(100 * time.Millisecond)

	A.kill()
	proxy.To(t, B.url)
	proxy.Cut()
	_, err = c.WaitDisconnect(tctx(t))
	testkit.NoError(t, err)
	// While the client is away (it comes back after 200 ms).
	testkit.NoError(t, B.srv.To("r1").Emit("m1", "x"))
	testkit.NoError(t, B.srv.Emit("m2"))
	testkit.NoError(t, B.srv.To("r2").Emit("not-mine"))
	testkit.NoError(t, B.srv.Volatile().Emit("volatile"))
	testkit.NoError(t, C.srv.To("r1").Emit("from-C")) // not logged: C does not recover

	sid, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, sid, id, "socket id after recovery on B")
	checkRestored(t, c, "B", B.srv, id)

	time.Sleep(150 * time.Millisecond) // live numbers after the switch
	close(stop)
	wg.Wait()
	last := int(sent.Load()) - 1
	testkit.NoError(t, B.srv.To("r1").Emit("end"))

	evs, err := c.Until(tctx(t), "end")
	testkit.NoError(t, err)
	want := 0
	var order []string
	for _, e := range evs {
		if e.Name != "n" {
			order = append(order, e.Name)
			continue
		}
		n := int(e.Args[0].(float64))
		if n != want {
			for _, e := range evs {
				t.Logf("%s %v", e.Name, e.Args)
			}
			t.Fatalf("numbered broadcasts: got %d, want %d (a gap or a duplicate at the switch)", n, want)
		}
		want++
	}
	testkit.Equal(t, want, last+1, "numbers received (%d failed to emit)", fails.Load())
	testkit.Equal(t, strings.Join(order, ","), "all,m1,m2,welcome,end", "other events, in order")
	testkit.NoError(t, c.Close(tctx(t)))
}

func sorted(s ...string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestRecoveryAcrossNodesExpired: after the window, the client gets a new
// session on the other node.
func TestRecoveryAcrossNodesExpired(t *testing.T) {
	t.Parallel()
	redisURL := testkit.StartRedis(t)
	key := uniqueKey(t)
	rc := &server.RecoveryConfig{MaxDisconnectionDuration: 300 * time.Millisecond}
	A := startRecoveryNode(t, redisURL, key, rc)
	B := startRecoveryNode(t, redisURL, key, rc)
	for _, n := range []*recoveryNode{A, B} {
		n.srv.OnConnection(func(s *server.Socket) { _ = s.Emit("welcome") })
	}
	proxy := testkit.NewSwitchProxy(t, A.url)
	drv := testkit.NewNodeClientDriver(t)
	c, id, _ := connectRecovering(t, drv, proxy.URL(), "websocket", 1500*time.Millisecond)
	// Stopped, not killed: the session is kept for the window only.
	proxy.To(t, B.url)
	proxy.Cut()
	sid, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, sid != id, "a new session after the window")
	info, err := c.Info(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, !info.Recovered, "socket.recovered after the window")
}

// TestRecoveryRedisRestart: Redis keeps nothing on disk here, so a restart
// loses the sessions and the log. Nodes go on serving; broadcasts that
// could not be logged still reach the local sockets (without an offset);
// a client that moves afterwards gets a new session, at once, and live
// traffic flows again.
func TestRecoveryRedisRestart(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key := uniqueKey(t)
	rc := &server.RecoveryConfig{MaxDisconnectionDuration: 10 * time.Second}
	A := startRecoveryNode(t, rs.URL(), key, rc)
	B := startRecoveryNode(t, rs.URL(), key, rc)
	for _, n := range []*recoveryNode{A, B} {
		n.srv.OnConnection(func(s *server.Socket) { _ = s.Join("r1"); _ = s.Emit("welcome") })
	}
	proxy := testkit.NewSwitchProxy(t, A.url)
	drv := testkit.NewNodeClientDriver(t)
	c, id, _ := connectRecovering(t, drv, proxy.URL(), "websocket", 200*time.Millisecond)

	rs.Stop()
	// Not logged: an error for the sender, still delivered on this node.
	err := A.srv.To("r1").Emit("during")
	testkit.True(t, err != nil, "a broadcast that could not be logged reports it")
	testkit.Equal(t, next(t, &tclient{Client: c}, "during"), []any{}, "delivered locally without an offset")
	rs.Start()

	proxy.To(t, B.url)
	proxy.Cut()
	sid, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, sid != id, "a new session: Redis lost the old one")
	eventually(t, "logging works again", func() bool { return B.srv.To("r1").Emit("after") == nil })
	args, err := c.Next(tctx(t), "after")
	testkit.NoError(t, err)
	testkit.Equal(t, len(args), 1, "an offset again")
}

// TestRecoveryNoGoroutineLeak: with recovery on — sessions saved, renewed
// and persisted, logged broadcasts, a restore — Close leaves no goroutine.
func TestRecoveryNoGoroutineLeak(t *testing.T) {
	testkit.CheckGoroutines(t)
	redisURL := testkit.StartRedis(t)
	key := uniqueKey(t)
	rc := &server.RecoveryConfig{MaxDisconnectionDuration: time.Second} // sessions renewed every 250 ms
	A := startRecoveryNode(t, redisURL, key, rc)
	B := startRecoveryNode(t, redisURL, key, rc)
	A.srv.OnConnection(func(s *server.Socket) { _ = s.Join("r1"); _ = s.Emit("welcome") })
	proxy := testkit.NewSwitchProxy(t, A.url)
	drv := testkit.NewNodeClientDriver(t)
	c, id, _ := connectRecovering(t, drv, proxy.URL(), "websocket", 100*time.Millisecond)
	time.Sleep(600 * time.Millisecond) // a renewal or two
	proxy.To(t, B.url)
	proxy.Cut()
	testkit.NoError(t, A.srv.To("r1").Emit("m"))
	sid, err := c.WaitReconnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, sid, id, "recovered on B")
	testkit.NoError(t, c.Close(tctx(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testkit.NoError(t, A.srv.Close(ctx))
	testkit.NoError(t, B.srv.Close(ctx))
}

// TestRecoverySubscriptionLost: a logged broadcast published while its
// node's subscription connection is down never comes back to it; the node
// delivers it to its own sockets after RequestsTimeout, with its offset,
// once — and a later broadcast as usual.
func TestRecoverySubscriptionLost(t *testing.T) {
	t.Parallel()
	redisURL := testkit.StartRedis(t)
	key := uniqueKey(t)
	A := startRecoveryNode(t, redisURL, key, &server.RecoveryConfig{MaxDisconnectionDuration: 10 * time.Second})
	A.srv.OnConnection(func(s *server.Socket) { _ = s.Join("r1") })
	drv := testkit.NewNodeClientDriver(t)
	c := connectTo(t, drv, &testNode{url: A.url}, "/")
	admin := newClient(t, redisURL)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		// Drop the subscription connections (go-redis makes a new one at once).
		testkit.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
		testkit.NoError(t, A.srv.To("r1").Emit("x", i))
		args := next(t, c, "x")
		testkit.Equal(t, args[0], float64(i), "broadcast %d", i)
		testkit.Equal(t, len(args), 2, "with its offset")
	}
	testkit.NoError(t, A.srv.To("r1").Emit("y"))
	evs, err := c.Until(tctx(t), "y")
	testkit.NoError(t, err)
	testkit.Equal(t, len(evs), 1, "nothing delivered twice: %v", evs)
}

// persistentRedis is a redis-server that keeps its data across a restart — an append-only
// file, fsynced at every write, in a directory of the test — on one port (testkit's
// RedisServer keeps nothing).
type persistentRedis struct {
	t    *testing.T
	bin  string
	args []string
	addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startPersistentRedis(t *testing.T) *persistentRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server is not installed: %v", err)
	}
	dir := t.TempDir()
	port := strconv.Itoa(testkit.FreePort(t))
	r := &persistentRedis{t: t, bin: bin, addr: "127.0.0.1:" + port, log: filepath.Join(dir, "redis.log")}
	r.args = []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--logfile", r.log,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *persistentRedis) url() string { return "redis://" + r.addr + "/0" }

// start starts the server and waits until it answers PING (it has loaded its data then).
func (r *persistentRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	testkit.NoError(r.t, r.cmd.Start())
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	c := goredis.NewClient(&goredis.Options{Addr: r.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.log)
			r.t.Fatalf("redis-server on %s does not answer PING; its log:\n%s", r.addr, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop stops the server (SIGTERM: it writes what it has and exits) and waits for it.
func (r *persistentRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		r.t.Errorf("redis-server on %s did not exit within 10 s of SIGTERM; killed", r.addr)
	}
	r.cmd = nil
}

// restart stops the server and starts it again on the same port with the same data.
func (r *persistentRedis) restart() {
	r.t.Helper()
	r.stop()
	r.start()
}

// closedDoor returns the URL of a listener that closes every connection at once: where a
// load balancer sends clients while no node can take them.
func closedDoor(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

// TestRecoveryRedisRestartPersisted: Redis keeps its data here (an append-only file), so a
// restart during the window loses nothing. A client that left before the restart, and is
// kept away until after it, comes back to another node and gets its id, rooms and data,
// and the broadcasts it missed — logged before the restart and after it — once and in
// order. TestRecoveryRedisRestart is the same restart without persistence.
func TestRecoveryRedisRestartPersisted(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testRecoveryRedisRestartPersisted(t, transport)
		})
	}
}

func testRecoveryRedisRestartPersisted(t *testing.T, transport string) {
	rs := startPersistentRedis(t)
	key := uniqueKey(t)
	rc := &server.RecoveryConfig{MaxDisconnectionDuration: 30 * time.Second}
	A := startRecoveryNode(t, rs.url(), key, rc)
	B := startRecoveryNode(t, rs.url(), key, rc)
	for _, n := range []*recoveryNode{A, B} {
		n.srv.OnConnection(func(s *server.Socket) {
			if !s.Recovered() {
				if err := s.Join("r1"); err != nil {
					t.Error(err)
				}
				if err := s.SetData(map[string]any{"k": "v"}); err != nil {
					t.Error(err)
				}
			}
			_ = s.Emit("welcome", s.Recovered())
		})
	}
	proxy := testkit.NewSwitchProxy(t, A.url)
	drv := testkit.NewNodeClientDriver(t)
	c, id, args := connectRecovering(t, drv, proxy.URL(), transport, 100*time.Millisecond)
	testkit.Equal(t, len(args), 2, "welcome: recovered flag and offset")

	// The client loses its node while Redis is up, and finds no node until Redis is back.
	proxy.To(t, closedDoor(t))
	proxy.Cut()
	_, err := c.WaitDisconnect(tctx(t))
	testkit.NoError(t, err)
	testkit.NoError(t, B.srv.To("r1").Emit("m1", 1)) // missed, logged before the restart

	rs.restart()
	// The nodes reconnect by themselves; wait until B's client is through again (a
	// broadcast is not retried: one that failed would not be logged).
	eventually(t, "B reaches Redis again", func() bool { return B.client.Ping(context.Background()).Err() == nil })
	testkit.NoError(t, B.srv.To("r1").Emit("m2", 2)) // missed, logged after the restart
	testkit.NoError(t, A.srv.Emit("m3", 3))
	testkit.NoError(t, B.srv.To("r2").Emit("not-mine"))

	proxy.To(t, B.url)
	sid, err := c.WaitReconnect(tctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, sid, id, "socket id after the Redis restart")
	checkRestored(t, c, "B", B.srv, id)

	testkit.NoError(t, B.srv.To("r1").Emit("end"))
	evs, err := c.Until(tctx(t), "end")
	testkit.NoError(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, e.Name)
		if strings.HasPrefix(e.Name, "m") {
			testkit.Equal(t, len(e.Args), 2, "%s: its argument and its offset: %v", e.Name, e.Args)
		}
	}
	testkit.Equal(t, strings.Join(got, ","), "m1,m2,m3,welcome,end", "replayed once and in order, then live")
	testkit.NoError(t, c.Close(tctx(t)))
}

// TestRecoveryStoreFailure: with recovery on the Redis adapter, Join, Leave and SetData
// store the socket's session before they return; while Redis is down they cannot, and say
// so with an error matching server.ErrNotStored — the change is made on this node all the
// same. Once Redis is back they store again.
func TestRecoveryStoreFailure(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key := uniqueKey(t)
	A := startRecoveryNode(t, rs.URL(), key, &server.RecoveryConfig{MaxDisconnectionDuration: 10 * time.Second})
	socks := make(chan *server.Socket, 1)
	A.srv.OnConnection(func(s *server.Socket) { socks <- s })
	drv := testkit.NewNodeClientDriver(t)
	c := connectTo(t, drv, &testNode{url: A.url}, "/")
	s := <-socks
	testkit.NoError(t, s.Join("kept"), "Join with Redis up")
	testkit.NoError(t, s.SetData(map[string]any{"k": 1}), "SetData with Redis up")

	rs.Stop()
	err := s.Join("r1")
	testkit.True(t, errors.Is(err, server.ErrNotStored), "Join with Redis down: %v", err)
	testkit.True(t, contains(s.Rooms(), "r1"), "r1 is joined on this node all the same: %v", s.Rooms())
	// Delivered to it on this node (not logged: the sender is told).
	testkit.True(t, A.srv.To("r1").Emit("in-r1") != nil, "a broadcast that could not be logged reports it")
	testkit.Equal(t, next(t, c, "in-r1"), []any{}, "r1's broadcast reaches the socket, without an offset")

	err = s.SetData(map[string]any{"k": 2})
	testkit.True(t, errors.Is(err, server.ErrNotStored), "SetData with Redis down: %v", err)
	var data map[string]int
	testkit.NoError(t, s.DecodeData(&data))
	testkit.Equal(t, data["k"], 2, "data set on this node all the same")

	err = s.Leave("kept")
	testkit.True(t, errors.Is(err, server.ErrNotStored), "Leave with Redis down: %v", err)
	testkit.True(t, !contains(s.Rooms(), "kept"), "kept is left on this node all the same: %v", s.Rooms())

	rs.Start()
	eventually(t, "Join stores again once Redis is back", func() bool { return s.Join("r2") == nil })
	testkit.NoError(t, s.SetData(map[string]any{"k": 3}), "SetData with Redis back")
	testkit.NoError(t, c.Close(tctx(t)))
}

// connectRecovering connects an official client to url over transport,
// reconnecting every delay, and waits for its "welcome" (whose arguments it
// returns, with the client and its id).
func connectRecovering(t *testing.T, drv *testkit.NodeClientDriver, url, transport string, delay time.Duration) (*testkit.Client, string, []any) {
	t.Helper()
	ms := delay.Milliseconds()
	c, err := drv.Connect(tctx(t), testkit.ConnectOptions{URL: url, Transports: []string{transport}, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": ms, "reconnectionDelayMax": ms, "randomizationFactor": 0}})
	testkit.NoError(t, err)
	id, err := c.WaitConnect(tctx(t))
	testkit.NoError(t, err)
	args, err := c.Next(tctx(t), "welcome")
	testkit.NoError(t, err)
	return c, id, args
}

// checkRestored checks that c's socket id was recovered on srv (node name), with the
// room "r1" and the data {"k": "v"} its first connection was given.
func checkRestored(t *testing.T, c *testkit.Client, name string, srv *server.Server, id string) {
	t.Helper()
	info, err := c.Info(tctx(t))
	testkit.NoError(t, err)
	testkit.True(t, info.Recovered, "socket.recovered")
	// The CONNECT reply goes out before the namespace lists the socket.
	eventually(t, name+" lists the recovered socket", func() bool { return srv.Of("/").Socket(id) != nil })
	s := srv.Of("/").Socket(id)
	testkit.True(t, s.Recovered(), name+"'s socket is recovered")
	testkit.Equal(t, strings.Join(s.Rooms(), ","), strings.Join(sorted(id, "r1"), ","), "rooms restored")
	var data map[string]string
	testkit.NoError(t, s.DecodeData(&data))
	testkit.Equal(t, data["k"], "v", "data restored")
}
