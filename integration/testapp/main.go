// Command testapp exposes the whole ioswarm server API to Socket.IO clients,
// as defined by the test application contract: tests, load tools and
// compatibility checks drive it, on one node or a cluster. It belongs to the integration
// module, so run it from the integration directory:
//
//	go run ./testapp -addr 127.0.0.1:3000 [-redis redis://127.0.0.1:6379/0] [-adapter redis|redis-sharded|redis-streams] [-subscription-mode dynamic] [-node NAME] [-key socket.io] [-requests-timeout 5s] [-recovery 2m]
//
// It prints "listening on ADDR" once it serves, and exits 0 on SIGTERM or
// SIGINT after closing gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/adapter/redisstreams"
	"github.com/ioswarm/ioswarm/engineio"
	"github.com/ioswarm/ioswarm/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:3000", "address to listen on")
	redisURL := flag.String("redis", "", "Redis URL; empty means the in-memory adapter")
	adapterKind := flag.String("adapter", "redis", "with -redis: redis (classic Pub/Sub), redis-sharded (sharded Pub/Sub, Redis >= 7) or redis-streams (Redis Streams; -key names the stream and the channels)")
	subMode := flag.String("subscription-mode", "dynamic", "with -adapter redis-sharded: static, dynamic or dynamic-private")
	node := flag.String("node", "", "node name in replies (default: the bound host:port)")
	key := flag.String("key", "socket.io", "Redis channel prefix")
	reqTimeout := flag.Duration("requests-timeout", 5*time.Second, "timeout of cluster requests")
	recovery := flag.Duration("recovery", 0, "turn connection state recovery on with this window (middlewares skipped); 0 leaves it off")
	flag.Parse()
	if os.Getenv("IOSWARM_MEMPROF") != "" {
		runtime.MemProfileRate = 1 // every allocation in the heap profile
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *node == "" {
		*node = ln.Addr().String()
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := server.Config{
		CORS:                        &engineio.CORS{AllowedOrigins: []string{"*"}},
		CleanupEmptyChildNamespaces: true, // clients choose the names of /dyn-*
		Logger:                      logger,
	}
	if *recovery > 0 {
		cfg.ConnectionStateRecovery = &server.RecoveryConfig{MaxDisconnectionDuration: *recovery}
	}
	var cluster *redisCluster
	if *redisURL != "" {
		if *adapterKind != "redis" && *adapterKind != "redis-sharded" && *adapterKind != "redis-streams" {
			return fmt.Errorf("-adapter %q: want redis, redis-sharded or redis-streams", *adapterKind)
		}
		if cluster, err = newRedisCluster(*redisURL, *key, *reqTimeout, *adapterKind, redis.SubscriptionMode(*subMode), logger); err != nil {
			return err
		}
		cfg.Adapter = cluster.factory // the server closes it
	}
	// With -redis, creating "/" (in New) and "/custom" subscribes their
	// channels before the "listening on" line.
	srv := server.New(cfg)
	app := newApp(srv, *node, *reqTimeout)
	app.setup(srv.Of("/"))
	app.setup(srv.Of("/custom"))
	dyn := srv.OfRegexp(regexp.MustCompile(`^/dyn-[a-z0-9]+$`))
	app.setupParent(dyn)

	mux := http.NewServeMux()
	mux.Handle(srv.Path(), srv)
	if os.Getenv("IOSWARM_PPROF") != "" {
		// Profiling for load tests, off unless asked for.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	// The settings the README recommends: a slow or idle client cannot hold a
	// connection (or its header buffer) for ever.
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-serveErr:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Disconnect handlers still reach the cluster; clients reconnect.
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("shutdown", "err", err)
	}
	// Connections that never sent a request keep Shutdown waiting: give
	// them a moment, then close whatever is left.
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if cluster != nil {
		cluster.close(logger)
	}
	return nil
}

// redisCluster is the Redis adapter of a clustered node, and its client.
type redisCluster struct {
	client  *goredis.Client
	factory adapter.Factory
}

// newRedisCluster connects to Redis (failing fast when it does not answer)
// and returns the adapter factory of the node.
func newRedisCluster(url, key string, reqTimeout time.Duration, kind string, mode redis.SubscriptionMode, logger *slog.Logger) (*redisCluster, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	// Commands honour their context's deadline: shutdown stays bounded
	// even when Redis stops answering.
	opts.ContextTimeoutEnabled = true
	client := goredis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("-redis %s: %w", url, err)
	}
	switch kind {
	case "redis-sharded":
		f := redis.NewSharded(client, redis.ShardedOptions{Key: key, SubscriptionMode: mode, RequestsTimeout: reqTimeout, Logger: logger})
		return &redisCluster{client: client, factory: f}, nil
	case "redis-streams":
		f := redisstreams.New(client, redisstreams.Options{StreamName: key, ChannelPrefix: key, RequestsTimeout: reqTimeout, Logger: logger})
		return &redisCluster{client: client, factory: f}, nil
	}
	f := redis.New(client, redis.Options{Key: key, RequestsTimeout: reqTimeout, Logger: logger})
	return &redisCluster{client: client, factory: f}, nil
}

// close closes the Redis client, which stays ours: the server's Close
// closed the adapter Factory, and with it left the cluster.
func (c *redisCluster) close(logger *slog.Logger) {
	if err := c.client.Close(); err != nil {
		logger.Warn("close redis client", "err", err)
	}
}
