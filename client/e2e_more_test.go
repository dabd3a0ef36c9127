package client_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

func TestE2EServerAsksForAck(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		answers := make(chan string, 1)
		ready := make(chan *server.Socket, 1)
		ts := startServer(t, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) { ready <- s })
		})
		c := dial(t, ts.url, client.Options{Transports: tr})
		var seen atomic.Int32
		c.OnAny(func(ev *client.Event) { seen.Add(1) })
		c.On("question", func(ev *client.Event) {
			var q string
			_ = ev.Decode(0, &q)
			testkit.True(t, ev.HasAck())
			testkit.NoError(t, ev.Ack("answer to "+q))
			testkit.NoError(t, ev.Ack("ignored"))
		})
		s := recv(t, ready)
		args, err := s.Timeout(5*time.Second).EmitWithAck(ctxT(t), "question", "life")
		testkit.NoError(t, err)
		var a string
		testkit.NoError(t, args.Decode(0, &a))
		answers <- a
		testkit.Equal(t, recv(t, answers), "answer to life")
		testkit.Equal(t, seen.Load(), int32(1))
	})
}

func TestE2EBinaryRoundTrip(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		ts := startServer(t, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.On("upload", func(s *server.Socket, ev *server.Event) {
					var doc struct {
						Name string `json:"name"`
						Body []byte `json:"body"`
					}
					if err := ev.Decode(0, &doc); err != nil {
						_ = ev.Ack(err.Error())
						return
					}
					// Answer with the bytes reversed, nested and at the top level.
					rev := bytes.Clone(doc.Body)
					for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
						rev[i], rev[j] = rev[j], rev[i]
					}
					_ = ev.Ack(map[string]any{"name": doc.Name, "rev": rev}, []byte{9})
				})
				s.On("bounce", func(s *server.Socket, ev *server.Event) { _ = s.Emit("bounced", ev.Args.Any()...) })
			})
		})
		c := dial(t, ts.url, client.Options{Transports: tr})
		body := []byte{0, 1, 2, 3, 255}
		args, err := c.EmitWithAck(ctxT(t), "upload", map[string]any{"name": "f", "body": body})
		testkit.NoError(t, err)
		var got struct {
			Name string `json:"name"`
			Rev  []byte `json:"rev"`
		}
		testkit.NoError(t, args.Decode(0, &got))
		testkit.Equal(t, got.Name, "f")
		testkit.Equal(t, got.Rev, []byte{255, 3, 2, 1, 0})
		var top []byte
		testkit.NoError(t, args.Decode(1, &top))
		testkit.Equal(t, top, []byte{9})

		bounced := make(chan []any, 1)
		c.On("bounced", func(ev *client.Event) {
			v, err := ev.Args.Values()
			testkit.NoError(t, err)
			bounced <- v
		})
		testkit.NoError(t, c.Emit("bounce", []byte("a"), "x", [][]byte{[]byte("b"), []byte("c")}))
		testkit.Equal(t, recv(t, bounced), []any{[]byte("a"), "x", []any{[]byte("b"), []byte("c")}})
	})
}

func TestE2EAckTimeout(t *testing.T) {
	testkit.CheckGoroutines(t)
	ts := startServer(t, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.On("silent", func(s *server.Socket, ev *server.Event) {})
		})
	})
	c := dial(t, ts.url, client.Options{Transports: []string{"websocket"}})
	start := time.Now()
	_, err := c.Timeout(100*time.Millisecond).EmitWithAck(ctxT(t), "silent")
	testkit.ErrorIs(t, err, client.ErrTimeout)
	testkit.ErrorIs(t, err, context.DeadlineExceeded)
	testkit.Equal(t, err.Error(), "operation has timed out")
	testkit.True(t, time.Since(start) >= 100*time.Millisecond)

	done := make(chan error, 1)
	testkit.NoError(t, c.Timeout(50*time.Millisecond).EmitWithAckFunc("silent", func(args client.Args, err error) { done <- err }))
	testkit.ErrorIs(t, recv(t, done), client.ErrTimeout)

	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	_, err = c.EmitWithAck(ctx, "silent")
	testkit.ErrorIs(t, err, context.Canceled)
}

