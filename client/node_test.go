package client_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ioswarm/ioswarm/client"
	"github.com/ioswarm/ioswarm/internal/testkit"
)

// Tests against the Node.js reference server (integration/node/testapp.js,
// socket.io 4.8.4; see docs/testapp-contract.md). They skip when node or
// the npm packages are missing; IOSWARM_NODE_DIR names another directory
// holding testapp.js and its node_modules.

func startNodeServer(t *testing.T, args ...string) string {
	t.Helper()
	return startNodeProcess(t, testkit.FreeAddr(t), args...).URL()
}

func startNodeProcess(t *testing.T, addr string, args ...string) *testkit.Process {
	t.Helper()
	node := testkit.RequireNode(t)
	dir := os.Getenv("IOSWARM_NODE_DIR")
	if dir == "" {
		dir = filepath.Join(testkit.RepoRoot(t), "integration", "node")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io")); err != nil {
		t.Skipf("socket.io is not installed in %s: %v", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return testkit.StartProcess(t, ctx, node, append([]string{filepath.Join(dir, "testapp.js"), "-addr", addr}, args...)...)
}

// cutDialer opens WebSockets whose TCP connections a test can cut, as a
// network failure would.
type cutDialer struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *cutDialer) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			d.mu.Lock()
			d.conns = append(d.conns, c)
			d.mu.Unlock()
		}
		return c, err
	}}
}

func (d *cutDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}

type welcomeMsg struct {
	ID   string         `json:"id"`
	Nsp  string         `json:"nsp"`
	Auth map[string]any `json:"auth"`
}

// nodeSocket connects to url with a "welcome" listener in place.
func nodeSocket(t *testing.T, url string, opts client.Options) (*client.Socket, chan welcomeMsg) {
	t.Helper()
	s, err := client.NewSocket(url, opts)
	testkit.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	welcome := make(chan welcomeMsg, 4)
	s.On("welcome", func(ev *client.Event) {
		var w welcomeMsg
		testkit.NoError(t, ev.Decode(0, &w))
		welcome <- w
	})
	testkit.NoError(t, s.Connect(ctxT(t)))
	return s, welcome
}

func TestNodeServer(t *testing.T) {
	url := startNodeServer(t)
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			s, welcome := nodeSocket(t, url+"/custom", client.Options{Transports: m.list, Auth: map[string]any{"token": "ok"}})
			w := recv(t, welcome)
			testkit.Equal(t, w.ID, s.ID())
			testkit.Equal(t, w.Nsp, "/custom")
			testkit.Equal(t, w.Auth, map[string]any{"token": "ok"})

			// Echo: binary anywhere comes back binary.
			args, err := s.EmitWithAck(ctxT(t), "echo", "a", []byte{1, 2}, map[string]any{"k": []byte{3}})
			testkit.NoError(t, err)
			vals, err := args.Values()
			testkit.NoError(t, err)
			testkit.Equal(t, vals, []any{"a", []byte{1, 2}, map[string]any{"k": []byte{3}}})

			// The server asks the client.
			s.On("q", func(ev *client.Event) {
				var n int
				_ = ev.Decode(0, &n)
				_ = ev.Ack(n*2, []byte("bin"))
			})
			args, err = s.EmitWithAck(ctxT(t), "ask", map[string]any{"event": "q", "args": []any{21}, "timeoutMs": 2000})
			testkit.NoError(t, err)
			var reply struct {
				Err      *string `json:"err"`
				Response []any   `json:"response"`
			}
			testkit.NoError(t, args.Decode(0, &reply))
			testkit.True(t, reply.Err == nil)
			testkit.Equal(t, reply.Response[0], any(float64(42)))

			// Refusals: a middleware's, and an unknown namespace's.
			_, err = client.Dial(ctxT(t), url, client.Options{Transports: m.list, Auth: map[string]any{"token": "bad"}})
			var ce *client.ConnectError
			testkit.True(t, errors.As(err, &ce), "got %v", err)
			testkit.Equal(t, ce.Message, "unauthorized")
			testkit.Equal(t, ce.Data, any(map[string]any{"reason": "bad token"}))
			_, err = client.Dial(ctxT(t), url+"/nope", client.Options{Transports: m.list})
			testkit.True(t, errors.As(err, &ce), "got %v", err)
			testkit.Equal(t, ce.Message, "Invalid namespace")
			testkit.Equal(t, ce.Data, nil)

			// A timeout on an ack the server never sends (an unknown event).
			_, err = s.Timeout(50*time.Millisecond).EmitWithAck(ctxT(t), "no-such-event")
			testkit.ErrorIs(t, err, client.ErrTimeout)
		})
	}
}

// Recovery against Node, in the three modes: the connection is dropped
// with Manager.CloseTransport (the JS client's socket.io.engine.close()),
// and a cut at the TCP level once more over WebSocket.
func TestNodeServerRecovery(t *testing.T) {
	url := startNodeServer(t, "-recovery", "2m")
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) { testNodeRecovery(t, url, m.list, nil) })
	}
	t.Run("websocket-cut", func(t *testing.T) {
		var cd cutDialer
		testNodeRecovery(t, url, []string{"websocket"}, &cd)
	})
}

