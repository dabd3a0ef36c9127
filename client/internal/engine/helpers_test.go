package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/engineio"
)

// modes are the three ways to connect.
var modes = []struct {
	name       string
	transports []string
	final      string // the transport once settled
}{
	{"polling", []string{TransportPolling}, TransportPolling},
	{"websocket", []string{TransportWebSocket}, TransportWebSocket},
	{"upgrade", nil, TransportWebSocket},
}

// serverSide records one server session and echoes by default.
type serverSide struct {
	conn   *engineio.Conn
	onMsg  func(s *serverSide, data []byte, binary bool) // nil: echo
	mu     sync.Mutex
	msgs   []Message
	reason string
	closed chan struct{}
}

func (s *serverSide) OnMessage(data []byte, binary bool) {
	s.mu.Lock()
	s.msgs = append(s.msgs, Message{Data: append([]byte(nil), data...), Binary: binary})
	s.mu.Unlock()
	if s.onMsg != nil {
		s.onMsg(s, data, binary)
		return
	}
	_ = s.conn.Send(engineio.NewMessage(append([]byte(nil), data...), binary))
}

func (s *serverSide) OnClose(reason string, _ error) {
	s.mu.Lock()
	s.reason = reason
	s.mu.Unlock()
	close(s.closed)
}

func (s *serverSide) received() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// env is an engineio.Server behind an httptest.Server.
type env struct {
	srv   *engineio.Server
	ts    *httptest.Server
	setup func(*serverSide)
	conns chan *serverSide
}

func newEnv(t *testing.T, cfg engineio.Config, setup func(*serverSide)) *env {
	t.Helper()
	e := &env{setup: setup, conns: make(chan *serverSide, 16)}
	e.srv = engineio.NewServer(cfg, func(c *engineio.Conn) engineio.Handler {
		s := &serverSide{conn: c, closed: make(chan struct{})}
		if e.setup != nil {
			e.setup(s)
		}
		select {
		case e.conns <- s:
		default:
		}
		return s
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", e.srv)
	e.ts = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		e.ts.Close()
	})
	return e
}

// session returns the server side of the next session.
func (e *env) session(t *testing.T) *serverSide {
	t.Helper()
	select {
	case s := <-e.conns:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no server session")
		return nil
	}
}

// quiet is a server configuration whose heartbeat stays out of the way.
func quiet() engineio.Config {
	return engineio.Config{PingInterval: time.Minute, PingTimeout: time.Minute}
}

// inbox collects what a client's OnMessage receives.
type inbox struct {
	mu   sync.Mutex
	msgs []Message
	sig  chan struct{}
}

func newInbox() *inbox { return &inbox{sig: make(chan struct{}, 1)} }

func (b *inbox) onMessage(data []byte, binary bool) {
	b.mu.Lock()
	b.msgs = append(b.msgs, Message{Data: data, Binary: binary})
	b.mu.Unlock()
	notify(b.sig)
}

// wait waits until n messages arrived and returns them.
func (b *inbox) wait(t *testing.T, n int) []Message {
	t.Helper()
	return b.waitConn(t, nil, n)
}

// waitConn is wait that gives up as soon as c (if not nil) is closed, and
// says why: a connection that closed (a ping timeout, say) does not read as
// messages lost for ten seconds.
func (b *inbox) waitConn(t *testing.T, c *Conn, n int) []Message {
	t.Helper()
	var done <-chan struct{}
	if c != nil {
		done = c.Done()
	}
	deadline := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		if len(b.msgs) >= n {
			m := append([]Message(nil), b.msgs...)
			b.mu.Unlock()
			return m
		}
		got := len(b.msgs)
		b.mu.Unlock()
		select {
		case <-b.sig:
		case <-done:
			// OnMessage calls are over once Done is closed: one last look.
			done = nil
			b.mu.Lock()
			got = len(b.msgs)
			b.mu.Unlock()
			if got < n {
				t.Fatalf("got %d messages, want %d: connection closed, reason %q (%v)", got, n, c.Reason(), c.Err())
			}
		case <-deadline:
			t.Fatalf("got %d messages, want %d", got, n)
		}
	}
}

func dial(t *testing.T, e *env, opts Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, e.ts.URL, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitDone waits for the end of c and checks its reason.
func waitDone(t *testing.T, c *Conn, want string, within time.Duration) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(within):
		t.Fatalf("connection still open after %v, want %q", within, want)
	}
	if got := c.Reason(); got != want {
		t.Fatalf("reason %q (err %v), want %q", got, c.Err(), want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newHTTPServer(h http.Handler) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", h)
	return httptest.NewServer(mux)
}