func TestE2EServerDisconnect(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		ts := startServer(t, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.On("kick", func(s *server.Socket, ev *server.Event) { s.Disconnect(false) })
			})
		})
		c := dial(t, ts.url, client.Options{Transports: tr, ReconnectionDelay: 10 * time.Millisecond})
		reasons := make(chan string, 2)
		c.OnDisconnect(func(reason string) { reasons <- reason })
		var reconnected atomic.Bool
		c.OnConnect(func() { reconnected.Store(true) })
		testkit.NoError(t, c.Emit("kick"))
		testkit.Equal(t, recv(t, reasons), client.ReasonIOServerDisconnect)
		testkit.True(t, !c.Connected())
		testkit.Equal(t, c.ID(), "")
		testkit.ErrorIs(t, c.Emit("x"), client.ErrDisconnected)
		time.Sleep(100 * time.Millisecond)
		testkit.True(t, !reconnected.Load(), "no reconnection after io server disconnect")
	})
}

func TestE2EClientClose(t *testing.T) {
	testkit.CheckGoroutines(t)
	reasons := make(chan string, 1)
	ts := startServer(t, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.OnDisconnect(func(s *server.Socket, reason string) { reasons <- reason })
		})
	})
	c, err := client.Dial(ctxT(t), ts.url, client.Options{})
	testkit.NoError(t, err)
	local := make(chan string, 1)
	c.OnDisconnect(func(reason string) { local <- reason })
	testkit.NoError(t, c.Close())
	testkit.Equal(t, recv(t, local), client.ReasonIOClientDisconnect)
	testkit.Equal(t, recv(t, reasons), server.ReasonClientNamespaceDisconnect)
	testkit.ErrorIs(t, c.Emit("x"), client.ErrClosed)
	testkit.NoError(t, c.Close())
}

func TestE2EReconnectDeliversBufferedOnce(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		got := make(chan int, 16)
		ts := startServer(t, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.On("n", func(s *server.Socket, ev *server.Event) {
					var n int
					_ = ev.Decode(0, &n)
					got <- n
					_ = ev.Ack(n)
				})
			})
		})
		c := dial(t, ts.url, client.Options{Transports: tr, ReconnectionDelay: 50 * time.Millisecond, ReconnectionDelayMax: 50 * time.Millisecond})
		down := make(chan string, 1)
		up := make(chan struct{}, 1)
		c.OnDisconnect(func(reason string) { down <- reason })
		c.OnConnect(func() { up <- struct{}{} })
		firstID := c.ID()

		reason := cutUntil(t, ts.ln, down)
		testkit.True(t, reason == client.ReasonTransportClose || reason == client.ReasonTransportError, "reason %q", reason)
		// Emitted while disconnected: buffered, sent after the reconnection.
		testkit.NoError(t, c.Emit("n", 1))
		testkit.NoError(t, c.Volatile().Emit("n", 99)) // dropped
		acked := make(chan int, 1)
		testkit.NoError(t, c.EmitWithAckFunc("n", func(args client.Args, err error) {
			testkit.NoError(t, err)
			var n int
			_ = args.Decode(0, &n)
			acked <- n
		}, 2))
		recv(t, up)
		testkit.True(t, c.Connected())
		testkit.NotEqual(t, c.ID(), firstID)
		testkit.True(t, !c.Recovered())
		testkit.Equal(t, recv(t, got), 1)
		testkit.Equal(t, recv(t, got), 2)
		testkit.Equal(t, recv(t, acked), 2)
		testkit.NoError(t, c.Emit("n", 3))
		testkit.Equal(t, recv(t, got), 3, "buffered emits delivered once")
	})
}

func TestE2ERecovery(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		sockets := make(chan *server.Socket, 2)
		// A long-polling server notices a lost client only by its heartbeat,
		// and recovers a session only once it did: a short heartbeat, and a
		// reconnection that comes after it.
		cfg := server.Config{ConnectionStateRecovery: &server.RecoveryConfig{},
			PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond}
		ts := startServer(t, cfg, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				if !s.Recovered() {
					_ = s.Join("room")
				}
				sockets <- s
			})
		})
		noJitter := 0.0
		c := dial(t, ts.url, client.Options{Transports: tr, ReconnectionDelay: 600 * time.Millisecond,
			ReconnectionDelayMax: 600 * time.Millisecond, RandomizationFactor: &noJitter})
		events := make(chan string, 8)
		c.On("news", func(ev *client.Event) {
			var s string
			_ = ev.Decode(0, &s)
			events <- s
		})
		down := make(chan struct{}, 1)
		up := make(chan struct{}, 1)
		c.OnDisconnect(func(string) { down <- struct{}{} })
		c.OnConnect(func() { up <- struct{}{} })
		first := recv(t, sockets)
		id := c.ID()
		testkit.Equal(t, first.ID(), id)

		testkit.NoError(t, ts.srv.To("room").Emit("news", "before"))
		testkit.Equal(t, recv(t, events), "before")
		cutUntil(t, ts.ln, down)
		// Missed while disconnected: delivered after the recovery.
		testkit.NoError(t, ts.srv.To("room").Emit("news", "missed1"))
		testkit.NoError(t, ts.srv.To("room").Emit("news", "missed2"))
		recv(t, up)
		second := recv(t, sockets)
		testkit.True(t, second.Recovered())
		testkit.True(t, c.Recovered())
		testkit.Equal(t, c.ID(), id)
		testkit.Equal(t, recv(t, events), "missed1")
		testkit.Equal(t, recv(t, events), "missed2")
		testkit.NoError(t, ts.srv.To("room").Emit("news", "after"))
		testkit.Equal(t, recv(t, events), "after")
	})
}