func testNodeRecovery(t *testing.T, url string, tr []string, cd *cutDialer) {
	testkit.CheckGoroutines(t)
	noJitter := 0.0
	opts := client.Options{Transports: tr, ReconnectionDelay: 100 * time.Millisecond, RandomizationFactor: &noJitter}
	if cd != nil {
		opts.Dialer = cd.dialer()
	}
	s, welcome := nodeSocket(t, url, opts)
	id := recv(t, welcome).ID
	testkit.Equal(t, id, s.ID())
	room := "r-" + id
	_, err := s.EmitWithAck(ctxT(t), "join", room)
	testkit.NoError(t, err)
	news := make(chan string, 4)
	s.On("news", func(ev *client.Event) {
		var v string
		_ = ev.Decode(0, &v)
		news <- v
	})
	// The session is recovered from an offset: one broadcast first.
	other := dial(t, url, client.Options{Transports: []string{"websocket"}})
	broadcast := func(text string) {
		_, err := other.EmitWithAck(ctxT(t), "broadcast", map[string]any{"to": []string{room}, "event": "news", "args": []any{text}})
		testkit.NoError(t, err)
	}
	broadcast("before")
	testkit.Equal(t, recv(t, news), "before")
	down := make(chan string, 1)
	s.OnDisconnect(func(r string) { down <- r })

	if cd != nil {
		cd.cut()
	} else {
		s.Manager().CloseTransport()
	}
	recv(t, down)
	broadcast("missed")

	// Node sends the missed packets before its CONNECT reply: the client
	// handles them once connected, before the new welcome.
	testkit.Equal(t, recv(t, news), "missed")
	testkit.Equal(t, recv(t, welcome).ID, id)
	testkit.True(t, s.Recovered())
	testkit.Equal(t, s.ID(), id)
	args, err := s.EmitWithAck(ctxT(t), "recovered")
	testkit.NoError(t, err)
	var rec bool
	testkit.NoError(t, args.Decode(0, &rec))
	testkit.True(t, rec, "the server restored the session")
}

func TestNodeServerRestart(t *testing.T) {
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			addr := testkit.FreeAddr(t)
			p := startNodeProcess(t, addr)
			s := dial(t, p.URL(), client.Options{Transports: m.list,
				ReconnectionDelay: 50 * time.Millisecond, ReconnectionDelayMax: 100 * time.Millisecond})
			got := make(chan int, 8)
			s.On("x", func(ev *client.Event) {
				var n int
				_ = ev.Decode(0, &n)
				got <- n
			})
			down := make(chan string, 1)
			up := make(chan struct{}, 1)
			s.OnDisconnect(func(r string) { down <- r })
			s.OnConnect(func() { up <- struct{}{} })

			testkit.NoError(t, p.Stop()) // io.close(): the transport closes, no DISCONNECT
			reason := recv(t, down)
			testkit.True(t, reason == client.ReasonTransportClose || reason == client.ReasonTransportError, "reason %q", reason)
			testkit.NoError(t, s.Emit("echo-event", "x", 1)) // buffered
			startNodeProcess(t, addr)
			recv(t, up)
			testkit.Equal(t, recv(t, got), 1)
			testkit.NoError(t, s.Emit("echo-event", "x", 2))
			testkit.Equal(t, recv(t, got), 2, "the buffered emit was delivered once")
		})
	}
}

// The rest of the client's features against Node, in the three modes: two
// namespaces over one connection, catch-all listeners both ways, volatile
// emits, and the disconnect reasons on each side.
func TestNodeServerFeatures(t *testing.T) {
	url := startNodeServer(t)
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			mgr, err := client.NewManager(url, client.Options{Transports: m.list})
			testkit.NoError(t, err)
			t.Cleanup(func() { _ = mgr.Close() })
			root, err := mgr.Socket(ctxT(t), "/", nil)
			testkit.NoError(t, err)
			custom, err := mgr.Socket(ctxT(t), "/custom", map[string]any{"token": "ok"})
			testkit.NoError(t, err)
			for _, s := range []*client.Socket{root, custom} {
				args, err := s.EmitWithAck(ctxT(t), "echo", s.Namespace())
				testkit.NoError(t, err)
				var nsp string
				testkit.NoError(t, args.Decode(0, &nsp))
				testkit.Equal(t, nsp, s.Namespace())
			}

			in, out := make(chan string, 8), make(chan string, 8)
			root.OnAny(func(ev *client.Event) { in <- ev.Name })
			root.OnAnyOutgoing(func(event string, _ client.Args) { out <- event })
			testkit.NoError(t, root.Volatile().Emit("echo-event", "hey", 1))
			testkit.Equal(t, recv(t, out), "echo-event")
			testkit.Equal(t, recv(t, in), "hey")

			// The server disconnects one namespace; the other stays.
			down := make(chan string, 1)
			custom.OnDisconnect(func(r string) { down <- r })
			_, err = custom.EmitWithAck(ctxT(t), "disconnect-sockets", map[string]any{"in": []string{custom.ID()}, "close": false})
			testkit.NoError(t, err)
			testkit.Equal(t, recv(t, down), client.ReasonIOServerDisconnect)
			testkit.True(t, root.Connected(), "the other namespace stays")

			// The client leaves: Node sees "client namespace disconnect".
			id := root.ID()
			testkit.NoError(t, root.Close())
			other := dial(t, url, client.Options{Transports: []string{"websocket"}})
			var last struct{ ID, Reason string }
			for deadline := time.Now().Add(5 * time.Second); last.ID != id; time.Sleep(20 * time.Millisecond) {
				testkit.True(t, time.Now().Before(deadline), "last disconnect %+v", last)
				args, err := other.EmitWithAck(ctxT(t), "last-disconnect")
				testkit.NoError(t, err)
				testkit.NoError(t, args.Decode(0, &last))
			}
			testkit.Equal(t, last.Reason, "client namespace disconnect")
		})
	}
}
