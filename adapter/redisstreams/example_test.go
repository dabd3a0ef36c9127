package redisstreams_test

import (
	"context"
	"log"
	"net/http"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter/redisstreams"
	"github.com/ioswarm/ioswarm/server"
)

// A node of a cluster over Redis Streams. Node.js servers using
// @socket.io/redis-streams-adapter 0.3 with the same streamName and
// channelPrefix may join the cluster; broadcasts reach the nodes through
// the stream, in the order they were written, even across a Redis
// restart.
func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()

	f := redisstreams.New(client, redisstreams.Options{
		StreamName: "socket.io", // Node's streamName (the default)
		MaxLen:     10000,       // XADD MAXLEN ~ 10000 (the default)
	})
	srv := server.New(server.Config{Adapter: f})
	defer srv.Close(context.Background()) // closes f too; the client stays ours

	srv.OnConnection(func(s *server.Socket) {
		_ = s.Join("lobby")
		_ = srv.To("lobby").Emit("joined", s.ID())
	})
	log.Fatal(http.ListenAndServe(":3000", srv))
}
