package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// transports are the client modes every test runs in.
var transports = []struct {
	name string
	list []string
}{
	{"websocket", []string{"websocket"}},
	{"polling", []string{"polling"}},
	{"default", nil},
}

type fixture struct {
	t   *testing.T
	srv *server.Server
	url string
	tr  []string
}

// start returns a server (configured by setup before it serves), whose
// peers connect with the transports tr.
func start(t *testing.T, tr []string, cfg server.Config, setup func(*server.Server)) *fixture {
	t.Helper()
	srv := server.New(cfg)
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		ts.Close()
	})
	return &fixture{t: t, srv: srv, url: ts.URL, tr: tr}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) connect(nsp string, auth any) *peer {
	f.t.Helper()
	c, err := dialPeer(f.t, peerOptions{url: f.url, nsp: nsp, transports: f.tr, auth: auth})
	testkit.NoError(f.t, err)
	return c
}

func forEachTransport(t *testing.T, fn func(t *testing.T, tr []string)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			fn(t, tr.list)
		})
	}
}

func TestEmitWithAck(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		type result struct {
			args server.Args
			err  error
		}
		results := make(chan result, 4)
		f := start(t, tr, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.On("go", func(s *server.Socket, ev *server.Event) {
					// Blocking here is fine: the read loop resolves the ack.
					args, err := s.EmitWithAck(context.Background(), "question", "q", []byte{7})
					results <- result{args, err}
					args, err = s.Timeout(200*time.Millisecond).EmitWithAck(context.Background(), "ignored")
					results <- result{args, err}
					_ = s.Timeout(200*time.Millisecond).EmitWithAckFunc("question", func(a server.Args, err error) {
						results <- result{a, err}
					}, 1)
					_ = s.EmitWithAckFunc("question", func(a server.Args, err error) { results <- result{a, err} }, 2)
				})
			})
		})
		c := f.connect("/", nil)
		c.onAckEcho("question")
		c.On("ignored", func(*client.Event) {}) // asked for an ack, gives none
		testkit.NoError(t, c.Emit("go"))

		r := <-results
		testkit.NoError(t, r.err)
		var q string
		var bin []byte
		testkit.NoError(t, r.args.Decode(0, &q))
		testkit.NoError(t, r.args.Decode(1, &bin))
		testkit.Equal(t, []any{q, bin}, []any{"q", []byte{7}})

		r = <-results
		testkit.ErrorIs(t, r.err, server.ErrTimeout)
		testkit.ErrorIs(t, r.err, context.DeadlineExceeded)
		testkit.Equal(t, r.err.Error(), "operation has timed out")

		for i := 0; i < 2; i++ {
			r = <-results
			testkit.NoError(t, r.err)
			var n int
			testkit.NoError(t, r.args.Decode(0, &n))
			testkit.True(t, n == 1 || n == 2, "ack arg %d", n)
		}
	})
}

func TestCatchAllAndPacketMiddleware(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		var mu sync.Mutex
		var seen []string
		note := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
		f := start(t, tr, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.OnAny(func(_ *server.Socket, ev *server.Event) { note("any:" + ev.Name) })
				first := s.PrependAny(func(_ *server.Socket, ev *server.Event) { note("first:" + ev.Name) })
				s.OnAnyOutgoing(func(_ *server.Socket, event string, _ server.Args) { note("out:" + event) })
				s.Use(func(_ *server.Socket, ev *server.Event) error {
					if ev.Name == "forbidden" {
						return errors.New("nope")
					}
					return nil
				})
				s.OnError(func(_ *server.Socket, err error) { note("error:" + err.Error()) })
				s.On("forbidden", func(*server.Socket, *server.Event) { note("handler:forbidden") })
				s.On("ok", func(s *server.Socket, ev *server.Event) {
					note("handler:ok")
					s.OffAny(first)
					_ = s.Emit("reply")
					_ = ev.Ack("done")
				})
			})
		})
		c := f.connect("/", nil)
		testkit.NoError(t, c.Emit("forbidden"))
		res, err := c.EmitWithAck(ctxT(t), "ok")
		testkit.NoError(t, err)
		testkit.Equal(t, values(t, res), []any{"done"})
		_, err = c.next(ctxT(t), "reply")
		testkit.NoError(t, err)
		testkit.NoError(t, c.Emit("forbidden"))
		res, err = c.EmitWithAck(ctxT(t), "ok")
		testkit.NoError(t, err)
		testkit.Equal(t, values(t, res), []any{"done"})
		mu.Lock()
		defer mu.Unlock()
		testkit.Equal(t, seen, []string{
			"first:forbidden", "any:forbidden", "error:nope",
			"first:ok", "any:ok", "handler:ok", "out:reply",
			"any:forbidden", "error:nope",
			"any:ok", "handler:ok", "out:reply",
		})
	})
}

