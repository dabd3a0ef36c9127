package redis

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/parser"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// testLogger logs to the test output when -v is set, and nowhere otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// newClient returns a go-redis client for url, closed at cleanup.
func newClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	testkit.NoError(t, err)
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniqueKey returns a channel prefix of the test's own, so that tests can
// share one Redis (REDIS_ADDR).
func uniqueKey(t testing.TB) string { return "t-" + newID() }

// fakeNamespace is an adapter.Namespace whose server-side listeners are a
// function.
type fakeNamespace struct {
	name string
	mu   sync.Mutex
	sse  func(args []json.RawMessage, ack func(json.RawMessage))

	ackIDs atomic.Uint64
}

func (n *fakeNamespace) Name() string { return n.name }

func (n *fakeNamespace) NextAckID() uint64 { return n.ackIDs.Add(1) - 1 }

func (n *fakeNamespace) HandleServerSideEmit(args []json.RawMessage, ack func(json.RawMessage)) {
	n.mu.Lock()
	fn := n.sse
	n.mu.Unlock()
	if fn != nil {
		fn(args, ack)
	}
}

// fakeSocket is an adapter.Socket that records what it is sent.
type fakeSocket struct {
	id   string
	info adapter.SocketInfo

	mu           sync.Mutex
	got          []*adapter.Packet
	flags        []adapter.Flags
	acks         []adapter.AckFunc
	disconnected *bool
	notify       chan struct{}
}

func newFakeSocket(id string) *fakeSocket {
	return &fakeSocket{
		id:     id,
		info:   adapter.SocketInfo{ID: id, Handshake: json.RawMessage(`{"headers":{},"auth":{}}`), Data: json.RawMessage(`{}`)},
		notify: make(chan struct{}, 1024),
	}
}

func (s *fakeSocket) ID() string { return s.id }

func (s *fakeSocket) Deliver(p *adapter.Packet, flags adapter.Flags, ack adapter.AckFunc) {
	s.mu.Lock()
	s.got = append(s.got, p)
	s.flags = append(s.flags, flags)
	if ack != nil {
		s.acks = append(s.acks, ack)
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *fakeSocket) Info() adapter.SocketInfo {
	i := s.info
	i.Local = s
	return i
}

func (s *fakeSocket) Disconnect(close bool) {
	s.mu.Lock()
	s.disconnected = &close
	s.mu.Unlock()
}

// next waits for the next delivered packet.
func (s *fakeSocket) next(t testing.TB) *adapter.Packet {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		if len(s.got) > 0 {
			p := s.got[0]
			s.got = s.got[1:]
			s.mu.Unlock()
			return p
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("%s: no packet delivered", s.id)
		}
	}
}

// subscriber is a plain go-redis subscriber that reads raw messages.
type subscriber struct {
	t  testing.TB
	ps *goredis.PubSub
}

func newSubscriber(t testing.TB, c *goredis.Client, patterns, channels []string) *subscriber {
	t.Helper()
	ctx := context.Background()
	ps := c.Subscribe(ctx)
	t.Cleanup(func() { _ = ps.Close() })
	if len(patterns) > 0 {
		testkit.NoError(t, ps.PSubscribe(ctx, patterns...))
	}
	if len(channels) > 0 {
		testkit.NoError(t, ps.Subscribe(ctx, channels...))
	}
	for i := 0; i < len(patterns)+len(channels); i++ {
		_, err := ps.ReceiveTimeout(ctx, 5*time.Second) // confirmations
		testkit.NoError(t, err)
	}
	return &subscriber{t: t, ps: ps}
}

// next returns the next message.
func (s *subscriber) next() *goredis.Message {
	s.t.Helper()
	for {
		msg, err := s.ps.ReceiveTimeout(context.Background(), 5*time.Second)
		testkit.NoError(s.t, err, "waiting for a message")
		if m, ok := msg.(*goredis.Message); ok {
			return m
		}
	}
}

// newTestFactory returns a Factory on url, closed at cleanup.
func newTestFactory(t testing.TB, url string, opts Options) *Factory {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	f := New(newClient(t, url), opts)
	t.Cleanup(func() { testkit.NoError(t, f.Close(context.Background())) })
	return f
}

// newTestAdapter returns the adapter of a fake namespace.
func newTestAdapter(t testing.TB, f *Factory, name string) (*Adapter, *fakeNamespace) {
	t.Helper()
	ns := &fakeNamespace{name: name}
	a, err := f.Adapter(ns)
	testkit.NoError(t, err)
	return a.(*Adapter), ns
}

func rawArgs(t testing.TB, js string) []parser.Raw {
	t.Helper()
	r, err := parser.NewRawArgs(json.RawMessage(js), nil)
	testkit.NoError(t, err)
	return r
}