func TestE2EDialUnreachable(t *testing.T) {
	testkit.CheckGoroutines(t)
	ts := startServer(t, server.Config{}, nil)
	url := ts.url
	ts.ln.Close() // nothing listens there any more
	for _, tr := range transportModes {
		_, err := client.Dial(ctxT(t), url, client.Options{Transports: tr.list})
		testkit.True(t, err != nil, "%s: dial must fail", tr.name)
	}
	_, err := client.Dial(ctxT(t), "ftp://example.com", client.Options{})
	testkit.True(t, err != nil)
}

func TestE2ENewSocketThenConnect(t *testing.T) {
	testkit.CheckGoroutines(t)
	got := make(chan string, 4)
	ts := startServer(t, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			_ = s.Emit("welcome", s.ID())
			s.On("early", func(s *server.Socket, ev *server.Event) { got <- "early" })
			s.On("kick", func(s *server.Socket, ev *server.Event) { s.Disconnect(false) })
		})
	})
	s, err := client.NewSocket(ts.url, client.Options{})
	testkit.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	welcome := make(chan string, 2)
	s.On("welcome", func(ev *client.Event) {
		var id string
		_ = ev.Decode(0, &id)
		welcome <- id
	})
	testkit.NoError(t, s.Emit("early")) // buffered until connected
	testkit.NoError(t, s.Connect(ctxT(t)))
	testkit.NoError(t, s.Connect(ctxT(t)), "connected already")
	testkit.Equal(t, recv(t, welcome), s.ID())
	testkit.Equal(t, recv(t, got), "early")

	// Disconnected by the server: no reconnection, but Connect again works.
	down := make(chan string, 1)
	s.OnDisconnect(func(r string) { down <- r })
	testkit.NoError(t, s.Emit("kick"))
	testkit.Equal(t, recv(t, down), client.ReasonIOServerDisconnect)
	testkit.NoError(t, s.Connect(ctxT(t)))
	testkit.Equal(t, recv(t, welcome), s.ID())
	testkit.NoError(t, s.Close())
	testkit.ErrorIs(t, s.Connect(ctxT(t)), client.ErrClosed)
}

// TestE2EConnectAgainRightAfterServerDisconnect: Connect called as soon as
// the disconnect handler has run, while the socket's release from its
// manager may still be on its way, registers it again (it once failed with
// ErrNamespaceInUse, and the late release then unregistered the new
// connection).
func TestE2EConnectAgainRightAfterServerDisconnect(t *testing.T) {
	testkit.CheckGoroutines(t)
	ts := startServer(t, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.On("kick", func(s *server.Socket, ev *server.Event) { s.Disconnect(false) })
			s.On("ping", func(s *server.Socket, ev *server.Event) { _ = ev.Ack("pong") })
		})
	})
	s, err := client.NewSocket(ts.url, client.Options{})
	testkit.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	down := make(chan string, 1)
	s.OnDisconnect(func(r string) { down <- r })
	testkit.NoError(t, s.Connect(ctxT(t)))
	for i := range 100 {
		testkit.NoError(t, s.Emit("kick"))
		testkit.Equal(t, recv(t, down), client.ReasonIOServerDisconnect)
		testkit.NoError(t, s.Connect(ctxT(t)), "connect %d", i)
	}
	// Still registered: the manager routes the server's packets to it.
	res, err := s.EmitWithAck(ctxT(t), "ping")
	testkit.NoError(t, err)
	var got string
	testkit.NoError(t, res.Decode(0, &got))
	testkit.Equal(t, got, "pong")
}

