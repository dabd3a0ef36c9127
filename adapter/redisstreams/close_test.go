package redisstreams

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// TestCloseWithRedisFrozen: with Redis frozen (SIGSTOP: its connections
// open, no answer), a node shuts down within its bounds although a handler
// waits for a logged broadcast, its sockets' sessions are queued for Redis
// and its reader is blocked in XREAD; Close returns at its ctx's end at the
// latest, then within its bounds; no goroutine outlives it. A client
// without ContextTimeoutEnabled cannot bound its commands by their
// deadlines: its Factory's goroutines end once Redis answers again. Not
// parallel, for the goroutine check.
func TestCloseWithRedisFrozen(t *testing.T) {
	testkit.CheckGoroutines(t)
	rs := testkit.StartRedisServer(t)
	opts := testOptions()
	opts.RequestsTimeout = 2 * time.Second
	opts.BlockTime = 2 * time.Second
	// What a node may take to shut down with Redis frozen: the handlers
	// waiting for Redis (RequestsTimeout), then the Factory (RequestsTimeout
	// for what is queued, BlockTime + readGrace for an XREAD), and slack for
	// a loaded machine. Before the readers were bounded it was BlockTime +
	// 10 s after the freeze at least.
	bound := opts.RequestsTimeout + max(opts.RequestsTimeout, opts.BlockTime+readGrace) + 2*time.Second
	bounded := func() *goredis.Client {
		o, err := goredis.ParseURL(rs.URL())
		testkit.NoError(t, err)
		o.ContextTimeoutEnabled = true // as clusterdemo's
		c := goredis.NewClient(o)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// Node A keeps sessions; a socket's "say" broadcasts to its room, a
	// logged broadcast that waits for its entry's id.
	fa := New(bounded(), opts)
	A := server.New(server.Config{
		Adapter:                 fa,
		ConnectionStateRecovery: &server.RecoveryConfig{MaxDisconnectionDuration: time.Minute},
		Logger:                  logger(t).With("node", "A"),
	})
	saying := make(chan struct{}, 16)
	A.OnConnection(func(s *server.Socket) {
		s.Join("r")
		s.On("say", func(s *server.Socket, ev *server.Event) {
			saying <- struct{}{}
			_ = A.To("r").Emit("said")
		})
	})
	tsA := httptest.NewServer(A)
	t.Cleanup(tsA.Close)
	t.Cleanup(func() { _ = A.Close(context.Background()) }) // when a check failed
	B := startNode(t, bounded(), opts, "B")

	// Factory G (with a server: its namespaces and a queued broadcast).
	fg := New(bounded(), opts)
	G := server.New(server.Config{Adapter: fg, Logger: logger(t).With("node", "G")})
	G.Of("/g")
	t.Cleanup(func() { _ = G.Close(context.Background()) })

	// Factory H, on a client that does not honour context deadlines.
	fh := New(redisClient(t, rs.URL()), opts)
	H := server.New(server.Config{Adapter: fh, Logger: logger(t).With("node", "H")})
	t.Cleanup(func() { _ = H.Close(context.Background()) })

	drv := testkit.NewNodeClientDriver(t)
	c := connect(t, drv, tsA.URL)
	n, err := A.Of("/").Adapter().ServerCount(testkit.Ctx(t))
	testkit.NoError(t, err)
	testkit.Equal(t, n, 4) // the readers read and every node subscribed

	rs.Freeze()
	for range 3 {
		testkit.NoError(t, c.Emit(testkit.Ctx(t), "say"))
	}
	select {
	case <-saying: // A's handler now waits for Redis
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not run")
	}
	_ = G.Emit("tick")
	_ = H.Emit("tick")

	// A shuts down: handlers, sessions, adapters, Factory.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testkit.NoError(t, A.Shutdown(ctx))
	took := time.Since(start)
	t.Logf("node A shut down in %v with Redis frozen", took.Round(time.Millisecond))
	testkit.True(t, took < bound, "node A shut down in %v (bound %v)", took, bound)

	// G's Close returns at its ctx's end, then within its bounds, with its
	// goroutines ended; so does closing node B.
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	start = time.Now()
	err = fg.Close(short)
	testkit.ErrorIs(t, err, context.DeadlineExceeded)
	testkit.True(t, time.Since(start) < 2*time.Second, "Close(300ms) took %v", time.Since(start))
	var wg sync.WaitGroup
	for name, closeFn := range map[string]func(context.Context) error{"G": G.Close, "B": B.srv.Close} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			testkit.NoError(t, closeFn(ctx))
			t.Logf("node %s closed in %v with Redis frozen", name, time.Since(start).Round(time.Millisecond))
			testkit.True(t, time.Since(start) < bound, "node %s closed in %v (bound %v)", name, time.Since(start), bound)
		}()
	}
	wg.Wait()
	testkit.NoError(t, fg.Close(context.Background())) // closed: returns at once

	// H's reader waits in an XREAD whose deadline go-redis does not take
	// from the context: Close returns at its ctx's end; once Redis answers
	// again, the goroutines end and Close returns nil.
	short2, cancelShort2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort2()
	testkit.ErrorIs(t, H.Close(short2), context.DeadlineExceeded)
	rs.Thaw()
	testkit.NoError(t, fh.Close(ctx))
}
