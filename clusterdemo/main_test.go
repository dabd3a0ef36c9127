package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// The committed copy of the browser client is the npm package's.
func TestClusterdemoWebClientCopy(t *testing.T) {
	dist := filepath.Join(testkit.RepoRoot(t), "integration", "node", "node_modules", "socket.io-client", "dist")
	want, err := os.ReadFile(filepath.Join(dist, "socket.io.min.js"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s is not installed (make deps): %v", dist, err)
	}
	testkit.NoError(t, err)
	got, err := webFiles.ReadFile("web/socket.io.min.js")
	testkit.NoError(t, err)
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dist, "..", "package.json"))
	testkit.NoError(t, err)
	testkit.NoError(t, json.Unmarshal(b, &pkg))
	if !bytes.Equal(got, want) {
		t.Fatalf("clusterdemo/web/socket.io.min.js differs from socket.io-client %s's: cp %s clusterdemo/web/",
			pkg.Version, filepath.Join(dist, "socket.io.min.js"))
	}
	testkit.True(t, bytes.Contains(got[:200], []byte("Socket.IO v"+pkg.Version)), "version banner")
}

func TestClusterdemoOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want options
	}{
		{"defaults", nil, nil, options{addr: ":3000", adapter: "redis", key: "socket.io", forget: 30 * time.Second, recovery: 2 * time.Minute}},
		{"PORT", nil, map[string]string{"PORT": "8081"}, options{addr: ":8081", adapter: "redis", key: "socket.io", forget: 30 * time.Second, recovery: 2 * time.Minute}},
		{"ADDR over PORT", nil, map[string]string{"PORT": "8081", "ADDR": "127.0.0.1:9"}, options{addr: "127.0.0.1:9", adapter: "redis", key: "socket.io", forget: 30 * time.Second, recovery: 2 * time.Minute}},
		{"environment", nil,
			map[string]string{"NODE_NAME": "n1", "REDIS_URL": "redis://r:6379/0", "REDIS_KEY": "k"},
			options{addr: ":3000", node: "n1", redisURL: "redis://r:6379/0", adapter: "redis", key: "k", forget: 30 * time.Second, recovery: 2 * time.Minute}},
		{"flags over environment",
			[]string{"-addr", ":1", "-node", "n2", "-redis", "redis://x/1", "-key", "k2", "-forget", "5s", "-healthcheck"},
			map[string]string{"ADDR": ":2", "NODE_NAME": "n1", "REDIS_URL": "redis://r:6379/0", "REDIS_KEY": "k"},
			options{addr: ":1", node: "n2", redisURL: "redis://x/1", adapter: "redis", key: "k2", forget: 5 * time.Second, recovery: 2 * time.Minute, healthcheck: true}},
		{"RECOVERY", nil, map[string]string{"RECOVERY": "45s"},
			options{addr: ":3000", adapter: "redis", key: "socket.io", forget: 30 * time.Second, recovery: 45 * time.Second}},
		{"RECOVERY=0 turns it off", nil, map[string]string{"RECOVERY": "0"},
			options{addr: ":3000", adapter: "redis", key: "socket.io", forget: 30 * time.Second}},
		{"REDIS_ADAPTER", []string{"-redis", "redis://x/1"}, map[string]string{"REDIS_ADAPTER": "redis-sharded"},
			options{addr: ":3000", redisURL: "redis://x/1", adapter: "redis-sharded", key: "socket.io", forget: 30 * time.Second, recovery: 2 * time.Minute}},
		{"-recovery over RECOVERY", []string{"-recovery", "0"}, map[string]string{"RECOVERY": "45s"},
			options{addr: ":3000", adapter: "redis", key: "socket.io", forget: 30 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOptions(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			testkit.NoError(t, err)
			testkit.Equal(t, got, tc.want)
		})
	}
	_, err := parseOptions([]string{"-nope"}, func(string) string { return "" }, io.Discard)
	testkit.True(t, err != nil, "unknown flag accepted")
	_, err = parseOptions([]string{"extra"}, func(string) string { return "" }, io.Discard)
	testkit.True(t, err != nil, "extra argument accepted")
	_, err = parseOptions([]string{"-h"}, func(string) string { return "" }, io.Discard)
	testkit.ErrorIs(t, err, flag.ErrHelp)
	_, err = parseOptions([]string{"-adapter", "redis-cluster"}, func(string) string { return "" }, io.Discard)
	testkit.True(t, err != nil, "unknown -adapter accepted")
	_, err = parseOptions([]string{"-recovery", "-1s"}, func(string) string { return "" }, io.Discard)
	testkit.True(t, err != nil, "negative -recovery accepted")
	_, err = parseOptions(nil, func(k string) string { return map[string]string{"RECOVERY": "soon"}[k] }, io.Discard)
	testkit.True(t, err != nil && strings.Contains(err.Error(), "RECOVERY"), "bad $RECOVERY: %v", err)
}

