package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// fakeConn is an in-memory Engine.IO connection: what the client sends is
// recorded, and the test plays the server with deliver and drop.
type fakeConn struct {
	onMessage func([]byte, bool)
	sent      chan frame

	mu     sync.Mutex
	closed bool
	why    string
	doneCh chan struct{}
}

var errFakeClosed = errors.New("fake: closed")

func (f *fakeConn) send(msgs ...frame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFakeClosed
	}
	for _, m := range msgs {
		f.sent <- m
	}
	return nil
}

func (f *fakeConn) close() error { f.end(reasonForcedClose); return nil }

// reasonForcedClose is the engine's reason for a close it was asked
// for.
const reasonForcedClose = "forced close"

func (f *fakeConn) end(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed, f.why = true, reason
		close(f.doneCh)
	}
}

func (f *fakeConn) done() <-chan struct{} { return f.doneCh }

func (f *fakeConn) transport() string { return "websocket" }

func (f *fakeConn) reason() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.why
}

// deliver plays a text message from the server, as the reader would.
func (f *fakeConn) deliver(text string) { f.onMessage([]byte(text), false) }

func (f *fakeConn) deliverBinary(b []byte) { f.onMessage(b, true) }

// drop ends the connection as the network would.
func (f *fakeConn) drop(reason string) { f.end(reason) }

// next returns the next frame the client sent.
func (f *fakeConn) next(t *testing.T) frame {
	t.Helper()
	select {
	case m := <-f.sent:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("fake: nothing sent")
		return frame{}
	}
}

func (f *fakeConn) nextText(t *testing.T) string {
	t.Helper()
	m := f.next(t)
	if m.binary {
		t.Fatalf("fake: got a binary frame %q, want text", m.data)
	}
	return string(m.data)
}

// quiet checks that nothing more was sent within a short while.
func (f *fakeConn) quiet(t *testing.T) {
	t.Helper()
	select {
	case m := <-f.sent:
		t.Fatalf("fake: unexpected frame %q", m.data)
	case <-time.After(30 * time.Millisecond):
	}
}

// fakeServer hands out fake connections; fail makes the next dials fail.
type fakeServer struct {
	conns chan *fakeConn
	mu    sync.Mutex
	fail  error
	dials int
}

func newFakeServer() *fakeServer { return &fakeServer{conns: make(chan *fakeConn, 16)} }

func (s *fakeServer) dial(ctx context.Context, base string, opts *Options, onMessage func([]byte, bool)) (conn, error) {
	s.mu.Lock()
	s.dials++
	err := s.fail
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := &fakeConn{onMessage: onMessage, sent: make(chan frame, 1024), doneCh: make(chan struct{})}
	s.conns <- c
	return c, nil
}

func (s *fakeServer) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *fakeServer) dialCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dials
}

func (s *fakeServer) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("fake: no connection")
		return nil
	}
}

// newFakeManager returns a Manager on a fake server, with fast, fixed
// reconnection delays.
func newFakeManager(t *testing.T, opts Options) (*Manager, *fakeServer) {
	t.Helper()
	if opts.ReconnectionDelay == 0 {
		opts.ReconnectionDelay = time.Millisecond
	}
	m, err := NewManager("http://fake.test", opts)
	testkit.NoError(t, err)
	fs := newFakeServer()
	m.dial = fs.dial
	m.rand = func() float64 { return 0 }
	return m, fs
}

// connect opens a socket on nsp, answering its CONNECT with sid (and pid
// when not empty), and returns it with its connection.
func connect(t *testing.T, m *Manager, fs *fakeServer, nsp string, auth any, wantConnect, reply string) (*Socket, *fakeConn) {
	t.Helper()
	type result struct {
		s   *Socket
		err error
	}
	res := make(chan result, 1)
	go func() {
		s, err := m.Socket(context.Background(), nsp, auth)
		res <- result{s, err}
	}()
	c := fs.next(t)
	testkit.Equal(t, c.nextText(t), wantConnect)
	c.deliver(reply)
	r := <-res
	testkit.NoError(t, r.err)
	t.Cleanup(func() { _ = r.s.Close() })
	return r.s, c
}
