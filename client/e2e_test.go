package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// End-to-end tests: the client against an ioswarm server in the same
// process, in the three transport modes.

var transportModes = []struct {
	name string
	list []string
}{
	{"websocket", []string{"websocket"}},
	{"polling", []string{"polling"}},
	{"upgrade", nil},
}

// trackingListener records the connections it accepts, so that a test can
// cut every transport at once, WebSockets included (httptest forgets
// hijacked connections).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) cut() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type testServer struct {
	srv *server.Server
	url string
	ln  *trackingListener
}

// startServer runs an ioswarm server; setup registers its handlers. It is
// closed when the test ends (before the goroutine check, which the caller
// registers first).
func startServer(t *testing.T, cfg server.Config, setup func(srv *server.Server)) *testServer {
	t.Helper()
	srv := server.New(cfg)
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewUnstartedServer(srv)
	ln := &trackingListener{Listener: ts.Listener}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		_ = srv.Close(context.Background())
		ts.Close()
	})
	return &testServer{srv: srv, url: ts.URL, ln: ln}
}

// cutUntil cuts the server's connections until the client reports the
// loss on down: a long-polling client may not notice a cut made between two
// requests (net/http retries a request whose idle connection was closed),
// so cut again until it does.
func cutUntil[T any](t *testing.T, ln *trackingListener, down <-chan T) T {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		ln.cut()
		select {
		case v := <-down:
			return v
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("the client did not see the cut")
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opts client.Options) *client.Socket {
	t.Helper()
	s, err := client.Dial(ctxT(t), url, opts)
	testkit.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

func eachMode(t *testing.T, f func(t *testing.T, tr []string)) {
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			f(t, m.list)
		})
	}
}

func TestE2EConnectAndAck(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		ids := make(chan string, 2)
		ts := startServer(t, server.Config{}, func(srv *server.Server) {
			for _, nsp := range []string{"/", "/custom"} {
				srv.Of(nsp).OnConnection(func(s *server.Socket) {
					ids <- s.Namespace().Name() + " " + s.ID()
					s.On("echo", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(ev.Args.Any()...) })
				})
			}
		})
		root := dial(t, ts.url, client.Options{Transports: tr})
		testkit.Equal(t, recv(t, ids), "/ "+root.ID())
		custom := dial(t, ts.url+"/custom", client.Options{Transports: tr})
		testkit.Equal(t, recv(t, ids), "/custom "+custom.ID())
		testkit.Equal(t, custom.Namespace(), "/custom")

		for _, s := range []*client.Socket{root, custom} {
			args, err := s.EmitWithAck(ctxT(t), "echo", "hi", 42, map[string]any{"a": []int{1}})
			testkit.NoError(t, err)
			testkit.Equal(t, args.Len(), 3)
			var str string
			var n int
			var obj struct{ A []int }
			testkit.NoError(t, args.Decode(0, &str))
			testkit.NoError(t, args.Decode(1, &n))
			testkit.NoError(t, args.Decode(2, &obj))
			testkit.Equal(t, str, "hi")
			testkit.Equal(t, n, 42)
			testkit.Equal(t, obj.A, []int{1})
			testkit.ErrorIs(t, args.Decode(3, &n), client.ErrDecode)
		}
	})
}

func TestE2EMultiplexedManager(t *testing.T) {
	testkit.CheckGoroutines(t)
	conns := make(chan string, 2)
	ts := startServer(t, server.Config{}, func(srv *server.Server) {
		for _, nsp := range []string{"/", "/admin"} {
			srv.Of(nsp).OnConnection(func(s *server.Socket) { conns <- s.ConnID() })
		}
	})
	m, err := client.NewManager(ts.url, client.Options{Transports: []string{"websocket"}})
	testkit.NoError(t, err)
	a, err := m.Socket(ctxT(t), "/", nil)
	testkit.NoError(t, err)
	b, err := m.Socket(ctxT(t), "/admin", nil)
	testkit.NoError(t, err)
	testkit.Equal(t, recv(t, conns), recv(t, conns), "one Engine.IO connection")
	_, err = m.Socket(ctxT(t), "/admin", nil)
	testkit.ErrorIs(t, err, client.ErrNamespaceInUse)
	testkit.NoError(t, a.Close())
	testkit.True(t, b.Connected(), "the other namespace stays")
	testkit.NoError(t, m.Close())
	testkit.True(t, !b.Connected())
	testkit.ErrorIs(t, b.Emit("x"), client.ErrClosed)
}

func TestE2EMiddlewareRefusal(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		ts := startServer(t, server.Config{}, func(srv *server.Server) {
			srv.Of("/admin").Use(func(s *server.Socket) error {
				var auth struct{ Token string }
				_ = json.Unmarshal(s.Handshake().Auth, &auth)
				if auth.Token != "secret" {
					return &server.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "no token"}}
				}
				return nil
			})
		})
		_, err := client.Dial(ctxT(t), ts.url+"/admin", client.Options{Transports: tr})
		var ce *client.ConnectError
		testkit.True(t, errors.As(err, &ce), "want a *ConnectError, got %v", err)
		testkit.Equal(t, ce.Message, "unauthorized")
		testkit.Equal(t, ce.Data, any(map[string]any{"reason": "no token"}))

		s := dial(t, ts.url+"/admin", client.Options{Transports: tr, Auth: map[string]string{"token": "secret"}})
		testkit.True(t, s.Connected())
	})
}

func startBenchServer(b *testing.B, srv *server.Server) string {
	ts := httptest.NewServer(srv)
	b.Cleanup(func() {
		_ = srv.Close(context.Background())
		ts.Close()
	})
	return ts.URL
}