func TestDecodeIntoStruct(t *testing.T) {
	type upload struct {
		Name string `json:"name"`
		Body []byte `json:"body"`
		Tags []string
	}
	got := make(chan upload, 1)
	f := start(t, []string{"websocket"}, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.On("upload", func(s *server.Socket, ev *server.Event) {
				var u upload
				if err := ev.Decode(0, &u); err != nil {
					t.Errorf("decode: %v", err)
				}
				got <- u
				_ = ev.Ack(u) // []byte inside a struct goes back as binary
			})
		})
	})
	c := f.connect("/", nil)
	res, err := c.EmitWithAck(ctxT(t), "upload", map[string]any{"name": "a.bin", "body": []byte{1, 2, 3}, "Tags": []any{"x"}})
	testkit.NoError(t, err)
	testkit.Equal(t, <-got, upload{"a.bin", []byte{1, 2, 3}, []string{"x"}})
	testkit.Equal(t, values(t, res), []any{map[string]any{"name": "a.bin", "body": []byte{1, 2, 3}, "Tags": []any{"x"}}})
}

func TestBroadcastEmitWithAck(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		f := start(t, tr, server.Config{}, nil)
		a, b, c := f.connect("/", nil), f.connect("/", nil), f.connect("/", nil)
		a.onAck("poll", "A")
		b.onAck("poll", "B")
		c.On("poll", func(*client.Event) {}) // never answers

		sockets := f.srv.Sockets()
		testkit.Equal(t, len(sockets), 3)

		res, err := f.srv.Except(c.ID()).Timeout(2*time.Second).EmitWithAck(ctxT(t), "poll")
		testkit.NoError(t, err)
		got := decodeStrings(t, res)
		testkit.Equal(t, got, []string{"A", "B"})

		res, err = f.srv.Timeout(300*time.Millisecond).EmitWithAck(ctxT(t), "poll")
		testkit.ErrorIs(t, err, server.ErrTimeout)
		testkit.ErrorIs(t, err, context.DeadlineExceeded)
		testkit.Equal(t, decodeStrings(t, res), []string{"A", "B"})

		res, err = f.srv.To("nobody").Timeout(time.Second).EmitWithAck(ctxT(t), "poll")
		testkit.NoError(t, err)
		testkit.Equal(t, len(res), 0)
	})
}

func decodeStrings(t *testing.T, a server.Args) []string {
	t.Helper()
	out := make([]string, len(a))
	for i := range a {
		testkit.NoError(t, a.Decode(i, &out[i]))
	}
	sort.Strings(out)
	return out
}

func TestDynamicNamespaces(t *testing.T) {
	f := start(t, []string{"websocket"}, server.Config{}, func(srv *server.Server) {
		p := srv.OfFunc(func(name string, auth json.RawMessage) bool { return string(auth) == `{"let":"me"}` })
		p.OnConnection(func(s *server.Socket) { _ = s.Emit("hello", s.Namespace().Name()) })
	})
	c := f.connect("/anything", map[string]any{"let": "me"})
	args, err := c.next(ctxT(t), "hello")
	testkit.NoError(t, err)
	testkit.Equal(t, args, []any{"/anything"})

	_, err = dialPeer(t, peerOptions{url: f.url, nsp: "/other", transports: f.tr})
	var ce *client.ConnectError
	testkit.True(t, errors.As(err, &ce), "refused: %v", err)
	testkit.Equal(t, ce.Message, "Invalid namespace")
}