func TestE2EManagerReconnectsEveryNamespace(t *testing.T) {
	testkit.CheckGoroutines(t)
	conns := make(chan string, 8)
	ts := startServer(t, server.Config{}, func(srv *server.Server) {
		for _, nsp := range []string{"/", "/custom"} {
			srv.Of(nsp).Use(func(s *server.Socket) error {
				conns <- s.Namespace().Name() + " " + string(s.Handshake().Auth)
				return nil
			})
		}
	})
	m, err := client.NewManager(ts.url, client.Options{Transports: []string{"websocket"}, ReconnectionDelay: 20 * time.Millisecond})
	testkit.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	a, err := m.Socket(ctxT(t), "/", map[string]int{"n": 1})
	testkit.NoError(t, err)
	b, err := m.Socket(ctxT(t), "/custom", map[string]int{"n": 2})
	testkit.NoError(t, err)
	testkit.Equal(t, recv(t, conns), `/ {"n":1}`)
	testkit.Equal(t, recv(t, conns), `/custom {"n":2}`)
	up := make(chan string, 2)
	a.OnConnect(func() { up <- "/" })
	b.OnConnect(func() { up <- "/custom" })
	cutUntil(t, ts.ln, up) // the first to come back
	recv(t, up)
	seen := map[string]bool{recv(t, conns): true, recv(t, conns): true}
	testkit.Equal(t, seen, map[string]bool{`/ {"n":1}`: true, `/custom {"n":2}`: true}, "both namespaces reconnect with their auth")
	testkit.True(t, a.Connected() && b.Connected())
}

func TestE2EBlockedHandlerKeepsConnection(t *testing.T) {
	testkit.CheckGoroutines(t)
	cfg := server.Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}
	ts := startServer(t, cfg, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.On("echo", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(ev.Args.Any()...) })
			_ = s.Emit("block")
		})
	})
	s, err := client.NewSocket(ts.url, client.Options{Transports: []string{"websocket"}})
	testkit.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	down := make(chan string, 1)
	s.OnDisconnect(func(r string) { down <- r })
	answer := make(chan error, 1)
	s.On("block", func(ev *client.Event) {
		// Several heartbeats pass while this handler waits, on the answer
		// to its own socket's emit: the reader goes on.
		time.Sleep(300 * time.Millisecond)
		_, err := s.EmitWithAck(ctxT(t), "echo", 1)
		answer <- err
	})
	testkit.NoError(t, s.Connect(ctxT(t)))
	testkit.NoError(t, recv(t, answer))
	select {
	case r := <-down:
		t.Fatalf("disconnected: %s", r)
	default:
	}
}

// CloseTransport drops the connection as a network failure would: the
// server sees "transport close", the socket "forced close", and it
// reconnects and recovers its session. Transport names the transport.
func TestE2ECloseTransport(t *testing.T) {
	eachMode(t, func(t *testing.T, tr []string) {
		reasons := make(chan string, 2)
		sockets := make(chan *server.Socket, 2)
		cfg := server.Config{ConnectionStateRecovery: &server.RecoveryConfig{}}
		ts := startServer(t, cfg, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.OnDisconnect(func(_ *server.Socket, reason string) { reasons <- reason })
				sockets <- s
			})
		})
		noJitter := 0.0
		c := dial(t, ts.url, client.Options{Transports: tr, ReconnectionDelay: 10 * time.Millisecond,
			RandomizationFactor: &noJitter})
		down := make(chan string, 1)
		c.OnDisconnect(func(reason string) { down <- reason })
		news := make(chan struct{}, 1)
		c.On("news", func(*client.Event) { news <- struct{}{} })
		first := recv(t, sockets)
		// A session is recovered from an offset: the client has one once
		// a broadcast reached it.
		testkit.NoError(t, ts.srv.Emit("news"))
		recv(t, news)
		want := "websocket"
		if len(tr) == 1 {
			want = tr[0]
		}
		for deadline := time.Now().Add(5 * time.Second); c.Manager().Transport() != want; time.Sleep(5 * time.Millisecond) {
			testkit.True(t, time.Now().Before(deadline), "transport %q, want %q", c.Manager().Transport(), want)
		}

		c.Manager().CloseTransport()
		testkit.Equal(t, recv(t, down), client.ReasonForcedClose)
		testkit.Equal(t, recv(t, reasons), "transport close")
		second := recv(t, sockets)
		testkit.True(t, second.Recovered(), "recovered")
		testkit.Equal(t, second.ID(), first.ID())
	})
}
