// Command clusterdemo is the ioswarm cluster demo: one node of a chat with
// rooms and a live cluster panel, served with its web page (the official
// browser client is embedded: no CDN).
//
//	go run ./clusterdemo                                  # one node, in-memory adapter: http://localhost:3000
//	clusterdemo -addr :3001 -node node1 -redis redis://127.0.0.1:6379/0   # a node of a cluster
//	clusterdemo -redis redis://127.0.0.1:6379/0 -adapter redis-sharded    # sharded Pub/Sub (Redis >= 7)
//	clusterdemo -redis redis://127.0.0.1:6379/0 -adapter redis-streams    # Redis Streams
//	clusterdemo -healthcheck                              # GET /healthz of the local node; exit 0 when it is up
//
// Every flag but -forget has an environment fallback, for containers: -addr
// $ADDR (or ":"+$PORT), -node $NODE_NAME (else the hostname), -redis
// $REDIS_URL, -adapter $REDIS_ADAPTER, -key $REDIS_KEY, -recovery $RECOVERY.
//
// Connection state recovery is on by default (-recovery 2m; 0 turns it off):
// a page whose connection drops for less than that gets its socket back —
// same id, room and name, and the chat messages it missed — and shows
// "recovered" instead of "new session". The page sends its name and room on
// every connection; the node uses them only for a new session. Which
// reconnections are recovered is the library's (README, "Connection state
// recovery"): a page that comes back to the node it left, still running,
// always is; one that reaches another node, or its node after a restart,
// only when the Redis adapter keeps the sessions cluster-wide. The sharded
// adapter (-adapter redis-sharded) recovers none: as on Node.js. The Redis
// Streams adapter (-adapter redis-streams) recovers on any node, unless the
// page's node was killed: as on Node.js.
//
// The node serves the page at /, Socket.IO at /socket.io/ and /healthz for
// load balancers and orchestrators (200, or 503 once it is shutting down).
// It prints "listening on ADDR" on stdout once it serves, logs with log/slog
// on stderr, and on SIGTERM or SIGINT stops accepting connections,
// disconnects its clients (they reconnect through the load balancer to
// another node), leaves the cluster and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/adapter/redisstreams"
	"github.com/ioswarm/ioswarm/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "clusterdemo:", err)
		os.Exit(1)
	}
}

// options are the node's settings, from flags and the environment.
type options struct {
	addr        string
	node        string
	redisURL    string
	adapter     string // redis or redis-sharded
	key         string
	forget      time.Duration
	recovery    time.Duration // 0: connection state recovery off
	healthcheck bool
}

// parseOptions reads the flags, with defaults from the environment.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	addr := getenv("ADDR")
	if addr == "" {
		addr = ":3000"
		if port := getenv("PORT"); port != "" {
			addr = ":" + port
		}
	}
	key := getenv("REDIS_KEY")
	if key == "" {
		key = "socket.io"
	}
	// The demo shows recovery: on unless asked otherwise.
	recovery := 2 * time.Minute
	if v := getenv("RECOVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return o, fmt.Errorf("$RECOVERY=%q: want a duration such as 2m, or 0 to turn recovery off", v)
		}
		recovery = d
	}
	fs := flag.NewFlagSet("clusterdemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", addr, "address to listen on ($ADDR, or :$PORT)")
	fs.StringVar(&o.node, "node", getenv("NODE_NAME"), "node name shown in the page ($NODE_NAME; default: the hostname)")
	fs.StringVar(&o.redisURL, "redis", getenv("REDIS_URL"), "Redis URL joining the cluster, e.g. redis://127.0.0.1:6379/0 ($REDIS_URL; empty: a single node on the in-memory adapter)")
	adapterKind := getenv("REDIS_ADAPTER")
	if adapterKind == "" {
		adapterKind = "redis"
	}
	fs.StringVar(&o.adapter, "adapter", adapterKind, "with -redis: redis (classic Pub/Sub), redis-sharded (sharded Pub/Sub, Redis >= 7, no connection state recovery) or redis-streams (Redis Streams; a killed node's sessions are lost) ($REDIS_ADAPTER)")
	fs.StringVar(&o.key, "key", key, "Redis channel prefix shared by the nodes of one cluster ($REDIS_KEY)")
	fs.DurationVar(&o.forget, "forget", 30*time.Second, "how long a node that stopped answering stays on the cluster panel as down")
	fs.DurationVar(&o.recovery, "recovery", recovery, "connection state recovery window: a page that reconnects within it keeps its socket id, room and name and gets the messages it missed ($RECOVERY; 0 turns it off)")
	fs.BoolVar(&o.healthcheck, "healthcheck", false, "check the node listening on -addr (GET /healthz) and exit 0 if it is up, 1 if not")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.adapter != "redis" && o.adapter != "redis-sharded" && o.adapter != "redis-streams" {
		return o, fmt.Errorf("-adapter %q: want redis, redis-sharded or redis-streams", o.adapter)
	}
	if o.recovery < 0 {
		return o, fmt.Errorf("-recovery %v: want a positive duration, or 0 to turn recovery off", o.recovery)
	}
	return o, nil
}