func TestReservedNames(t *testing.T) {
	srv := server.New(server.Config{})
	defer srv.Close(context.Background())
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		err := srv.Emit(name)
		testkit.ErrorIs(t, err, server.ErrReservedEvent)
		testkit.Equal(t, err.Error(), `"`+name+`" is a reserved event name`)
	}
	for _, name := range []string{"connect", "connection", "new_namespace"} {
		testkit.ErrorIs(t, srv.ServerSideEmit(context.Background(), name), server.ErrReservedEvent)
	}
	res, err := srv.ServerSideEmitWithAck(context.Background(), "alone")
	testkit.NoError(t, err)
	testkit.Equal(t, len(res), 0)
}

func TestRemoteSocketOperations(t *testing.T) {
	f := start(t, []string{"websocket"}, server.Config{}, nil)
	a, b := f.connect("/", nil), f.connect("/", nil)
	ctx := ctxT(t)
	socks, err := f.srv.FetchSockets(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, len(socks), 2)
	for _, rs := range socks {
		testkit.True(t, rs.Local() != nil, "local sockets are local")
		if rs.ID == a.ID() {
			testkit.NoError(t, rs.Join(ctx, "vip"))
		}
	}
	testkit.NoError(t, f.srv.To("vip").Emit("vip-only", 1))
	args, err := a.next(ctx, "vip-only")
	testkit.NoError(t, err)
	testkit.Equal(t, args, []any{float64(1)})

	testkit.NoError(t, f.srv.In("vip").DisconnectSockets(ctx, false))
	reason, err := a.waitDisconnect(ctx)
	testkit.NoError(t, err)
	testkit.Equal(t, reason, "io server disconnect")
	testkit.True(t, b.Connected(), "b was not in vip")
}

func TestHandlerPanicKeepsServing(t *testing.T) {
	f := start(t, []string{"websocket"}, server.Config{}, func(srv *server.Server) {
		srv.OnConnection(func(s *server.Socket) {
			s.On("boom", func(*server.Socket, *server.Event) { panic("boom") })
			s.On("ping", func(_ *server.Socket, ev *server.Event) { _ = ev.Ack("pong") })
		})
	})
	c := f.connect("/", nil)
	testkit.NoError(t, c.Emit("boom"))
	res, err := c.EmitWithAck(ctxT(t), "ping")
	testkit.NoError(t, err)
	testkit.Equal(t, values(t, res), []any{"pong"})
}

func TestDisconnectReasonsAndRooms(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		type disc struct {
			reason string
			rooms  []string
		}
		got := make(chan disc, 2)
		f := start(t, tr, server.Config{}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.Join("r")
				var rooms []string
				s.OnDisconnecting(func(s *server.Socket, _ string) { rooms = s.Rooms() })
				s.OnDisconnect(func(s *server.Socket, reason string) {
					testkit.Equal(t, len(s.Rooms()), 0)
					got <- disc{reason, rooms}
				})
			})
		})
		c := f.connect("/", nil)
		id := c.ID()
		testkit.NoError(t, c.Close())
		d := <-got
		want := []string{"r", id}
		sort.Strings(want)
		testkit.Equal(t, d, disc{"client namespace disconnect", want})

		c2 := f.connect("/", nil)
		c2.dropTransport()
		d = <-got
		testkit.Equal(t, d.reason, "transport close")
	})
}

