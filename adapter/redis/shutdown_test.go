package redis

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestShutdownWithRedisFrozen: with Redis frozen (SIGSTOP: its connections
// open, no answer) and a handler at work — for the classic adapter, waiting
// for its logged broadcast (connection state recovery on); for the sharded
// one, its broadcast queued — a node shuts down within RequestsTimeout of
// the handler's start and a little more: once a write to Redis timed out,
// the Factory's Close drops what is queued (the sessions the server saves
// as its sockets leave) instead of giving Redis RequestsTimeout again, and
// it closes the subscriptions while the queue drains. No goroutine outlives
// it. Not parallel, for the goroutine check.
func TestShutdownWithRedisFrozen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		factory func(c goredis.UniversalClient, key string, timeout time.Duration, t *testing.T) adapter.Factory
	}{
		{"classic", func(c goredis.UniversalClient, key string, timeout time.Duration, t *testing.T) adapter.Factory {
			return New(c, Options{Key: key, RequestsTimeout: timeout, Logger: testLogger(t)})
		}},
		{"sharded", func(c goredis.UniversalClient, key string, timeout time.Duration, t *testing.T) adapter.Factory {
			return NewSharded(c, ShardedOptions{Key: key, RequestsTimeout: timeout, Logger: testLogger(t)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			rs := testkit.StartRedisServer(t)
			o, err := goredis.ParseURL(rs.URL())
			testkit.NoError(t, err)
			o.ContextTimeoutEnabled = true // as clusterdemo's
			client := goredis.NewClient(o)
			t.Cleanup(func() { _ = client.Close() })
			const timeout = 2 * time.Second
			f := tc.factory(client, uniqueKey(t), timeout, t)
			srv := server.New(server.Config{
				Adapter:                 f,
				ConnectionStateRecovery: &server.RecoveryConfig{MaxDisconnectionDuration: time.Minute},
				Logger:                  testLogger(t),
			})
			saying := make(chan struct{}, 16)
			srv.OnConnection(func(s *server.Socket) {
				s.Join("r")
				s.On("say", func(s *server.Socket, ev *server.Event) {
					saying <- struct{}{}
					_ = srv.To("r").Emit("said")
				})
			})
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			t.Cleanup(func() { _ = srv.Close(context.Background()) }) // when a check failed
			drv := testkit.NewNodeClientDriver(t)
			c, _ := testkit.MustConnect(t, drv, testkit.ConnectOptions{URL: ts.URL, Transports: []string{"websocket"}})
			n, err := srv.Of("/").Adapter().ServerCount(testkit.Ctx(t))
			testkit.NoError(t, err)
			testkit.Equal(t, n, 1)

			rs.Freeze()
			for range 3 {
				testkit.NoError(t, c.Emit(testkit.Ctx(t), "say"))
			}
			var begun time.Time
			select {
			case <-saying: // the handler now broadcasts towards a frozen Redis
				begun = time.Now()
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not run")
			}
			time.Sleep(timeout / 4)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			testkit.NoError(t, srv.Shutdown(ctx))
			t.Logf("shut down in %v with Redis frozen (%v after the handler began)",
				time.Since(start).Round(time.Millisecond), time.Since(begun).Round(time.Millisecond))
			// The handler's broadcast gets RequestsTimeout, and nothing
			// after it does: before, the classic adapter gave the sessions
			// saved at shutdown RequestsTimeout again (when its handler did
			// not wait for ever for a broadcast whose answer came as its
			// wait ended).
			bound := timeout + 1500*time.Millisecond
			testkit.True(t, time.Since(begun) < bound, "shutdown ended %v after the handler began (bound %v)", time.Since(begun), bound)
		})
	}
}

// TestLoggedTimeoutReleasesSender: a logged broadcast whose script ended
// with an error that leaves its fate unknown (here its deadline) is claimed
// and released by the answer, so that a sender whose own RequestsTimeout
// ended just before, and finds it claimed, does not wait for ever.
func TestLoggedTimeoutReleasesSender(t *testing.T) {
	r := &recovery{pending: make(map[uint64]*pendingBroadcast)}
	pb := &pendingBroadcast{done: make(chan struct{}), settled: make(chan struct{})}
	r.pending[1] = pb
	c := goredis.NewCmd(context.Background())
	c.SetErr(context.DeadlineExceeded)
	r.logged(1, pb, c)
	testkit.True(t, pb.claimed, "not claimed")
	testkit.ErrorIs(t, pb.err, context.DeadlineExceeded)
	for name, ch := range map[string]chan struct{}{"settled": pb.settled, "done": pb.done} {
		select {
		case <-ch:
		default:
			t.Fatalf("%s is not closed", name)
		}
	}
	testkit.Equal(t, len(r.pending), 0)
}