// run runs one node until ctx ends, then shuts it down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.healthcheck {
		return healthcheck(ctx, o.addr)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close() // Shutdown closes it too; this covers the early returns
	if o.node == "" {
		o.node = defaultNodeName(ln.Addr())
	}
	cfg := server.Config{Logger: logger, CleanupEmptyChildNamespaces: true}
	if o.recovery > 0 {
		// The node has no connection middleware: whether they run for a
		// recovered socket does not matter.
		cfg.ConnectionStateRecovery = &server.RecoveryConfig{MaxDisconnectionDuration: o.recovery}
	}
	adapterName := "memory"
	var cluster *redisCluster
	if o.redisURL != "" {
		if cluster, err = dialRedis(ctx, o.redisURL, o.key, o.adapter, logger); err != nil {
			return err
		}
		cfg.Adapter = cluster.factory // the server closes it
		adapterName = o.adapter
	}

	// With Redis, New subscribes the main namespace's channels before the node
	// says it is listening.
	n := newNode(server.New(cfg), o.node, o.forget, logger)
	// The settings the README recommends: a slow or idle client cannot hold a
	// connection (or its header buffer) for ever.
	hs := &http.Server{
		Handler:           n.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	logger.Info("clusterdemo: serving", "node", o.node, "addr", ln.Addr().String(), "adapter", adapterName, "key", o.key, "recovery", o.recovery)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("clusterdemo: shutting down", "node", o.node)
	case runErr = <-serveErr:
		logger.Error("clusterdemo: serve", "err", runErr)
	}
	n.draining.Store(true)

	// Stop accepting at once (the load balancer sends reconnecting clients to
	// the other nodes), while the server disconnects its clients, which ends
	// the long-polling requests Shutdown waits for.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- hs.Shutdown(sctx) }()
	// Shutdown keeps the adapter up while the sockets' disconnect handlers
	// run (their "left" messages reach the other nodes), and closes the
	// clients at the transport level: the official client reconnects.
	if err := n.srv.Shutdown(sctx); err != nil {
		logger.Warn("clusterdemo: shut down server", "err", err)
	}
	if err := <-shutdown; err != nil {
		logger.Warn("clusterdemo: http shutdown", "err", err)
		_ = hs.Close()
	}
	if cluster != nil {
		cluster.close(logger)
	}
	logger.Info("clusterdemo: stopped", "node", o.node)
	return runErr
}

// defaultNodeName is the hostname, or the listening address without one.
func defaultNodeName(addr net.Addr) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return addr.String()
}

// redisCluster is the Redis adapter of the node and its client.
type redisCluster struct {
	client  *goredis.Client
	factory adapter.Factory
}

// dialRedis connects to Redis, failing fast when it does not answer.
// kind names the adapter; the sharded Pub/Sub and the Redis Streams ones do
// not recover sessions (a page that reconnects gets a new socket).
func dialRedis(ctx context.Context, url, key, kind string, logger *slog.Logger) (*redisCluster, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	// Commands honour their context's deadline: shutdown stays bounded
	// even when Redis stops answering.
	opts.ContextTimeoutEnabled = true
	client := goredis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("-redis %s: %w", url, err)
	}
	switch kind {
	case "redis-sharded":
		return &redisCluster{client: client, factory: redis.NewSharded(client, redis.ShardedOptions{Key: key, Logger: logger})}, nil
	case "redis-streams":
		f := redisstreams.New(client, redisstreams.Options{StreamName: key, ChannelPrefix: key, Logger: logger})
		return &redisCluster{client: client, factory: f}, nil
	}
	f := redis.New(client, redis.Options{Key: key, Logger: logger})
	return &redisCluster{client: client, factory: f}, nil
}

// close closes the Redis client, which stays ours: the server's Close
// closed the adapter Factory, and with it left the cluster.
func (c *redisCluster) close(logger *slog.Logger) {
	if err := c.client.Close(); err != nil {
		logger.Warn("clusterdemo: close redis client", "err", err)
	}
}

// healthcheck asks the node listening on addr for /healthz (for container
// health checks: the image has no curl).
func healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