// TestCloseLeavesNoGoroutine checks that Close ends every goroutine the
// server started, with clients connected on both transports.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	testkit.CheckGoroutines(t)
	srv := server.New(server.Config{})
	srv.OnConnection(func(s *server.Socket) {
		s.On("wait", func(s *server.Socket, ev *server.Event) {
			<-s.Context().Done() // a handler blocked until the socket goes
		})
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var clients []*peer
	for _, tr := range transports {
		c, err := dialPeer(t, peerOptions{url: ts.URL, transports: tr.list})
		testkit.NoError(t, err)
		testkit.NoError(t, c.Emit("wait"))
		clients = append(clients, c)
		if tr.list == nil {
			// Close during the upgrade too, but in a known state: after it.
			for deadline := time.Now().Add(5 * time.Second); c.Manager().Transport() != "websocket"; time.Sleep(10 * time.Millisecond) {
				testkit.True(t, time.Now().Before(deadline), "no upgrade")
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	testkit.NoError(t, srv.Close(ctxT(t)))
	for _, c := range clients {
		reason, err := c.waitDisconnect(ctxT(t))
		testkit.NoError(t, err)
		testkit.True(t, reason == "transport close" || reason == "transport error", "reason %q", reason)
	}
	ts.CloseClientConnections()
	testkit.NoError(t, srv.Close(ctxT(t)), "Close is idempotent")
}

func TestConnectTimeout(t *testing.T) {
	srv := server.New(server.Config{ConnectTimeout: 300 * time.Millisecond})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	testkit.NoError(t, err)
	defer ws.Close()
	start := time.Now()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break // closed by the server
		}
	}
	d := time.Since(start)
	testkit.True(t, d >= 250*time.Millisecond && d < 3*time.Second, "closed after %v", d)
}

func TestCustomPath(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr []string) {
		f := start(t, tr, server.Config{Path: "/rt"}, func(srv *server.Server) {
			srv.OnConnection(func(s *server.Socket) {
				s.On("where", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(s.Handshake().URL[:4]) })
			})
		})
		c, err := dialPeer(t, peerOptions{url: f.url, path: "/rt", transports: tr})
		testkit.NoError(t, err)
		res, err := c.EmitWithAck(ctxT(t), "where")
		testkit.NoError(t, err)
		testkit.Equal(t, values(t, res), []any{"/rt/"})
	})
}

