package redisstreams

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// The tests run several ioswarm servers in this process, each with its
// own Factory and Redis client (as separate processes would have), on one
// Redis, and drive them with the official client.

// requestsTimeout keeps the tests of timeouts short.
const requestsTimeout = time.Second

// logger logs to the test output with -v, nowhere otherwise.
func logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// testOptions are a test's own stream and channels on a shared Redis.
func testOptions() Options {
	p := "t-" + cluster.NewHexID()
	return Options{StreamName: p, ChannelPrefix: p, RequestsTimeout: requestsTimeout, BlockTime: time.Second}
}

// redisClient returns a client of url, closed at cleanup (after the
// nodes, which are closed by cleanups registered later).
func redisClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	testkit.NoError(t, err)
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// node is one server of a test cluster. Its server-side listeners:
// "whoami" answers the node's name, "record" records its arguments.
type node struct {
	name string
	srv  *server.Server
	f    *Factory
	ts   *httptest.Server

	mu       sync.Mutex
	recorded []string
}

func startNode(t *testing.T, client goredis.UniversalClient, opts Options, name string) *node {
	t.Helper()
	opts.Logger = logger(t).With("node", name)
	n := &node{name: name, f: New(client, opts)}
	n.srv = server.New(server.Config{Adapter: n.f, Logger: opts.Logger})
	ns := n.srv.Of("/")
	ns.OnServerSideEmit("whoami", func(ev *server.Event) { _ = ev.Ack(name) })
	ns.OnServerSideEmit("record", func(ev *server.Event) {
		b, _ := json.Marshal(ev.Args)
		n.mu.Lock()
		n.recorded = append(n.recorded, string(b))
		n.mu.Unlock()
	})
	n.ts = httptest.NewServer(n.srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		testkit.NoError(t, n.srv.Close(ctx)) // closes the Factory too
		n.ts.CloseClientConnections()
		n.ts.Close()
	})
	return n
}

func (n *node) records() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.recorded...)
}

// sock returns the socket of a client of n (nil when it is elsewhere).
func (n *node) sock(c *client) *server.Socket { return n.srv.Of("/").Socket(c.id) }

// client is a connected official client and its socket id.
type client struct {
	*testkit.Client
	id string
}

func connect(t *testing.T, drv *testkit.NodeClientDriver, url string) *client {
	t.Helper()
	c, id := testkit.MustConnect(t, drv, testkit.ConnectOptions{URL: url, Transports: []string{"websocket"}})
	return &client{Client: c, id: id}
}

// until returns the names of the events c got up to the marker event.
func until(t *testing.T, c *client, marker string) []string {
	t.Helper()
	names, err := c.NamesUntil(testkit.Ctx(t), marker)
	testkit.NoError(t, err)
	return names
}

// names returns the string arguments of an answer, sorted.
func names(t *testing.T, args server.Args) []string {
	v, err := args.Values()
	testkit.NoError(t, err)
	return testkit.Strings(v)
}
