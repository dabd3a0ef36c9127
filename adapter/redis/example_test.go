package redis_test

import (
	"context"
	"log"
	"net/http"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/server"
)

// A node of a cluster: every node runs the same program against the same
// Redis (and may sit next to Node.js servers using @socket.io/redis-adapter
// with the same key).
func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()

	f := redis.New(client, redis.Options{
		Key:             "socket.io", // the default, as on Node
		RequestsTimeout: 5 * time.Second,
	})
	srv := server.New(server.Config{Adapter: f})
	defer srv.Close(context.Background()) // closes f too; the client stays ours

	srv.OnConnection(func(s *server.Socket) {
		_ = s.Join("lobby")
		// Reaches the sockets in "lobby" on every node.
		_ = srv.To("lobby").Emit("joined", s.ID())
	})
	// Answers serverSideEmit("whoami") from the other nodes.
	srv.OnServerSideEmit("whoami", func(ev *server.Event) { _ = ev.Ack("node-1") })

	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		names, err := srv.ServerSideEmitWithAck(ctx, "whoami") // one answer per other node
		log.Println(names, err)
	}()
	log.Fatal(http.ListenAndServe(":3000", srv))
}

// With a Redis Cluster, the servers are counted on every master.
func ExampleNew_cluster() {
	client := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
	})
	f := redis.New(client, redis.Options{})
	srv := server.New(server.Config{Adapter: f})
	_ = srv
}

// The README's cluster example (docs/docs_test.go checks that the README
// shows exactly this).
func Example_readme() {
	ctx := context.Background()
	// README begin
	client := goredis.NewClient(&goredis.Options{
		Addr:                  "redis:6379",
		ContextTimeoutEnabled: true, // commands honour their deadline: shutdown stays bounded if Redis hangs
	})
	f := redis.New(client, redis.Options{
		Key:             "socket.io",     // channel prefix, the default (Node's too): one per cluster
		RequestsTimeout: 5 * time.Second, // FetchSockets, AllRooms, serverSideEmit acks
	})
	io := server.New(server.Config{Adapter: f}) // the server owns f from now on

	io.OnConnection(func(s *server.Socket) {
		_ = s.Join("lobby")
		_ = io.To("lobby").Emit("joined", s.ID()) // reaches "lobby" on every node
	})

	// Each node answers the others; the asker gets one answer per node that answered in time.
	io.OnServerSideEmit("status", func(ev *server.Event) {
		_ = ev.Ack(map[string]any{"node": "node-1", "clients": len(io.Sockets())})
	})
	answers, err := io.ServerSideEmitWithAck(ctx, "status") // err says how many did not answer
	sockets, err := io.In("lobby").FetchSockets(ctx)        // on every node

	// Shutdown: the server closes its adapters and the factory (bounded by ctx even when Redis does
	// not answer); the go-redis client stays yours.
	_ = io.Close(ctx)
	_ = client.Close()
	// README end
	_, _, _ = answers, sockets, err
}

// A worker that is not a Socket.IO server emits to the clients of the
// cluster, Go and Node.js nodes alike (Node's @socket.io/redis-emitter).
func ExampleNewEmitter() {
	ctx := context.Background()
	// README begin
	client := goredis.NewClient(&goredis.Options{Addr: "redis:6379"})
	e := redis.NewEmitter(client, redis.EmitterOptions{Key: "socket.io"}) // the cluster's key

	err := e.To("lobby").Emit(ctx, "news", map[string]any{"id": 1}) // once Redis took it
	err = e.Of("/admin").Except("muted").Volatile().Emit(ctx, "tick", time.Now().Unix())
	err = e.In("lobby").SocketsJoin(ctx, "newsletter")   // every node applies it
	err = e.In("banned").DisconnectSockets(ctx, true)    // and their connections
	err = e.ServerSideEmit(ctx, "reload", "config.json") // to the nodes' listeners (no acks)
	// README end
	_ = err
}
