package redis_test

import (
	"context"
	"log"
	"net/http"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/redis"
	"github.com/ioswarm/ioswarm/server"
)

// A node of a cluster on a Redis Cluster with sharded Pub/Sub: each
// channel lives on one master, and a broadcast to one room reaches only
// the nodes that have the room. Node.js servers using
// createShardedAdapter with the same channelPrefix and subscriptionMode
// may join the cluster.
func ExampleNewSharded() {
	client := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: []string{"localhost:7000", "localhost:7001", "localhost:7002"},
	})
	defer client.Close()

	f := redis.NewSharded(client, redis.ShardedOptions{
		Key:              "socket.io",               // Node's channelPrefix (the default)
		SubscriptionMode: redis.SubscriptionDynamic, // the default, as on Node
	})
	srv := server.New(server.Config{Adapter: f})
	defer srv.Close(context.Background()) // closes f too; the client stays ours

	srv.OnConnection(func(s *server.Socket) {
		_ = s.Join("lobby") // this node subscribes to the room's channel
		_ = srv.To("lobby").Emit("joined", s.ID())
	})
	log.Fatal(http.ListenAndServe(":3000", srv))
}

// The README's sharded example (docs/docs_test.go checks that the README
// shows exactly this).
func Example_readmeSharded() {
	addrs := []string{"localhost:7000", "localhost:7001", "localhost:7002"}
	// README begin
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	f := redis.NewSharded(client, redis.ShardedOptions{}) // Key "socket.io", SubscriptionMode dynamic
	srv := server.New(server.Config{Adapter: f})
	// README end
	_ = srv
}
