package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/internal/testkit"
	"github.com/ioswarm/ioswarm/server"
)

// opTimeout bounds every single step of a test.
const opTimeout = 10 * time.Second

func opCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger logs to the test log until the test ends (a goroutine logging
// later is not an error, just not shown).
func testLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.stop) // registered first: runs after every other cleanup
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// testNode is a node served by httptest.
type testNode struct {
	*node
	ts  *httptest.Server
	log *slog.Logger
}

// URL is the node's base URL.
func (n *testNode) URL() string { return n.ts.URL }

// stop closes the node as run does at shutdown (idempotent).
func (n *testNode) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.srv.Close(ctx); err != nil {
		t.Errorf("close node %s: %v", n.name, err)
	}
	n.ts.Close()
}

// startNode starts a node on the memory adapter, or on Redis when redisURL is
// not empty (channel prefix key), stopped at cleanup.
func startNode(t *testing.T, name, redisURL, key string, forget time.Duration) *testNode {
	t.Helper()
	logger := testLogger(t)
	// As run configures it by default.
	cfg := server.Config{Logger: logger, ConnectionStateRecovery: &server.RecoveryConfig{MaxDisconnectionDuration: 2 * time.Minute}}
	if redisURL != "" {
		opts, err := goredis.ParseURL(redisURL)
		testkit.NoError(t, err)
		client := goredis.NewClient(opts)
		f := redis.New(client, redis.Options{Key: key, Logger: logger})
		t.Cleanup(func() {
			_ = f.Close(context.Background()) // the server closed it already
			_ = client.Close()
		})
		cfg.Adapter = f
	}
	n := &testNode{node: newNode(server.New(cfg), name, forget, logger), log: logger}
	n.ts = httptest.NewServer(n.handler())
	t.Cleanup(func() { n.stop(t) }) // before the adapter's cleanup: LIFO
	return n
}

// connect connects an official client to the node and returns it with its
// welcome.
func connect(t *testing.T, drv *testkit.NodeClientDriver, url string, transports []string, auth any) (*testkit.Client, welcome) {
	t.Helper()
	return connectWith(t, drv, testkit.ConnectOptions{URL: url, Transports: transports, Auth: auth})
}

// reconnecting are the options of a client that reconnects by itself, soon
// (as the page does, faster).
func reconnecting(url string, transports []string, auth any) testkit.ConnectOptions {
	return testkit.ConnectOptions{URL: url, Transports: transports, Auth: auth, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 600, "randomizationFactor": 0}}
}

// connectWith connects an official client with o and returns it with its
// welcome.
func connectWith(t *testing.T, drv *testkit.NodeClientDriver, o testkit.ConnectOptions) (*testkit.Client, welcome) {
	t.Helper()
	ctx := opCtx(t)
	c, err := drv.Connect(ctx, o)
	testkit.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	id, err := c.WaitConnect(ctx)
	testkit.NoError(t, err)
	var w welcome
	next(t, c, eventWelcome, &w)
	testkit.Equal(t, w.ID, id, "welcome id")
	return c, w
}

// next waits for the client's next event named event and decodes its first
// argument into v.
func next(t *testing.T, c *testkit.Client, event string, v any) {
	t.Helper()
	e, err := c.NextEvent(opCtx(t), event)
	testkit.NoError(t, err)
	testkit.True(t, len(e.Raw) > 0, "event %q without arguments", event)
	testkit.NoError(t, json.Unmarshal(e.Raw[0], v), "event %q: %s", event, e.Raw[0])
}

// ask emits event with an ack and decodes the first ack argument into v.
func ask(t *testing.T, c *testkit.Client, v any, event string, args ...any) {
	t.Helper()
	raw, err := c.EmitWithAckRaw(opCtx(t), event, args...)
	testkit.NoError(t, err, "emit %q", event)
	testkit.True(t, len(raw) > 0, "ack of %q without arguments", event)
	testkit.NoError(t, json.Unmarshal(raw[0], v), "ack of %q: %s", event, raw[0])
}

// eventually retries cond every 100 ms until it holds, failing the test after
// d with cond's last description.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v; last: %+v", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rows summarises a panel view as "node:up:clients".
func rows(v panelView) []string {
	out := make([]string, 0, len(v.Nodes))
	for _, n := range v.Nodes {
		state := "down"
		if n.Up {
			state = "up"
		}
		out = append(out, n.Node+":"+state+":"+strconv.Itoa(n.Clients))
	}
	return out
}