// TestCloseEndsPendingBroadcastAcks checks that a broadcast still waiting
// for acks ends with ErrClosed when the server closes, instead of a timer
// firing after Close.
func TestCloseEndsPendingBroadcastAcks(t *testing.T) {
	testkit.CheckGoroutines(t)
	srv := server.New(server.Config{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := dialPeer(t, peerOptions{url: ts.URL, transports: []string{"websocket"}})
	testkit.NoError(t, err)
	c.On("q", func(*client.Event) {}) // never answers
	got := make(chan error, 1)
	testkit.NoError(t, srv.Timeout(time.Hour).EmitWithAckFunc("q", func(_ server.Args, err error) { got <- err }))
	time.Sleep(50 * time.Millisecond)
	testkit.NoError(t, srv.Close(ctxT(t)))
	select {
	case err := <-got:
		testkit.ErrorIs(t, err, server.ErrClosed)
	default:
		t.Fatal("the broadcast's callback did not run by the end of Close")
	}
	_, _ = c.waitDisconnect(ctxT(t))
	ts.CloseClientConnections()
}

// TestNamespaceHandlers: On adds listeners, as Node's on: the namespace's
// run first, then the socket's, in the order they were added, sharing the
// event (the first Ack is sent); Off removes one by its ID, or all of an
// event's.
func TestNamespaceHandlers(t *testing.T) {
	var mu sync.Mutex
	logs := map[string][]string{}
	note := func(s *server.Socket, what string) {
		mu.Lock()
		logs[s.ID()] = append(logs[s.ID()], what)
		mu.Unlock()
	}
	ids := make(chan server.ListenerID, 1)
	f := start(t, []string{"websocket"}, server.Config{}, func(srv *server.Server) {
		root := srv.Of("/")
		root.On("who", func(s *server.Socket, _ *server.Event) { note(s, "ns1") })
		ids <- root.On("who", func(s *server.Socket, _ *server.Event) { note(s, "ns2") })
		srv.OnConnection(func(s *server.Socket) {
			s.On("who", func(s *server.Socket, _ *server.Event) { note(s, "s1") })
			s2 := s.On("who", func(s *server.Socket, _ *server.Event) { note(s, "s2") })
			s.On("who", func(s *server.Socket, ev *server.Event) {
				mu.Lock()
				got := strings.Join(logs[s.ID()], ",")
				delete(logs, s.ID())
				mu.Unlock()
				_ = ev.Ack(got)
				_ = ev.Ack("ignored: only the first Ack is sent")
			})
			s.On("drop", func(s *server.Socket, ev *server.Event) {
				s.Off("who", s2)
				_ = ev.Ack()
			})
		})
		p := srv.OfRegexp(regexp.MustCompile(`^/d-\d+$`))
		p.On("who", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(s.Namespace().Name()) })
	})
	c := f.connect("/", nil)
	res, err := c.EmitWithAck(ctxT(t), "who")
	testkit.NoError(t, err)
	testkit.Equal(t, values(t, res), []any{"ns1,ns2,s1,s2"})

	_, err = c.EmitWithAck(ctxT(t), "drop")
	testkit.NoError(t, err)
	f.srv.Of("/").Off("who", <-ids)
	res, err = c.EmitWithAck(ctxT(t), "who")
	testkit.NoError(t, err)
	testkit.Equal(t, values(t, res), []any{"ns1,s1"})

	res, err = f.connect("/d-7", nil).EmitWithAck(ctxT(t), "who")
	testkit.NoError(t, err)
	testkit.Equal(t, values(t, res), []any{"/d-7"})
}

// TestCleanupEmptyChildNamespaces: one connection visits 2,000 names of a
// dynamic namespace (half refused by a middleware); with the option on,
// every child is removed once empty, the heap does not keep them, and a
// name visited again works as new.
func TestCleanupEmptyChildNamespaces(t *testing.T) {
	srv := server.New(server.Config{CleanupEmptyChildNamespaces: true})
	dyn := srv.OfRegexp(regexp.MustCompile(`^/d-\d+$`))
	dyn.Use(func(s *server.Socket) error {
		if strings.HasSuffix(s.Namespace().Name(), "7") {
			return errors.New("no sevens")
		}
		return nil
	})
	dyn.On("who", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(s.Namespace().Name()) })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())

	w := dialWire(ts.URL, "/")
	defer w.ws.Close()
	visit := func(i int) {
		nsp := "/d-" + strconv.Itoa(i)
		w.send("40" + nsp + ",")
		reply := w.read()
		if strings.HasPrefix(reply, "44") {
			return // refused
		}
		testkit.True(t, strings.HasPrefix(reply, "40"+nsp+","), "reply %q", reply)
		w.send("41" + nsp + ",")
	}
	visit(0)
	base := testkit.LiveHeap()
	const n = 2000
	for i := 1; i <= n; i++ {
		visit(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(dyn.Children()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	testkit.Equal(t, len(dyn.Children()), 0, "children left")
	growth := int64(testkit.LiveHeap()) - int64(base)
	t.Logf("heap growth after %d namespaces: %d kB", n, growth>>10)
	testkit.True(t, growth < 2<<20, "heap grew by %d bytes", growth)

	// A name visited again is created again, with the parent's handlers.
	w.send("40/d-5,")
	testkit.True(t, strings.HasPrefix(w.read(), "40/d-5,"), "reconnect")
	w.send(`42/d-5,1["who"]`)
	testkit.Equal(t, w.read(), `43/d-5,1["/d-5"]`)
	testkit.Equal(t, len(dyn.Children()), 1)
}

// TestAckTimerRace: acknowledgements whose timeouts race the client's
// answers. Under -race: the timer of a pending ack is seen by whoever takes
// the ack (the answer or the timeout), and nothing outlives Close.
func TestAckTimerRace(t *testing.T) {
	testkit.CheckGoroutines(t)
	const n = 300
	srv := server.New(server.Config{})
	var answered sync.WaitGroup // by the client or by the timeout
	answered.Add(n)
	srv.OnConnection(func(s *server.Socket) {
		go func() {
			for i := 0; i < n; i++ {
				d := time.Duration(i%3+1) * time.Millisecond
				if s.Timeout(d).EmitWithAckFunc("q", func(server.Args, error) { answered.Done() }) != nil {
					answered.Done()
				}
			}
		}()
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	w := dialWire(ts.URL, "/")
	for i := 0; i < n; i++ {
		frame := w.read()
		open := strings.IndexByte(frame, '[')
		if !strings.HasPrefix(frame, "42") || open < 0 {
			t.Fatalf("frame %q", frame)
		}
		w.send("43" + frame[2:open] + "[1]")
	}
	answered.Wait()
	w.ws.Close()
	testkit.NoError(t, srv.Close(ctxT(t)))
}

// TestBroadcastAckContextRace: broadcasts with acks whose context ends at
// once, many at a time. Under -race: the collector's stop function is
// published under its lock, so the context ending first does not race it.
func TestBroadcastAckContextRace(t *testing.T) {
	srv := server.New(server.Config{})
	defer srv.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := srv.Timeout(time.Second).EmitWithAck(ctx, "q")
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("EmitWithAck: %v", err)
			}
		}()
	}
	wg.Wait()
}
