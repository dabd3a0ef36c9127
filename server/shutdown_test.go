package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// redisServer returns a server on the Redis adapter (channel prefix key)
// served by an httptest server; both, and the Redis client, end at cleanup.
func redisServer(t *testing.T, url, key string, setup func(*server.Server)) (*server.Server, string) {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	testkit.NoError(t, err)
	rc := goredis.NewClient(opts)
	srv := server.New(server.Config{Adapter: redis.New(rc, redis.Options{Key: key})})
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		ts.CloseClientConnections()
		ts.Close()
		_ = rc.Close()
	})
	return srv, ts.URL
}

// A disconnect handler run by Shutdown broadcasts through a cluster adapter
// that is still open: a client of another node gets the message.
func TestShutdownDisconnectHandlersReachCluster(t *testing.T) {
	testkit.CheckGoroutines(t)
	url := testkit.StartRedis(t)
	key := "drain-" + time.Now().Format("150405.000000000")

	emitted := make(chan error, 2)
	gone := make(chan string, 1)
	var a *server.Server
	a, urlA := redisServer(t, url, key, func(s *server.Server) {
		s.OnConnection(func(sock *server.Socket) {
			sock.OnDisconnect(func(sock *server.Socket, reason string) {
				emitted <- a.Emit("offline", sock.ID(), reason)
				emitted <- a.ServerSideEmit(context.Background(), "gone", sock.ID())
			})
		})
	})
	_, urlB := redisServer(t, url, key, func(s *server.Server) {
		s.OnServerSideEmit("gone", func(ev *server.Event) {
			var id string
			if ev.Decode(0, &id) == nil {
				gone <- id
			}
		})
	})

	cb, err := dialPeer(t, peerOptions{url: urlB, transports: []string{"websocket"}})
	testkit.NoError(t, err)
	ca, err := dialPeer(t, peerOptions{url: urlA, transports: []string{"polling"}})
	testkit.NoError(t, err)
	idA := ca.ID()

	testkit.NoError(t, a.Shutdown(ctxT(t)))
	for _, what := range []string{"Emit", "ServerSideEmit"} {
		select {
		case err := <-emitted:
			testkit.NoError(t, err, what+" from the disconnect handler")
		default:
			t.Fatal("Shutdown returned before the disconnect handler ran")
		}
	}
	args, err := cb.next(ctxT(t), "offline")
	testkit.NoError(t, err)
	testkit.Equal(t, args, []any{idA, "server shutting down"})
	select {
	case id := <-gone:
		testkit.Equal(t, id, idA)
	case <-ctxT(t).Done():
		t.Fatal("the other node got no ServerSideEmit")
	}

	// Without a GET pending at that moment, the polling client learns of
	// the close from its next request (503): "transport error".
	reason, err := ca.waitDisconnect(ctxT(t))
	testkit.NoError(t, err)
	testkit.True(t, reason == "transport close" || reason == "transport error", "reason %q", reason)

	testkit.ErrorIs(t, a.Emit("late"), server.ErrClosed)
	testkit.NoError(t, a.Close(ctxT(t)), "Close after Shutdown")
	testkit.NoError(t, a.Shutdown(ctxT(t)), "Shutdown after Shutdown")
}

// Shutdown then http.Server.Shutdown with a long-polling GET pending both
// return at once; the client, told nothing but a transport close,
// reconnects to a new server on the same address.
func TestShutdownHTTPServerAndReconnect(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			testkit.NoError(t, err)
			addr := ln.Addr().String()
			serve := func(ln net.Listener) (*server.Server, *http.Server) {
				io := server.New(server.Config{})
				hs := &http.Server{Handler: io, ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = hs.Serve(ln) }()
				return io, hs
			}
			io1, hs1 := serve(ln)
			c, err := dialPeer(t, peerOptions{url: "http://" + addr, transports: tr.list, reconnect: 100 * time.Millisecond})
			testkit.NoError(t, err)
			id1 := c.ID()
			time.Sleep(200 * time.Millisecond) // the client's next GET is pending

			start := time.Now()
			testkit.NoError(t, io1.Shutdown(ctxT(t)))
			testkit.NoError(t, hs1.Shutdown(ctxT(t)))
			took := time.Since(start)
			testkit.True(t, took < 2*time.Second, "shutdown took %v", took)

			reason, err := c.waitDisconnect(ctxT(t))
			testkit.NoError(t, err)
			testkit.Equal(t, reason, "transport close")

			ln2, err := net.Listen("tcp", addr)
			testkit.NoError(t, err)
			io2, hs2 := serve(ln2)
			defer func() {
				testkit.NoError(t, io2.Shutdown(ctxT(t)))
				testkit.NoError(t, hs2.Shutdown(ctxT(t)))
				_ = hs2.Close()
			}()
			id2, err := c.waitConnect(ctxT(t))
			testkit.NoError(t, err, "the client reconnects by itself")
			testkit.True(t, id2 != id1, "a new socket")
			testkit.NoError(t, c.Close())
		})
	}
}

// Shutdown waits for a blocked disconnect handler only until ctx ends, then
// closes everything; new handshakes are refused while it drains.
func TestShutdownRespectsContext(t *testing.T) {
	testkit.CheckGoroutines(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // also when the test fails first: no goroutine left
	srv := server.New(server.Config{})
	srv.OnConnection(func(s *server.Socket) {
		s.OnDisconnect(func(*server.Socket, string) {
			close(entered)
			<-release
		})
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := dialPeer(t, peerOptions{url: ts.URL, transports: []string{"websocket"}})
	testkit.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- srv.Shutdown(ctx) }()
	<-entered
	resp, err := http.Get(ts.URL + "/socket.io/?EIO=4&transport=polling")
	testkit.NoError(t, err)
	resp.Body.Close()
	testkit.Equal(t, resp.StatusCode, http.StatusServiceUnavailable, "handshake while draining")
	testkit.NoError(t, srv.Close(ctxT(t)), "Close during Shutdown")

	err = <-done
	took := time.Since(start)
	testkit.True(t, errors.Is(err, context.DeadlineExceeded), "Shutdown: %v", err)
	testkit.True(t, took < 3*time.Second, "Shutdown took %v", took)
	testkit.ErrorIs(t, srv.Emit("x"), server.ErrClosed)
	_, err = srv.FetchSockets(ctxT(t))
	testkit.ErrorIs(t, err, server.ErrClosed)
	unblock()
	reason, err := c.waitDisconnect(ctxT(t))
	testkit.NoError(t, err)
	testkit.Equal(t, reason, "transport close")
	ts.CloseClientConnections()
	testkit.NoError(t, srv.Close(ctxT(t)))
	// The handler's goroutine ends once released: CheckGoroutines waits for it.
}