func TestClusterdemoHTTP(t *testing.T) {
	testkit.CheckGoroutines(t)
	n := startNode(t, "solo", "", "", time.Minute)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(n.URL() + path)
		testkit.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		testkit.NoError(t, err)
		return resp, string(b)
	}
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `<script src="socket.io.min.js"></script>`},
		{"/app.js", "text/javascript", `emitWithAck("cluster")`},
		{"/style.css", "text/css", "#messages"},
		{"/socket.io.min.js", "text/javascript", "Socket.IO v4"},
	} {
		resp, body := get(tc.path)
		testkit.Equal(t, resp.StatusCode, http.StatusOK, tc.path)
		testkit.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype), "%s: Content-Type %q", tc.path, resp.Header.Get("Content-Type"))
		testkit.True(t, strings.Contains(body, tc.contains), "%s does not contain %q", tc.path, tc.contains)
		testkit.True(t, resp.Header.Get("Content-Security-Policy") != "", "%s: no CSP", tc.path)
	}
	resp, _ := get("/nope.js")
	testkit.Equal(t, resp.StatusCode, http.StatusNotFound)

	// The Engine.IO endpoint is the server's.
	resp, body := get("/socket.io/?EIO=4&transport=polling")
	testkit.Equal(t, resp.StatusCode, http.StatusOK)
	testkit.True(t, strings.HasPrefix(body, `0{"sid":`), "handshake: %s", body)

	resp, body = get("/healthz")
	testkit.Equal(t, resp.StatusCode, http.StatusOK)
	var h struct {
		Status  string `json:"status"`
		Node    string `json:"node"`
		Clients int    `json:"clients"`
	}
	testkit.NoError(t, json.Unmarshal([]byte(body), &h))
	testkit.Equal(t, h.Status, "ok")
	testkit.Equal(t, h.Node, "solo")
	ctx := opCtx(t)
	testkit.NoError(t, healthcheck(ctx, strings.TrimPrefix(n.URL(), "http://")))

	n.draining.Store(true)
	resp, body = get("/healthz")
	testkit.Equal(t, resp.StatusCode, http.StatusServiceUnavailable)
	testkit.True(t, strings.Contains(body, `"status":"draining"`), body)
	err := healthcheck(ctx, strings.TrimPrefix(n.URL(), "http://"))
	testkit.True(t, err != nil && strings.Contains(err.Error(), "503"), "healthcheck of a draining node: %v", err)

	addr := strings.TrimPrefix(n.URL(), "http://")
	n.stop(t)
	testkit.True(t, healthcheck(ctx, addr) != nil, "healthcheck of a stopped node passed")
}

// lineWriter hands each line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

// run serves until its context ends (SIGTERM in main), then disconnects its
// clients, leaves the cluster and returns nil, leaving no goroutine behind.
func TestClusterRunShutdown(t *testing.T) {
	for _, backend := range []string{"memory", "redis", "redis-sharded", "redis-streams"} {
		t.Run(backend, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			args := []string{"-addr", "127.0.0.1:0", "-node", "run-" + backend}
			if backend != "memory" {
				args = append(args, "-redis", testkit.StartRedis(t), "-key", "cd-run", "-adapter", backend)
			}
			drv := testkit.NewNodeClientDriver(t)
			addr, cancel, done := startRun(t, args)
			url := "http://" + addr

			ops := opCtx(t)
			testkit.NoError(t, healthcheck(ops, addr))
			c, err := drv.Connect(ops, testkit.ConnectOptions{URL: url})
			testkit.NoError(t, err)
			_, err = c.WaitConnect(ops)
			testkit.NoError(t, err)
			var w welcome
			next(t, c, eventWelcome, &w)
			testkit.Equal(t, w.Node, "run-"+backend)
			var v panelView
			ask(t, c, &v, eventCluster)
			testkit.Equal(t, rows(v), []string{"run-" + backend + ":up:1"})

			cancel()
			select {
			case err := <-done:
				testkit.NoError(t, err)
			case <-time.After(opTimeout):
				t.Fatal("run did not return after its context ended")
			}
			reason, err := c.WaitDisconnect(ops)
			testkit.NoError(t, err)
			testkit.Equal(t, reason, "transport close")
			testkit.True(t, healthcheck(ops, addr) != nil, "the node still answers after run returned")
			_ = c.Close(ops)
		})
	}
}

// With its Redis frozen (the process stopped: connections open, no answer),
// a node still shuts down within 10 s of SIGTERM, whatever its adapter,
// leaving no goroutine once Redis answers again.
func TestClusterRunShutdownRedisFrozen(t *testing.T) {
	for _, tc := range []struct {
		name, backend string
		chatFirst     bool
	}{
		{"redis", "redis", false},
		{"redis-sharded", "redis-sharded", false},
		{"redis-streams", "redis-streams", false},
		// A chat message in flight at SIGTERM: its handler waits for the
		// logged broadcast (RequestsTimeout: the classic adapter's script,
		// the streams adapter's entry id; the sharded one's broadcast is
		// only queued), the server's Shutdown waits for the handler, then
		// the Factory closes.
		{"redis-chat-in-flight", "redis", true},
		{"redis-sharded-chat-in-flight", "redis-sharded", true},
		{"redis-streams-chat-in-flight", "redis-streams", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			rs := testkit.StartRedisServer(t)
			addr, cancel, done := startRun(t, []string{"-addr", "127.0.0.1:0", "-node", "frozen-" + tc.name,
				"-redis", rs.URL(), "-key", "cd-frozen", "-adapter", tc.backend})
			drv := testkit.NewNodeClientDriver(t)
			c, err := drv.Connect(opCtx(t), testkit.ConnectOptions{URL: "http://" + addr})
			testkit.NoError(t, err)
			_, err = c.WaitConnect(opCtx(t))
			testkit.NoError(t, err)
			defer c.Close(opCtx(t))
			var w welcome
			next(t, c, eventWelcome, &w)
			rs.Freeze()
			// Work in flight towards the frozen Redis: cluster requests
			// (the panel asks the other nodes) and chat broadcasts (logged
			// for recovery). A socket's handlers run one at a time: the
			// first event's is the one running at SIGTERM.
			for i := 0; i < 3; i++ {
				if tc.chatFirst {
					_ = c.Emit(opCtx(t), eventChat, map[string]any{"text": "hello"})
					_ = c.Emit(opCtx(t), eventCluster)
				} else {
					_ = c.Emit(opCtx(t), eventCluster)
					_ = c.Emit(opCtx(t), eventChat, map[string]any{"text": "hello"})
				}
			}
			time.Sleep(500 * time.Millisecond)

			start := time.Now()
			cancel()
			select {
			case err := <-done:
				testkit.NoError(t, err)
				t.Logf("shut down in %v with Redis frozen", time.Since(start).Round(time.Millisecond))
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return within 10 s of its context ending, with Redis frozen")
			}
			// The shutdown context is 10 s: a shutdown that ran into it did
			// not end by its own bounds. Those are RequestsTimeout (5 s)
			// after the first work the frozen Redis did not answer, or
			// after the Factory's Close started (6 s here at most), and
			// slack for a loaded machine.
			testkit.True(t, time.Since(start) < 7500*time.Millisecond, "shutdown took %v: more than its bounds", time.Since(start))
		})
	}
}

// startRun runs a node with args until cancel (SIGTERM in main), and returns
// the address it listens on, and run's result once it returned.
func startRun(t *testing.T, args []string) (addr string, cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stdout := &lineWriter{lines: make(chan string, 1)}
	logs := &testLogWriter{t: t}
	t.Cleanup(logs.stop)
	result := make(chan error, 1)
	go func() { result <- run(ctx, args, func(string) string { return "" }, stdout, logs) }()
	select {
	case line := <-stdout.lines:
		var ok bool
		addr, ok = strings.CutPrefix(line, "listening on ")
		testkit.True(t, ok, "first line %q", line)
	case err := <-result:
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(opTimeout):
		t.Fatal("no listening line")
	}
	return addr, cancel, result
}

// A node refuses to start without its Redis.
func TestClusterRunNoRedis(t *testing.T) {
	dead := testkit.FreeAddr(t)
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-redis", "redis://" + dead + "/0"},
		func(string) string { return "" }, io.Discard, io.Discard)
	testkit.True(t, err != nil && strings.Contains(err.Error(), dead), "run without Redis: %v", err)
}
